// The three stores every contract test runs against, each opened fresh for a test: the
// embedded log, the store server's client (an in-process server over loopback ZeroMQ) and
// PgEventStore (a database of its own on the tests' PostgreSQL server). What a store cannot do
// is stated in its traits (kNoFeed, kNoCopies), never skipped silently.
#pragma once

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <type_traits>

#include "doppel/eventstore/event_log.h"
#include "doppel/eventstore/store_client.h"
#include "doppel/eventstore/store_server.h"
#include "doppel/eventstore/subscription.h"
#include "doppel/pgstore/pg_event_store.h"
#include "doppel/pgstore/pg_subscription.h"
#include "pg_server.h"
#include "test_support.h"

namespace doppel::eventstore {

using pgstore::PgEventStore;
using testing::TempDir;

// The test clock every store records and judges retention by.
struct TestClock {
  std::atomic<TimeNs> now{1'767'225'600'000'000'000};  // 2026-01-01
  std::function<TimeNs()> Function() {
    return [this] { return now.load(); };
  }
};

struct LogStore {
  static constexpr const char* kName = "embedded log";
  static constexpr bool kDensePositions = true;
  static constexpr GlobalPosition kFirstPosition = 0;
  TempDir dir;
  std::unique_ptr<EventLog> log;
  Status Open(TestClock& clock) {
    EventLogOptions options;
    options.wall_clock = clock.Function();
    options.sync = false;  // durability is tested elsewhere; the contract is about answers
    auto opened = EventLog::Open(dir.Sub("log"), options);
    if (!opened.ok()) return opened.status();
    log = std::move(opened).value();
    return Status::Ok();
  }
  EventStore& store() { return *log; }
  static constexpr const char* kNoCopies = nullptr;
  static constexpr const char* kNoFeed =
      "an embedded log has no feed: in-process consumers take its commit listener, other "
      "processes subscribe through a store server";
  Result<std::unique_ptr<EventFeed>> Feed(GlobalPosition) {
    return Status::InvalidArgument(kNoFeed);
  }
};

struct ServerStore {
  static constexpr const char* kName = "store server client";
  static constexpr bool kDensePositions = true;
  static constexpr GlobalPosition kFirstPosition = 0;
  LogStore backing;
  std::unique_ptr<StoreServer> server;
  std::unique_ptr<StoreClient> client;
  Status Open(TestClock& clock) {
    DOPPEL_RETURN_IF_ERROR(backing.Open(clock));
    StoreServerOptions options;
    options.listen = "tcp://127.0.0.1:0";
    options.publish = "tcp://127.0.0.1:0";
    auto started = StoreServer::Start(*backing.log, options);
    if (!started.ok()) return started.status();
    server = std::move(started).value();
    StoreClientOptions client_options;
    client_options.endpoint = server->listen_endpoint();
    auto connected = StoreClient::Connect(client_options);
    if (!connected.ok()) return connected.status();
    client = std::move(connected).value();
    return Status::Ok();
  }
  EventStore& store() { return *client; }
  static constexpr const char* kNoCopies = nullptr;
  static constexpr const char* kNoFeed = nullptr;
  Result<std::unique_ptr<EventFeed>> Feed(GlobalPosition from) {
    SubscriptionOptions options;
    options.store = server->listen_endpoint();
    options.publish = server->publish_endpoint();
    options.from = from;
    auto sub = Subscription::Start(options);
    if (!sub.ok()) return sub.status();
    return std::unique_ptr<EventFeed>(std::move(sub).value());
  }
};

struct PgStore {
  static constexpr const char* kName = "PostgreSQL";
  static constexpr bool kDensePositions = false;
  static constexpr GlobalPosition kFirstPosition = 1;
  std::unique_ptr<PgEventStore> pg;
  std::string url;
  Status Open(TestClock& clock) {
    static std::atomic<int> databases{0};
    auto created =
        testing::SharedPgServer().CreateDatabase(fmt::format("contract_{}", databases++));
    if (!created.ok()) return created.status();
    url = *created;
    DOPPEL_RETURN_IF_ERROR(PgEventStore::InitSchema(url));
    pgstore::PgEventStoreOptions options;
    options.wall_clock = clock.Function();
    auto opened = PgEventStore::Open(url, options);
    if (!opened.ok()) return opened.status();
    pg = std::move(opened).value();
    return Status::Ok();
  }
  EventStore& store() { return *pg; }
  static constexpr const char* kNoCopies = nullptr;
  static constexpr const char* kNoFeed = nullptr;
  Result<std::unique_ptr<EventFeed>> Feed(GlobalPosition from) {
    pgstore::PgSubscriptionOptions options;
    options.url = url;
    options.from = from;
    auto sub = pgstore::PgSubscription::Start(options);
    if (!sub.ok()) return sub.status();
    return std::unique_ptr<EventFeed>(std::move(sub).value());
  }
};

using Stores = ::testing::Types<LogStore, ServerStore, PgStore>;
class StoreNames {
 public:
  template <typename T>
  static std::string GetName(int) {
    if (std::is_same_v<T, LogStore>) return "Log";
    if (std::is_same_v<T, ServerStore>) return "Server";
    return "Postgres";
  }
};

}  // namespace doppel::eventstore
