#include "playback_messages.h"

#include <fmt/format.h>

#include <bit>
#include <cstring>
#include <nlohmann/json.hpp>

#include "doppel/core/json_text.h"
#include "doppel/core/utf8.h"

namespace doppel::gateway {
namespace {

static_assert(std::endian::native == std::endian::little, "frames are little-endian");

template <typename T>
void Put(std::string& out, T v) {
  char raw[sizeof(T)];
  std::memcpy(raw, &v, sizeof(T));
  out.append(raw, sizeof(T));
}

template <typename T>
T Get(std::string_view in, size_t at) {
  T v;
  std::memcpy(&v, in.data() + at, sizeof(T));
  return v;
}

nlohmann::json SecNsec(TimeNs t) {
  return {{"sec", static_cast<uint32_t>(t / 1'000'000'000)},
          {"nsec", static_cast<uint32_t>(t % 1'000'000'000)}};
}

}  // namespace

Result<PlaybackControlRequest> DecodePlaybackControl(std::string_view frame) {
  constexpr size_t kFixed = 1 + 1 + 4 + 1 + 8 + 4;
  if (frame.empty() || static_cast<uint8_t>(frame[0]) != kPlaybackControlOpcode) {
    return Status::InvalidArgument("not a PlaybackControlRequest (opcode 0x03)");
  }
  if (frame.size() < kFixed) {
    return Status::InvalidArgument(fmt::format(
        "PlaybackControlRequest of {} bytes; at least {} (u8 command, f32 speed, u8 had_seek, "
        "u64 seek_time, u32 request_id_len)",
        frame.size(), kFixed));
  }
  PlaybackControlRequest r;
  r.command = static_cast<uint8_t>(frame[1]);
  r.speed = Get<float>(frame, 2);
  const uint8_t had_seek = static_cast<uint8_t>(frame[6]);
  r.seek_time_ns = Get<uint64_t>(frame, 7);
  const uint32_t id_len = Get<uint32_t>(frame, 15);
  if (r.command > 1) {
    return Status::InvalidArgument(
        fmt::format("unknown playback command {} (0 play, 1 pause)", r.command));
  }
  if (had_seek > 1)
    return Status::InvalidArgument(fmt::format("had_seek is {}, not 0 or 1", had_seek));
  if (id_len != frame.size() - kFixed) {
    return Status::InvalidArgument(
        fmt::format("request_id_len {} but {} bytes follow", id_len, frame.size() - kFixed));
  }
  r.had_seek = had_seek == 1;
  r.request_id = std::string(frame.substr(kFixed));
  if (!IsValidUtf8(r.request_id)) return Status::InvalidArgument("request_id is not UTF-8");
  return r;
}

std::string EncodePlaybackControl(const PlaybackControlRequest& r) {
  std::string out(1, static_cast<char>(kPlaybackControlOpcode));
  out += static_cast<char>(r.command);
  Put(out, r.speed);
  out += static_cast<char>(r.had_seek ? 1 : 0);
  Put(out, r.seek_time_ns);
  Put(out, static_cast<uint32_t>(r.request_id.size()));
  out += r.request_id;
  return out;
}

std::string EncodePlaybackState(PlaybackStatus status, uint64_t time_ns, float speed, bool did_seek,
                                std::string_view request_id) {
  std::string out(1, static_cast<char>(kPlaybackStateOpcode));
  out += static_cast<char>(status);
  Put(out, time_ns);
  Put(out, speed);
  out += static_cast<char>(did_seek ? 1 : 0);
  Put(out, static_cast<uint32_t>(request_id.size()));
  out += request_id;
  return out;
}

std::string EncodeTime(uint64_t time_ns) {
  std::string out(1, static_cast<char>(kTimeOpcode));
  Put(out, time_ns);
  return out;
}

std::string ReplayServerInfoJson(std::string_view name, std::string_view session_id,
                                 TimeNs data_start, TimeNs data_end) {
  return SafeJsonDump({{"op", "serverInfo"},
                       {"name", name},
                       {"capabilities", {"time", "playbackControl"}},
                       {"supportedEncodings", nlohmann::json::array({"json"})},
                       {"metadata", {{"mode", "replay"}}},
                       {"sessionId", session_id},
                       {"dataStartTime", SecNsec(data_start)},
                       {"dataEndTime", SecNsec(data_end)}});
}

}  // namespace doppel::gateway
