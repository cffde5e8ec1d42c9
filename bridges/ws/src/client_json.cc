#include "client_json.h"

#include <fmt/format.h>

namespace doppel::gateway {
namespace {

// Thrown by the parser callback to stop at the first container past the depth budget; the
// parser unwinds and frees what it built so far, which is at most max_depth levels deep.
struct TooDeep {};

}  // namespace

Result<nlohmann::json> ParseClientJson(std::string_view text, ClientJsonLimits limits) {
  using nlohmann::json;
  if (text.size() > limits.max_bytes) {
    return Status::InvalidArgument(fmt::format("JSON of {} bytes is larger than the {}-byte limit",
                                               text.size(), limits.max_bytes));
  }
  // `depth` is the number of containers enclosing the one that starts: 0 for the outermost.
  const json::parser_callback_t within_depth = [&limits](int depth, json::parse_event_t event,
                                                         json&) {
    if ((event == json::parse_event_t::object_start || event == json::parse_event_t::array_start) &&
        static_cast<size_t>(depth) >= limits.max_depth) {
      throw TooDeep{};
    }
    return true;
  };
  try {
    return json::parse(text, within_depth, /*allow_exceptions=*/true);
  } catch (const TooDeep&) {
    return Status::InvalidArgument(
        fmt::format("JSON nested deeper than {} levels is refused", limits.max_depth));
  } catch (const json::parse_error& e) {
    return Status::Corruption(fmt::format("not valid JSON: {}", e.what()));
  }
}

}  // namespace doppel::gateway
