// How a tool reaches a store: an embedded data directory (--data DIR), a store server
// (--store EP, with optional CURVE keys for tcp endpoints) or a PostgreSQL database
// (--store postgres://...).
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <optional>
#include <string>

#include "doppel/eventstore/event_feed.h"
#include "doppel/eventstore/event_store.h"
#include "doppel/eventstore/zmq_security.h"

namespace doppel::tools {

struct StoreOptions {
  std::string data_dir;
  std::string store;             // ROUTER endpoint of a store server, or a postgres:// URL
  std::string curve_server_key;  // the server's .pub file
  std::string curve_key;         // this client's .key file
};

// Adds --data, --store and the client CURVE flags to `cmd`.
void AddStoreOptions(CLI::App& cmd, StoreOptions& options);
// Adds only --curve-server-key and --curve-key.
void AddCurveClientOptions(CLI::App& cmd, StoreOptions& options);

// The CURVE settings the flags name, or nullopt when none were given.
Result<std::optional<eventstore::CurveClientConfig>> CurveClient(const StoreOptions& options);

// The event log directory that --data DIR names: DIR itself, or DIR/log when DIR is the data
// directory `doppel up` made (it keeps the log in DIR/log beside its tokens) and DIR holds
// no log of its own. Every command that takes --data resolves it this way.
std::string ResolveDataDir(const std::string& dir);

// Whether --store names a PostgreSQL database (postgres:// or postgresql://).
bool IsPostgresUrl(std::string_view store);

enum class Access { kReadOnly, kReadWrite };
Result<std::unique_ptr<eventstore::EventStore>> OpenStore(const StoreOptions& options,
                                                          Access access);

// For a service that follows a PostgreSQL store (`url`), the openers of the store and of a
// feed (PgSubscription) it is handed.
eventstore::StoreOpener PostgresStoreOpener(const std::string& url);
eventstore::FeedOpener PostgresFeedOpener(const std::string& url);

}  // namespace doppel::tools
