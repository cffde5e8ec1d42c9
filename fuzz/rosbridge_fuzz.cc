// Fuzzes what a WebSocket client's text goes through in the gateway, sans-I/O: ParseClientJson
// (bridges/ws client_json.h, the one parser of every client's JSON: rosbridge ops, Foxglove
// client ops and client messages) and a rosbridge session (rosbridge_session.h) fed the
// messages, with every action it asks for answered the way the gateway would.
//
// Input: byte 0 picks the role (even: viewer, odd: operator); the rest is the client's
// messages separated by NUL bytes. What must hold:
// - nothing crashes, however deep or large the JSON (the budgets hold while parsing);
// - a parsed value is never nested deeper than kClientJsonMaxDepth;
// - every text the session sends is a JSON object with a string "op" (fragments included).
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "client_json.h"
#include "fuzz_inputs.h"
#include "rosbridge_session.h"

namespace {

using doppel::gateway::ClientJsonLimits;
using doppel::gateway::kClientJsonMaxDepth;
using doppel::gateway::ParseClientJson;
using nlohmann::json;

// Nesting of `j`, walked with an explicit stack (the point is that it may not be trusted).
size_t Depth(const json& j) {
  size_t deepest = 0;
  std::vector<std::pair<const json*, size_t>> stack = {{&j, 0}};
  while (!stack.empty()) {
    auto [v, d] = stack.back();
    stack.pop_back();
    if (!v->is_structured()) continue;
    deepest = std::max(deepest, d + 1);
    for (const auto& child : *v) stack.emplace_back(&child, d + 1);
  }
  return deepest;
}

// Small budgets too, so that inputs libFuzzer reaches exercise the refusals.
void CheckParse(std::string_view text) {
  for (const ClientJsonLimits limits :
       {ClientJsonLimits{}, ClientJsonLimits{.max_depth = 3, .max_bytes = 64}}) {
    auto parsed = ParseClientJson(text, limits);
    if (!parsed.ok()) {
      DOPPEL_FUZZ_CHECK(!parsed.status().message().empty(), "a refusal without a reason");
      continue;
    }
    DOPPEL_FUZZ_CHECK(text.size() <= limits.max_bytes, "%zu bytes accepted", text.size());
    const size_t depth = Depth(*parsed);
    DOPPEL_FUZZ_CHECK(depth <= limits.max_depth, "depth %zu accepted, budget %zu", depth,
                      limits.max_depth);
  }
}

void CheckSent(const std::shared_ptr<const std::string>& text) {
  // The session's own output (a service_response wraps a client's args a level or two
  // deeper than the client budget), so nlohmann's parse, which does not recurse.
  const json j = json::parse(*text, nullptr, false);
  DOPPEL_FUZZ_CHECK(!j.is_discarded() && j.is_object() && j.contains("op") && j["op"].is_string(),
                    "the session sent %s", text->c_str());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace doppel::gateway;
  if (size == 0) return 0;
  const Role role = data[0] % 2 ? Role::kOperator : Role::kViewer;
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  CheckParse(input);

  RosbridgeSession session(role, [](std::string_view robot) { return robot == "r1"; });
  int64_t now = 0;
  size_t at = 0;
  while (at <= input.size()) {
    const size_t end = std::min(input.find('\0', at), input.size());
    const std::string_view message = input.substr(at, end - at);
    at = end + 1;
    now += 7'000'000;
    session.OnText(message, now);
    session.OnTick(now);
    // Answer everything asked, as the gateway does, and check what the session sends.
    for (int round = 0; round < 2; ++round) {
      for (auto& action : session.TakeActions()) {
        if (auto* send = std::get_if<RosbridgeSend>(&action)) {
          for (const auto& text : send->texts) CheckSent(text);
        } else if (auto* watch = std::get_if<RosbridgeWatch>(&action)) {
          if (watch->watch) {
            session.OnMessage(
                watch->topic, "r1",
                std::make_shared<const std::string>(
                    json({{"op", "publish"}, {"topic", watch->topic}, {"msg", {}}}).dump()),
                now);
          }
        } else if (auto* command = std::get_if<RosbridgeCommand>(&action)) {
          DOPPEL_FUZZ_CHECK(Depth(command->twist) <= kClientJsonMaxDepth, "deep twist");
          session.OnCommandDone(command->request_id, command->robot, uint64_t{1});
        } else if (auto* call = std::get_if<RosbridgeServiceCall>(&action)) {
          DOPPEL_FUZZ_CHECK(Depth(call->args) <= kClientJsonMaxDepth, "deep args");
          session.OnServiceDone(call->id, call->service, call->args);
        }
      }
    }
  }
  return 0;
}
