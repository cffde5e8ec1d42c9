// The store server's ZeroMQ wire format.
//
// Requests (client DEALER -> server ROUTER): one frame, a StoreRequest FlatBuffer
// (schemas/store_protocol.fbs). The server replies on the same connection with one frame, a
// StoreResponse carrying the request's request_id. Many requests may be in flight per
// client; replies to appends come in commit order, replies to reads as they finish.
// A frame that does not verify gets an ErrorResponse with request_id 0. Frames larger than
// kMaxRequestBytes get an ErrorResponse; frames above kHardMaxMessageBytes drop the
// connection (ZMQ_MAXMSGSIZE) so one client cannot exhaust memory.
//
// Committed events (server PUB -> client SUB), in global position order, only after the
// commit group that holds them is durable:
//   frame 1  topic: the stream name followed by one 0x00 byte ("robot-7\0"). Subscribing to
//            "robot-" gets every robot stream, "robot-7\0" exactly robot-7, "" everything.
//   frame 2  the EventEnvelope bytes exactly as stored.
// Heartbeats, every kHeartbeatInterval and after idle commits:
//   frame 1  "$hb" (no stream name starts with '$')
//   frame 2  be64 next global position (everything below it is durable and published)
// PUB drops messages for a subscriber at its high-water mark; Subscription detects the gap
// by global position (or a heartbeat ahead of it) and heals it by reading from the store.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

namespace doppel::eventstore::wire {

inline constexpr size_t kMaxRequestBytes = 16 << 20;
inline constexpr int64_t kHardMaxMessageBytes = 64 << 20;
inline constexpr uint32_t kMaxReadCount = 4096;
inline constexpr size_t kMaxReadBytes = 4 << 20;
inline constexpr std::chrono::milliseconds kHeartbeatInterval{100};
inline constexpr char kHeartbeatTopic[] = "$hb";

inline std::string EventTopic(std::string_view stream) {
  std::string topic(stream);
  topic.push_back('\0');
  return topic;
}

}  // namespace doppel::eventstore::wire
