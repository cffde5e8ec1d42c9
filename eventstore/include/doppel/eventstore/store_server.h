// StoreServer: serves one EventLog over ZeroMQ. A ROUTER socket takes protocol requests
// (wire_format.h) from any number of clients; a PUB socket fans out every committed event in
// global order after it is durable. Appends from all clients feed the log's group commit.
//
// One I/O thread owns both sockets. Appends complete on the log's committer thread and reads
// run on a small worker pool; both hand their replies back through an outbox the I/O thread
// drains, so sockets are only ever touched by their own thread.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "doppel/eventstore/event_log.h"
#include "doppel/eventstore/zmq_security.h"

namespace doppel::eventstore {

struct StoreServerOptions {
  std::string listen = "tcp://127.0.0.1:7600";   // ROUTER
  std::string publish = "tcp://127.0.0.1:7601";  // PUB
  std::optional<CurveServerConfig> curve;        // applied to tcp:// endpoints only
  int reader_threads = 2;
  int publish_hwm = 100000;  // messages queued per subscriber before PUB drops (then healed)
};

class StoreServer {
 public:
  // Binds both endpoints and starts serving `log`, which must outlive the server. Takes the
  // log's commit listener.
  static Result<std::unique_ptr<StoreServer>> Start(EventLog& log, StoreServerOptions options);
  ~StoreServer();  // stops serving; requests in flight get no reply
  StoreServer(const StoreServer&) = delete;
  StoreServer& operator=(const StoreServer&) = delete;

  // The bound endpoints (a tcp port of 0 resolves to the port the system chose).
  const std::string& listen_endpoint() const;
  const std::string& publish_endpoint() const;

  struct Counters {
    uint64_t requests = 0;
    uint64_t malformed = 0;
    uint64_t published = 0;
    uint64_t append_requests = 0;  // appends received that decoded
    uint64_t append_errors = 0;    // appends answered with an error (refused or failed)
  };
  Counters counters() const;

 private:
  class Impl;
  explicit StoreServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace doppel::eventstore
