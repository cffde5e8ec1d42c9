// RobotAggregate: one robot's state as a fold over its stream (`robot-<id>`).
//
//   state = fold(Apply, snapshot or empty state, events after it)
//
// Apply depends only on the previous state, the event and the (immutable) robot model, so
// rebuilding from a snapshot and from the first event give byte-identical encodings. Unknown
// event types and payloads that do not verify are counted and skipped, never a crash.
// Snapshots are the TwinState FlatBuffer (schemas/twin_state.fbs) with schema version
// kSnapshotSchemaVersion; any other version means "replay from the first event".
#pragma once

#include <Eigen/Geometry>
#include <array>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "doppel/eventstore/event_store.h"
#include "doppel/schemas/payloads.h"
#include "doppel/schemas/robot_events_generated.h"
#include "doppel/twins/robot_model.h"

namespace doppel::twins {

inline constexpr uint32_t kSnapshotSchemaVersion = 1;
// Prediction horizons that accuracy is scored at.
inline constexpr std::array<int64_t, 3> kScoredHorizonsNs = {500'000'000, 1'000'000'000,
                                                             2'000'000'000};

struct RobotState {
  std::string robot_id;
  int64_t stream_version = -1;  // last applied event
  uint64_t last_position = 0;
  bool registered = false;
  std::string model;
  std::vector<std::string> joint_names;  // at most schemas::kMaxJointsPerRobot
  std::vector<double> joint_position, joint_velocity, joint_effort;
  // Slot of each joint name: derived from joint_names (not encoded), rebuilt when stale.
  std::unordered_map<std::string, size_t> joint_index;
  Eigen::Vector3d base_position = Eigen::Vector3d::Zero();
  Eigen::Quaterniond base_orientation = Eigen::Quaterniond::Identity();
  Eigen::Vector3d base_linear = Eigen::Vector3d::Zero();  // in the base frame
  Eigen::Vector3d base_angular = Eigen::Vector3d::Zero();
  events::RobotMode mode = events::RobotMode::Unknown;
  struct Fault {
    events::Severity severity = events::Severity::Info;
    std::string message;
    TimeNs raised_ns = 0;
  };
  std::map<std::string, Fault> faults;  // by code
  struct Command {
    bool present = false;
    events::CommandKind kind = events::CommandKind::Velocity;
    Eigen::Vector3d linear = Eigen::Vector3d::Zero(), angular = Eigen::Vector3d::Zero();
    std::vector<std::string> joint_names;
    std::vector<double> joint_targets;
    std::string issued_by;
    TimeNs issued_ns = 0;
  } last_command;
  TimeNs last_observation_ns = 0;  // source time of the newest observation
  TimeNs last_event_ns = 0;        // recorded time of the newest event
  struct Prediction {
    bool present = false;
    TimeNs start_ns = 0, horizon_ns = 0;
    uint64_t based_on_version = 0;
    bool collision = false;
    int64_t collision_t_offset_ns = 0;
    std::string collision_link, collision_obstacle;
    uint32_t limit_violations = 0;
    EventId prediction_id;
  } prediction;
  struct Accuracy {
    std::array<uint64_t, 3> base_scored{}, tool_scored{};
    std::array<double, 3> mean_base_error_m{}, max_base_error_m{}, mean_tool_error_m{};
  } accuracy;
  struct PendingCheck {
    TimeNs due_ns = 0;
    uint8_t horizon = 0;
    bool base_scored = false, tool_scored = false;
    Eigen::Vector3d base = Eigen::Vector3d::Zero(), tool = Eigen::Vector3d::Zero();
  };
  std::vector<PendingCheck> pending_checks;  // ordered by due time
  struct Counters {
    uint64_t applied = 0, skipped_unknown_type = 0, skipped_bad_payload = 0, upcast = 0;
  } counters;
  bool silent = false;
  uint64_t alerts = 0;
};

// The fold step. `model` may be a generic model (no kinematics): end-effector accuracy is
// then not scored.
void Apply(RobotState& state, const eventstore::RecordedEvent& event, const RobotModel& model,
           const schemas::Upcasters& upcasters);

// The TwinState FlatBuffer of `state` (deterministic: equal states, equal bytes).
std::string EncodeState(const RobotState& state);
// What a twin publishes: the state plus derived views (link poses in the site frame from
// `model`'s forward kinematics, staleness at `now`). Not for snapshots.
std::string EncodePublishedState(const RobotState& state, const RobotModel& model, TimeNs now);
// Link poses in the site frame: base pose x forward kinematics of the current joints.
std::vector<Eigen::Isometry3d> SiteLinkPoses(const RobotState& state, const RobotModel& model);
// Reads a TwinState written with `schema_version`. InvalidArgument for another version,
// Corruption if it does not verify: both mean "replay from the first event".
Result<RobotState> DecodeState(std::string_view bytes, uint32_t schema_version);

// The stream of a robot id.
inline std::string RobotStream(std::string_view robot_id) {
  return "robot-" + std::string(robot_id);
}

struct RebuildStats {
  bool from_snapshot = false;
  uint64_t events_applied = 0;
};

// Latest usable snapshot + the events after it, up to `until_version` (inclusive) and
// events recorded at or before `until_ns`. An unreadable or old snapshot is ignored.
Result<RobotState> Rebuild(const eventstore::EventStore& store, std::string_view robot_id,
                           const RobotModel& model, const schemas::Upcasters& upcasters,
                           RebuildStats* stats = nullptr, int64_t until_version = INT64_MAX,
                           TimeNs until_ns = eventstore::kTimeMax);

}  // namespace doppel::twins
