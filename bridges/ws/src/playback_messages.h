// Foxglove playback over WebSocket (capability `playbackControl`, foxglove-sdk), byte for
// byte, little-endian:
//   PlaybackControlRequest, client -> server, opcode 0x03:
//     u8 command (0 play, 1 pause) | f32 speed | u8 had_seek | u64 seek_time_ns |
//     u32 request_id_len | request_id
//   PlaybackState, server -> client, opcode 0x05:
//     u8 status (0 playing, 1 paused, 2 buffering, 3 ended) | u64 current_time_ns | f32 speed |
//     u8 did_seek | u32 request_id_len | request_id
//   Time, server -> client, opcode 0x02: u64 ns
// and the serverInfo of a replay session (dataStartTime / dataEndTime as {sec, nsec}).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "doppel/core/clock.h"
#include "doppel/core/status.h"

namespace doppel::gateway {

inline constexpr uint8_t kPlaybackControlOpcode = 0x03;
inline constexpr uint8_t kPlaybackStateOpcode = 0x05;
inline constexpr uint8_t kTimeOpcode = 0x02;

enum class PlaybackStatus : uint8_t { kPlaying = 0, kPaused = 1, kBuffering = 2, kEnded = 3 };

struct PlaybackControlRequest {
  uint8_t command = 1;  // 0 play, 1 pause
  float speed = 1;
  bool had_seek = false;
  uint64_t seek_time_ns = 0;
  std::string request_id;
};

// `frame`: the whole binary message, opcode first. InvalidArgument naming what is wrong.
Result<PlaybackControlRequest> DecodePlaybackControl(std::string_view frame);
std::string EncodePlaybackControl(const PlaybackControlRequest& request);

std::string EncodePlaybackState(PlaybackStatus status, uint64_t time_ns, float speed, bool did_seek,
                                std::string_view request_id);
std::string EncodeTime(uint64_t time_ns);

// serverInfo of a replay session: capabilities time and playbackControl, the data range.
std::string ReplayServerInfoJson(std::string_view name, std::string_view session_id,
                                 TimeNs data_start, TimeNs data_end);

}  // namespace doppel::gateway
