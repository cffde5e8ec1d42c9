// Text doppel accepts: UTF-8, everywhere. Stream names, event types, joint and frame names,
// fault codes, operator names and every other string that reaches the log is checked at its
// entry point (store protocol, DDS ingest, gateway, CLI, import) with IsValidUtf8, so JSON
// writers never meet bytes they cannot encode. JSON writers also use SafeJsonDump
// (json_text.h), which cannot throw even on data written by an older doppel.
#pragma once

#include <string>
#include <string_view>

namespace doppel {

// True when `text` is well-formed UTF-8 (RFC 3629): no overlong forms, no surrogates
// (U+D800..U+DFFF), nothing above U+10FFFF, no truncated sequence. NUL is allowed here;
// callers that forbid it check it themselves.
bool IsValidUtf8(std::string_view text);

// `text` with every ill-formed sequence replaced by U+FFFD, for messages and logs that
// quote untrusted bytes.
std::string ScrubUtf8(std::string_view text);

}  // namespace doppel
