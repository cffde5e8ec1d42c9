#include "command.h"

#include <iostream>

namespace doppel::tools {

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
