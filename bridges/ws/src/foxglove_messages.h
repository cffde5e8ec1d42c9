// The foxglove.websocket.v1 server messages the gateway sends as text, encoded in one place
// (https://github.com/foxglove/ws-protocol/blob/main/docs/spec.md). Every string goes
// through SafeJsonDump, so no robot name or stored text can make an encoder throw.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "channels.h"

namespace doppel::gateway {

// `status`: level 0 info, 1 warning, 2 error; `id` lets a client replace an earlier status.
std::string StatusJson(int level, std::string_view message, std::string_view id = "");

// `serverInfo`: the first message of every connection.
std::string ServerInfoJson(std::string_view name, std::string_view role, bool client_publish,
                           std::string_view session_id);

// One channel of an `advertise`, as a JSON object's text.
std::string ChannelJson(uint32_t id, std::string_view topic, const ChannelSpec& spec);

// An `advertise` of the channels in `channels` (each made by ChannelJson); `bytes` is the
// sum of their sizes, to reserve once.
std::string AdvertiseJson(const std::vector<std::string_view>& channels, size_t bytes);

// An `unadvertise` of `ids`.
std::string UnadvertiseJson(const std::vector<uint32_t>& ids);

}  // namespace doppel::gateway
