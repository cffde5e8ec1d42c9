// doppel append: one event, written by hand as JSON and converted through the schema.
#include <fmt/format.h>

#include <iostream>
#include <nlohmann/json.hpp>

#include "command.h"
#include "doppel/core/json_text.h"
#include "doppel/schemas/payloads.h"
#include "store_access.h"

namespace doppel::tools {
namespace {

struct AppendOptions {
  StoreOptions store;
  std::string stream;
  std::string type;
  std::string expect = "any";
  std::string id;
  std::string json;
  std::string occurred;
  std::string causation;
  std::string correlation;
};

int RunAppend(const AppendOptions& o) {
  auto expected = eventstore::ExpectedVersion::Parse(o.expect);
  if (!expected.ok()) return Fail(expected.status());
  eventstore::NewEvent event;
  event.type = o.type;
  if (!o.id.empty()) {
    auto id = EventId::Parse(o.id);
    if (!id.ok()) return Fail(id.status());
    event.id = *id;
  }
  for (auto [text, field] : {std::pair{&o.causation, &event.causation_id},
                             std::pair{&o.correlation, &event.correlation_id}}) {
    if (text->empty()) continue;
    auto id = EventId::Parse(*text);
    if (!id.ok()) return Fail(id.status());
    *field = *id;
  }
  if (!o.occurred.empty()) {
    auto t = ParseTime(o.occurred);
    if (!t.ok()) return Fail(t.status());
    event.occurred_ns = *t;
  }
  auto payload = schemas::PayloadFromJson(o.type, o.json);
  if (!payload.ok()) return Fail(payload.status());
  event.payload = std::move(payload).value();
  if (const auto* type = schemas::FindPayloadType(o.type)) {
    event.payload_schema_version = type->current_version;
  }

  auto store = OpenStore(o.store, Access::kReadWrite);
  if (!store.ok()) return Fail(store.status());
  eventstore::AppendRequest request{o.stream, *expected, {}};
  request.events.push_back(std::move(event));
  auto result = (*store)->Append(std::move(request));
  if (!result.ok()) return Fail(result.status());
  std::cout << fmt::format(
                   "{{\"stream\":{},\"version\":{},\"position\":{},\"id\":\"{}\","
                   "\"duplicate\":{}}}",
                   SafeJsonDump(nlohmann::json(o.stream)), result->first_version,
                   result->first_position, result->ids.front().ToString(), result->duplicate)
            << std::endl;
  return kExitOk;
}

}  // namespace

void AddAppendCommand(CLI::App& app) {
  auto o = std::make_shared<AppendOptions>();
  CLI::App* cmd = app.add_subcommand("append", "Append one event to a stream");
  AddStoreOptions(*cmd, o->store);
  cmd->add_option("--stream", o->stream, "Stream, e.g. robot-7")->required();
  cmd->add_option("--type", o->type, "Event type, e.g. JointStateObserved")->required();
  cmd->add_option("--expect", o->expect,
                  "Expected version: any, none (no stream yet), exists, or the stream's "
                  "current last version N")
      ->capture_default_str();
  cmd->add_option("--id", o->id, "Event id (UUID); a retry with the same id is idempotent");
  cmd->add_option("--json", o->json, "Payload as JSON, per schemas/robot_events.fbs")->required();
  cmd->add_option("--occurred", o->occurred, "Source time: ns since epoch or ISO 8601");
  cmd->add_option("--causation", o->causation, "Id of the event that caused this one");
  cmd->add_option("--correlation", o->correlation, "Correlation id");
  cmd->callback([o] { ExitCode() = RunAppend(*o); });
}

}  // namespace doppel::tools
