#include "foxglove_messages.h"

#include <nlohmann/json.hpp>

#include "doppel/core/json_text.h"

namespace doppel::gateway {

using nlohmann::json;

std::string StatusJson(int level, std::string_view message, std::string_view id) {
  json j = {{"op", "status"}, {"level", level}, {"message", message}};
  if (!id.empty()) j["id"] = id;
  return SafeJsonDump(j);
}

std::string ServerInfoJson(std::string_view name, std::string_view role, bool client_publish,
                           std::string_view session_id) {
  json capabilities = json::array({"time"});
  if (client_publish) capabilities.push_back("clientPublish");
  return SafeJsonDump({{"op", "serverInfo"},
                       {"name", name},
                       {"capabilities", capabilities},
                       {"supportedEncodings", json::array({"json"})},
                       {"metadata", {{"role", role}}},
                       {"sessionId", session_id}});
}

std::string ChannelJson(uint32_t id, std::string_view topic, const ChannelSpec& spec) {
  return SafeJsonDump({{"id", id},
                       {"topic", topic},
                       {"encoding", spec.encoding},
                       {"schemaName", spec.schema_name},
                       {"schema", spec.schema},
                       {"schemaEncoding", spec.schema_encoding}});
}

std::string AdvertiseJson(const std::vector<std::string_view>& channels, size_t bytes) {
  // Spliced rather than built as one json value: a page holds up to hundreds of schemas, and
  // each channel's text is already made.
  std::string out;
  out.reserve(bytes + channels.size() + 40);
  out += R"({"op":"advertise","channels":[)";
  for (size_t i = 0; i < channels.size(); ++i) {
    if (i > 0) out += ',';
    out += channels[i];
  }
  out += "]}";
  return out;
}

std::string UnadvertiseJson(const std::vector<uint32_t>& ids) {
  return SafeJsonDump({{"op", "unadvertise"}, {"channelIds", ids}});
}

}  // namespace doppel::gateway
