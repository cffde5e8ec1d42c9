// ZeroMQ CURVE for the store's tcp endpoints, and the process-wide ZeroMQ context.
//
// Key files are text. `doppel keygen --out NAME` writes NAME.key (mode 0600, both keys) and
// NAME.pub (public key only):
//   # doppel CURVE key
//   public = <40 z85 characters>
//   secret = <40 z85 characters>      (NAME.key only)
// An allowed-clients file lists client public keys, one per line (bare, or "public = ..."),
// so concatenating clients' .pub files makes one. A line starting with '#' is a comment
// (only at the start: z85 keys themselves may contain '#').
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "doppel/core/aligned_bytes.h"
#include "doppel/core/status.h"

namespace doppel::eventstore {

struct CurveKeyPair {
  std::string public_key;  // z85
  std::string secret_key;  // z85; empty when only the public half is known
};

Result<CurveKeyPair> GenerateCurveKeyPair();
Status WriteCurveKeyFiles(const std::string& name, const CurveKeyPair& keys);
// Reads NAME.key or NAME.pub (or any file in that format).
Result<CurveKeyPair> ReadCurveKeyFile(const std::string& path);
// Reads every public key in an allowed-clients file.
Result<std::vector<std::string>> ReadAllowedKeys(const std::string& path);

struct CurveServerConfig {
  CurveKeyPair server;                       // needs the secret key
  std::vector<std::string> allowed_clients;  // z85 public keys; empty = nobody
};

struct CurveClientConfig {
  std::string server_public_key;
  CurveKeyPair client;  // needs the secret key
};

// CURVE applies to tcp:// endpoints only; inproc and ipc stay local to the machine.
inline bool IsTcpEndpoint(std::string_view endpoint) { return endpoint.starts_with("tcp://"); }

// The settings every doppel client socket (DEALER, SUB) gets: no linger, quick reconnects,
// and CURVE when `curve` is given and `endpoint` is tcp. Throws zmq::error_t like cppzmq.
void ConfigureClientSocket(zmq::socket_t& socket, const std::string& endpoint,
                           const std::optional<CurveClientConfig>& curve);

// One ZeroMQ context per process, so inproc:// endpoints connect across components.
zmq::context_t& SharedZmqContext();

// A SUB socket on the shared context, no linger, subscribed to `prefix` and connected to
// `endpoint` (e.g. a twin's TwinState PUB with prefix "twin/"), or to each of a
// comma-separated list of endpoints (the twins of every partition). Holds at most
// `receive_hwm` messages before ZeroMQ drops.
Result<zmq::socket_t> ConnectSubscriber(const std::string& endpoint, std::string_view prefix,
                                        int receive_hwm = 1000);

// A received message's bytes at an 8-byte aligned address, as FlatBuffers needs: ZeroMQ may
// hand out a message inside its receive buffer at any offset (core/aligned_bytes.h).
inline const uint8_t* AlignedBytes(const zmq::message_t& message, std::vector<uint64_t>& scratch) {
  return doppel::AlignedBytes(std::string_view(message.data<char>(), message.size()), scratch);
}

}  // namespace doppel::eventstore
