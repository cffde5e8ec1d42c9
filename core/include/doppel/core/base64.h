// Base64 (RFC 4648, with padding), for binary data inside JSON text.
#pragma once

#include <string>
#include <string_view>

#include "doppel/core/status.h"

namespace doppel {

std::string Base64Encode(std::string_view bytes);
Result<std::string> Base64Decode(std::string_view text);

}  // namespace doppel
