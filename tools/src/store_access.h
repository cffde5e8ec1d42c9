// How a tool reaches a store: an embedded data directory (--data DIR).
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "doppel/eventstore/event_store.h"

namespace doppel::tools {

struct StoreOptions {
  std::string data_dir;
};

// Adds --data to `cmd`.
void AddStoreOptions(CLI::App& cmd, StoreOptions& options);

enum class Access { kReadOnly, kReadWrite };
Result<std::unique_ptr<eventstore::EventStore>> OpenStore(const StoreOptions& options,
                                                          Access access);

}  // namespace doppel::tools
