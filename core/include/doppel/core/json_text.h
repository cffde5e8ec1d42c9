// The one way doppel turns a nlohmann::json value into text. nlohmann's dump() throws
// type_error.316 on a string that is not UTF-8; stored data is checked at every entry point
// (utf8.h), but a writer must still never throw on what it reads back (a log written by an
// older doppel, a damaged value): ill-formed bytes become U+FFFD instead.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace doppel {

inline std::string SafeJsonDump(const nlohmann::json& value, int indent = -1) {
  return value.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace doppel
