// Fuzzes the twin's fold: a few events (format in fuzz_inputs.h) applied in order to one
// RobotState of a builtin model (twins::Apply), then the snapshot encoding. What must hold:
// Apply never crashes whatever the payloads, the state encodes, the encoding decodes
// (DecodeState), and the decoded state encodes to the same bytes (rebuilding from a snapshot
// and from the first event must agree).
#include <memory>
#include <string>
#include <string_view>

#include "doppel/eventstore/types.h"
#include "doppel/twins/robot_aggregate.h"
#include "doppel/twins/robot_model.h"
#include "fuzz_inputs.h"

namespace {

const doppel::twins::RobotModel& Model(std::string_view name) {
  static const auto load = [](std::string_view n) {
    auto m = doppel::twins::RobotModel::Builtin(n);
    DOPPEL_FUZZ_CHECK(m.ok(), "builtin model: %s", m.status().ToString().c_str());
    return std::move(m).value();
  };
  static const doppel::twins::RobotModel arm = load("doppel_arm6");
  static const doppel::twins::RobotModel base = load("doppel_base");
  return name == "doppel_base" ? base : arm;
}

// A recorded time in 2025, 10 ms per event: late enough for any occurred_ns a payload names
// to be plausible, spaced so that prediction scoring finds due checks.
constexpr int64_t kFirstRecordedNs = 1'750'000'000'000'000'000;
constexpr int64_t kEventSpacingNs = 10'000'000;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace doppel;
  if (size == 0) return 0;
  const std::string_view model_name = (data[0] & 1) ? "doppel_base" : "doppel_arm6";
  const twins::RobotModel& model = Model(model_name);
  const auto events =
      fuzz::SplitEvents(std::string_view(reinterpret_cast<const char*>(data) + 1, size - 1));
  // A fold is over a stream's events; a long one only repeats what a short one reaches.
  if (events.size() > 64) return 0;

  const schemas::Upcasters upcasters;
  twins::RobotState state;
  state.robot_id = "fuzz";
  uint64_t version = 0;
  for (const fuzz::FuzzEvent& e : events) {
    auto event = eventstore::RecordedEvent::FromBytes(
        fuzz::EnvelopeBytes(twins::RobotStream(state.robot_id), version, version, e.type, e.payload,
                            kFirstRecordedNs + static_cast<int64_t>(version) * kEventSpacingNs));
    // Payloads that do not verify never leave the store; the envelope refuses them here too.
    if (!event.ok()) continue;
    twins::Apply(state, *event, model, upcasters);
    ++version;
  }

  const std::string encoded = twins::EncodeState(state);
  auto decoded = twins::DecodeState(encoded, twins::kSnapshotSchemaVersion);
  DOPPEL_FUZZ_CHECK(decoded.ok(), "the state's own snapshot does not decode: %s",
                    decoded.status().ToString().c_str());
  const std::string again = twins::EncodeState(*decoded);
  DOPPEL_FUZZ_CHECK(again == encoded, "snapshot round trip changed the state (%zu -> %zu bytes)",
                    encoded.size(), again.size());
  (void)twins::EncodePublishedState(state, model, state.last_event_ns);
  return 0;
}
