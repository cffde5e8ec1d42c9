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
