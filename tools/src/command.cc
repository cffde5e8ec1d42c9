#include "command.h"

#include <iostream>

namespace doppel::tools {

ShutdownSignal::ShutdownSignal() {
  sigemptyset(&set_);
  sigaddset(&set_, SIGINT);
  sigaddset(&set_, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set_, nullptr);
}

int ShutdownSignal::Wait() {
  int signal = 0;
  sigwait(&set_, &signal);
  return signal;
}

int ShutdownSignal::WaitFor(std::chrono::nanoseconds timeout) {
  const auto s = std::chrono::duration_cast<std::chrono::seconds>(timeout);
  const timespec ts = {static_cast<time_t>(s.count()),
                       static_cast<long>((timeout - s).count())};  // NOLINT(runtime/int)
  const int signal = sigtimedwait(&set_, nullptr, &ts);
  return signal > 0 ? signal : 0;
}

int& ExitCode() {
  static int code = kExitOk;
  return code;
}

int Fail(const Status& status) {
  std::cerr << "doppel: " << status.ToString() << std::endl;
  switch (status.code()) {
    case Status::Code::kWrongExpectedVersion:
      return kExitConflict;
    case Status::Code::kIdempotencyConflict:
      return kExitIdempotency;
    case Status::Code::kInvalidArgument:
      return kExitUsage;
    default:
      return kExitError;
  }
}

}  // namespace doppel::tools
