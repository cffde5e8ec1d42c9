#include "store_access.h"

#include <fmt/format.h>

#include <filesystem>

#include "doppel/eventstore/event_log.h"
#include "doppel/eventstore/store_client.h"
#include "doppel/pgstore/pg_event_store.h"
#include "doppel/pgstore/pg_subscription.h"

namespace doppel::tools {

void AddCurveClientOptions(CLI::App& cmd, StoreOptions& options) {
  cmd.add_option("--curve-server-key", options.curve_server_key,
                 "The store's CURVE public key file (NAME.pub from doppel keygen)");
  cmd.add_option("--curve-key", options.curve_key,
                 "This client's CURVE key file (NAME.key from doppel keygen)");
}

void AddStoreOptions(CLI::App& cmd, StoreOptions& options) {
  auto* data = cmd.add_option("--data", options.data_dir, "Data directory of an embedded log");
  auto* store =
      cmd.add_option("--store", options.store,
                     "Store server endpoint (tcp://HOST:PORT, ipc://PATH) or a PostgreSQL database "
                     "(postgres://USER@HOST/DB; doppel pg-store init prepares it)");
  data->excludes(store);
  store->excludes(data);
  AddCurveClientOptions(cmd, options);
}

Result<std::optional<eventstore::CurveClientConfig>> CurveClient(const StoreOptions& options) {
  if (options.curve_server_key.empty() && options.curve_key.empty()) {
    return std::optional<eventstore::CurveClientConfig>();
  }
  if (options.curve_server_key.empty() || options.curve_key.empty()) {
    return Status::InvalidArgument("CURVE needs both --curve-server-key and --curve-key");
  }
  auto server = eventstore::ReadCurveKeyFile(options.curve_server_key);
  if (!server.ok()) return server.status();
  auto client = eventstore::ReadCurveKeyFile(options.curve_key);
  if (!client.ok()) return client.status();
  if (client->secret_key.empty()) {
    return Status::InvalidArgument(options.curve_key + " has no secret key (use NAME.key)");
  }
  return std::optional<eventstore::CurveClientConfig>(
      eventstore::CurveClientConfig{server->public_key, *client});
}

bool IsPostgresUrl(std::string_view store) {
  return store.starts_with("postgres://") || store.starts_with("postgresql://");
}

std::string ResolveDataDir(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  // RocksDB's CURRENT file marks a database directory.
  if (fs::exists(fs::path(dir) / "CURRENT", ec)) return dir;
  if (fs::exists(fs::path(dir) / "log" / "CURRENT", ec)) return (fs::path(dir) / "log").string();
  return dir;
}

Result<std::unique_ptr<eventstore::EventStore>> OpenStore(const StoreOptions& options,
                                                          Access access) {
  if (IsPostgresUrl(options.store)) {
    if (!options.curve_key.empty() || !options.curve_server_key.empty()) {
      return Status::InvalidArgument(
          "CURVE keys are for store servers; PostgreSQL takes its TLS settings in the URL "
          "(sslmode=...)");
    }
    auto pg = pgstore::PgEventStore::Open(options.store);
    if (!pg.ok()) return pg.status();
    return std::unique_ptr<eventstore::EventStore>(std::move(pg).value());
  }
  if (!options.store.empty()) {
    auto curve = CurveClient(options);
    if (!curve.ok()) return curve.status();
    eventstore::StoreClientOptions client_options;
    client_options.endpoint = options.store;
    client_options.curve = *curve;
    auto client = eventstore::StoreClient::Connect(client_options);
    if (!client.ok()) return client.status();
    return std::unique_ptr<eventstore::EventStore>(std::move(client).value());
  }
  if (options.data_dir.empty()) {
    return Status::InvalidArgument("say where the store is: --data DIR or --store EP");
  }
  eventstore::EventLogOptions log_options;
  log_options.read_only = access == Access::kReadOnly;
  log_options.create_if_missing = access == Access::kReadWrite;
  auto log = eventstore::EventLog::Open(ResolveDataDir(options.data_dir), log_options);
  if (!log.ok()) return log.status();
  return std::unique_ptr<eventstore::EventStore>(std::move(log).value());
}

eventstore::StoreOpener PostgresStoreOpener(const std::string& url) {
  return [url]() -> Result<std::unique_ptr<eventstore::EventStore>> {
    auto pg = pgstore::PgEventStore::Open(url);
    if (!pg.ok()) return pg.status();
    return std::unique_ptr<eventstore::EventStore>(std::move(pg).value());
  };
}

eventstore::FeedOpener PostgresFeedOpener(const std::string& url) {
  return [url](std::optional<eventstore::GlobalPosition> from, const std::string& stream_prefix,
               const std::string& event_type) -> Result<std::unique_ptr<eventstore::EventFeed>> {
    pgstore::PgSubscriptionOptions options;
    options.url = url;
    options.from = from;
    options.stream_prefix = stream_prefix;
    options.event_type = event_type;
    auto feed = pgstore::PgSubscription::Start(options);
    if (!feed.ok()) return feed.status();
    return std::unique_ptr<eventstore::EventFeed>(std::move(feed).value());
  };
}

}  // namespace doppel::tools
