#include "store_access.h"

#include "doppel/eventstore/event_log.h"

namespace doppel::tools {

void AddStoreOptions(CLI::App& cmd, StoreOptions& options) {
  cmd.add_option("--data", options.data_dir, "Data directory of an embedded event log")->required();
}

Result<std::unique_ptr<eventstore::EventStore>> OpenStore(const StoreOptions& options,
                                                          Access access) {
  eventstore::EventLogOptions log_options;
  log_options.read_only = access == Access::kReadOnly;
  log_options.create_if_missing = access == Access::kReadWrite;
  auto log = eventstore::EventLog::Open(options.data_dir, log_options);
  if (!log.ok()) return log.status();
  return std::unique_ptr<eventstore::EventStore>(std::move(log).value());
}

}  // namespace doppel::tools
