// doppel read: a stream or $all, by position and recorded time, page by page.
#include <iostream>

#include "command.h"
#include "doppel/eventstore/event_json.h"
#include "event_json.h"
#include "store_access.h"

namespace doppel::tools {
namespace {

struct ReadOptions {
  StoreOptions store;
  std::string stream;
  uint64_t from = 0;
  bool from_set = false;
  std::string since;
  std::string until;
  uint64_t limit = 0;  // 0 = no limit
  bool backward = false;
  std::string format = "jsonl";
};

constexpr size_t kPageSize = 512;

int RunRead(const ReadOptions& o) {
  if (o.format != "jsonl" && o.format != "table") {
    return Fail(Status::InvalidArgument("--format must be jsonl or table"));
  }
  TimeNs since = std::numeric_limits<TimeNs>::min();
  TimeNs until = eventstore::kTimeMax;
  if (!o.since.empty()) {
    auto t = ParseTime(o.since);
    if (!t.ok()) return Fail(t.status());
    since = *t;
  }
  if (!o.until.empty()) {
    auto t = ParseTime(o.until);
    if (!t.ok()) return Fail(t.status());
    until = *t;
  }
  auto opened = OpenStore(o.store, Access::kReadOnly);
  if (!opened.ok()) return Fail(opened.status());
  const eventstore::EventStore& store = **opened;

  const bool table = o.format == "table";
  if (table) std::cout << TableHeader() << '\n';
  uint64_t printed = 0;
  const uint64_t limit = o.limit == 0 ? std::numeric_limits<uint64_t>::max() : o.limit;
  auto emit = [&](const eventstore::RecordedEvent& e) {
    std::cout << (table ? EventToTableRow(e) : eventstore::EventJson(e)) << '\n';
    ++printed;
  };

  if (!o.stream.empty()) {
    const auto direction =
        o.backward ? eventstore::Direction::kBackward : eventstore::Direction::kForward;
    uint64_t next = o.from_set ? o.from : (o.backward ? eventstore::kStreamEnd : 0);
    while (printed < limit) {
      auto page = store.ReadStream(o.stream, next, direction, kPageSize);
      if (!page.ok()) return Fail(page.status());
      for (const auto& e : page->events) {
        if (e.recorded_ns() < since || e.recorded_ns() > until) continue;
        if (printed < limit) emit(e);
      }
      if (page->end) break;
      next = page->next;
    }
  } else {
    if (o.backward) return Fail(Status::InvalidArgument("--backward needs --stream"));
    uint64_t next = o.from;
    if (!o.since.empty()) {
      auto at = store.PositionAtTime(since);
      if (!at.ok()) return Fail(at.status());
      next = std::max(next, *at);
    }
    while (printed < limit) {
      auto page = store.ReadAll(next, std::min<uint64_t>(kPageSize, limit - printed), until);
      if (!page.ok()) return Fail(page.status());
      for (const auto& e : page->events) emit(e);
      if (page->end || page->next == next) break;
      next = page->next;
    }
  }
  std::cout.flush();
  return kExitOk;
}

}  // namespace

void AddReadCommand(CLI::App& app) {
  auto o = std::make_shared<ReadOptions>();
  CLI::App* cmd = app.add_subcommand("read", "Read a stream, or all events in global order");
  AddStoreOptions(*cmd, o->store);
  cmd->add_option("--stream", o->stream, "Stream to read (default: $all, the global order)");
  cmd->add_option_function<uint64_t>(
      "--from",
      [o](uint64_t v) {
        o->from = v;
        o->from_set = true;
      },
      "First global position ($all) or stream version (--stream) to read");
  cmd->add_option("--since", o->since, "Only events recorded at or after (ns or ISO 8601)");
  cmd->add_option("--until", o->until, "Only events recorded at or before (ns or ISO 8601)");
  cmd->add_option("--limit", o->limit, "At most N events");
  cmd->add_flag("--backward", o->backward, "Read the stream newest first");
  cmd->add_option("--format", o->format, "jsonl or table")->capture_default_str();
  cmd->callback([o] { ExitCode() = RunRead(*o); });
}

}  // namespace doppel::tools
