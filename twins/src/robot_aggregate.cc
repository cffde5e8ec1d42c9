#include "doppel/twins/robot_aggregate.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "doppel/core/aligned_bytes.h"
#include "doppel/schemas/limits.h"
#include "doppel/schemas/payload_rules.h"
#include "doppel/schemas/twin_state_generated.h"
#include "doppel/schemas/verify_root.h"

namespace doppel::twins {
namespace {

// Times in a stored payload are any int64 (a damaged or hostile PredictionMade): arithmetic on
// them must not overflow (UBSan: signed overflow, found by fuzz_twin_apply).
uint64_t Distance(int64_t a, int64_t b) {
  return a >= b ? static_cast<uint64_t>(a) - static_cast<uint64_t>(b)
                : static_cast<uint64_t>(b) - static_cast<uint64_t>(a);
}
int64_t SaturatingAdd(int64_t a, int64_t b) {
  int64_t sum;
  if (__builtin_add_overflow(a, b, &sum)) {
    return b > 0 ? std::numeric_limits<int64_t>::max() : std::numeric_limits<int64_t>::min();
  }
  return sum;
}

template <typename T>
const T* Payload(std::string_view bytes) {
  return flatbuffers::GetRoot<T>(bytes.data());
}

std::vector<std::string> Strings(
    const flatbuffers::Vector<flatbuffers::Offset<flatbuffers::String>>* v) {
  std::vector<std::string> out;
  if (v) {
    out.reserve(v->size());
    for (const auto* s : *v) out.push_back(s->str());
  }
  return out;
}

std::vector<double> Doubles(const flatbuffers::Vector<double>* v) {
  return v ? std::vector<double>(v->begin(), v->end()) : std::vector<double>();
}

Eigen::Vector3d V(const events::Vec3& v) { return {v.x(), v.y(), v.z()}; }
events::Vec3 V(const Eigen::Vector3d& v) { return events::Vec3(v.x(), v.y(), v.z()); }

void RefreshJointIndex(RobotState& s) {
  if (s.joint_index.size() == s.joint_names.size()) return;
  s.joint_index.clear();
  for (size_t i = 0; i < s.joint_names.size(); ++i) s.joint_index.emplace(s.joint_names[i], i);
}

// Index of joint `name`, adding it when the robot reports a joint we have not seen.
// O(1): a sample naming many joints costs its length, not its length squared.
// REQUIRES: JointsFit(s, ...) for names that may be new.
size_t JointSlot(RobotState& s, std::string_view name) {
  RefreshJointIndex(s);
  auto [it, added] = s.joint_index.try_emplace(std::string(name), s.joint_names.size());
  if (added) {
    s.joint_names.emplace_back(name);
    s.joint_position.push_back(0);
    s.joint_velocity.push_back(0);
    s.joint_effort.push_back(0);
  }
  return it->second;
}

// True if adding `names` keeps the robot within kMaxJointsPerRobot joints.
bool JointsFit(RobotState& s, const std::vector<std::string_view>& names) {
  RefreshJointIndex(s);
  size_t added = 0;
  for (std::string_view n : names) added += s.joint_index.count(std::string(n)) == 0 ? 1 : 0;
  return s.joint_names.size() + added <= schemas::kMaxJointsPerRobot;
}

void ScoreBase(RobotState& s, TimeNs observed_at) {
  for (auto& check : s.pending_checks) {
    if (check.due_ns > observed_at || check.base_scored) continue;
    const double error = (s.base_position - check.base).norm();
    const int h = check.horizon;
    auto& n = s.accuracy.base_scored[h];
    s.accuracy.mean_base_error_m[h] +=
        (error - s.accuracy.mean_base_error_m[h]) / static_cast<double>(++n);
    s.accuracy.max_base_error_m[h] = std::max(s.accuracy.max_base_error_m[h], error);
    check.base_scored = true;
  }
}

void ScoreTool(RobotState& s, TimeNs observed_at, const RobotModel& model) {
  if (!model.has_kinematics()) return;
  bool computed = false;
  Eigen::Vector3d tool;
  for (auto& check : s.pending_checks) {
    if (check.due_ns > observed_at || check.tool_scored) continue;
    if (!computed) {
      std::vector<double> q(model.joint_names().size(), 0.0);
      for (size_t i = 0; i < s.joint_names.size(); ++i) {
        if (auto m = model.MovableIndex(s.joint_names[i])) q[*m] = s.joint_position[i];
      }
      tool = s.base_orientation * model.LinkPoses(q)[model.end_effector_link()].translation() +
             s.base_position;
      computed = true;
    }
    const int h = check.horizon;
    auto& n = s.accuracy.tool_scored[h];
    const double error = (tool - check.tool).norm();
    s.accuracy.mean_tool_error_m[h] +=
        (error - s.accuracy.mean_tool_error_m[h]) / static_cast<double>(++n);
    check.tool_scored = true;
  }
}

// Checks scored on both counts (or whose time is long past) are done.
void DropFinishedChecks(RobotState& s, bool tool_scoring) {
  std::erase_if(s.pending_checks, [&](const RobotState::PendingCheck& c) {
    return c.base_scored && (c.tool_scored || !tool_scoring);
  });
}

}  // namespace

std::string EncodeStateWith(const RobotState& s, const RobotModel* published_model, TimeNs now);

void Apply(RobotState& s, const eventstore::RecordedEvent& event, const RobotModel& model,
           const schemas::Upcasters& upcasters) {
  s.stream_version = static_cast<int64_t>(event.version());
  s.last_position = event.position();
  s.last_event_ns = event.recorded_ns();
  const std::string_view type = event.type();
  const schemas::PayloadType* known = schemas::FindPayloadType(type);
  if (known == nullptr) {
    ++s.counters.skipped_unknown_type;
    return;
  }
  // RecordedEvent verified the payload; upcast old payload versions to today's (verified
  // again then), without a copy when no upcaster applies.
  const uint16_t version = event.envelope().payload_schema_version();
  std::string upcast;
  std::string_view p = event.payload();
  if (upcasters.Changes(type, version)) {
    auto changed = upcasters.Upcast(type, version, p);
    if (!changed.ok() || !schemas::VerifyPayload(type, *changed).ok()) {
      ++s.counters.skipped_bad_payload;
      return;
    }
    upcast = std::move(changed).value();
    p = upcast;
  } else if (reinterpret_cast<uintptr_t>(p.data()) % 8 != 0) {
    // Doubles are read in place: the payload's bytes must start 8-aligned, as a copy does.
    upcast.assign(p);
    p = upcast;
  }
  if (!schemas::CheckPayloadValues(type, p).ok()) {
    // Stored by an older doppel, or damaged: values the entry points refuse today (non-finite
    // numbers, text that is not UTF-8, too many joints) never reach the state or the physics.
    ++s.counters.skipped_bad_payload;
    return;
  }
  if (version < known->current_version) ++s.counters.upcast;
  const TimeNs source_time = event.occurred_ns() != 0 ? event.occurred_ns() : event.recorded_ns();
  ++s.counters.applied;

  if (type == "JointStateObserved") {
    const auto* js = Payload<events::JointStateObserved>(p);
    const auto* names = js->names();
    const size_t n = names ? names->size() : 0;
    auto fits = [n](const flatbuffers::Vector<double>* v) {
      return !v || v->size() == 0 || v->size() == n;
    };
    if (!fits(js->position()) || !fits(js->velocity()) || !fits(js->effort())) {
      --s.counters.applied;
      ++s.counters.skipped_bad_payload;
      return;
    }
    // Usually the joints come in the order the state already holds them: no lookups then.
    bool in_order = n <= s.joint_names.size();
    for (size_t i = 0; in_order && i < n; ++i) {
      in_order = s.joint_names[i] == names->Get(i)->string_view();
    }
    std::vector<std::string_view> joint_names;
    if (!in_order) {
      joint_names.reserve(n);
      for (size_t i = 0; i < n; ++i) joint_names.push_back(names->Get(i)->string_view());
      if (!JointsFit(s, joint_names)) {
        --s.counters.applied;
        ++s.counters.skipped_bad_payload;
        return;
      }
    }
    for (size_t i = 0; i < n; ++i) {
      const size_t slot = in_order ? i : JointSlot(s, joint_names[i]);
      if (js->position() && js->position()->size()) s.joint_position[slot] = js->position()->Get(i);
      if (js->velocity() && js->velocity()->size()) s.joint_velocity[slot] = js->velocity()->Get(i);
      if (js->effort() && js->effort()->size()) s.joint_effort[slot] = js->effort()->Get(i);
    }
    s.last_observation_ns = std::max(s.last_observation_ns, source_time);
    ScoreTool(s, source_time, model);
    DropFinishedChecks(s, model.has_kinematics());
  } else if (type == "PoseObserved") {
    const auto* pose = Payload<events::PoseObserved>(p);
    if (pose->pose()) {
      s.base_position = V(pose->pose()->position());
      const auto& q = pose->pose()->orientation();
      Eigen::Quaterniond orientation(q.w(), q.x(), q.y(), q.z());
      s.base_orientation =
          orientation.norm() > 0 ? orientation.normalized() : Eigen::Quaterniond::Identity();
    }
    if (pose->twist()) {
      s.base_linear = V(pose->twist()->linear());
      s.base_angular = V(pose->twist()->angular());
    }
    s.last_observation_ns = std::max(s.last_observation_ns, source_time);
    ScoreBase(s, source_time);
    DropFinishedChecks(s, model.has_kinematics());
  } else if (type == "RobotRegistered") {
    const auto* r = Payload<events::RobotRegistered>(p);
    const std::string model_name = r->model() ? r->model()->str() : s.model;
    std::vector<std::string> joints = Strings(r->joint_names());
    if (joints.empty()) {
      // A built-in model's joints are known without being listed (static data: Apply stays
      // a function of the state and the event).
      if (auto builtin = RobotModel::Builtin(model_name); builtin.ok())
        joints = builtin->joint_names();
    }
    if (!JointsFit(s, std::vector<std::string_view>(joints.begin(), joints.end()))) {
      --s.counters.applied;
      ++s.counters.skipped_bad_payload;
      return;
    }
    s.registered = true;
    if (r->robot_id()) s.robot_id = r->robot_id()->str();
    s.model = model_name;
    for (const auto& name : joints) JointSlot(s, name);
  } else if (type == "CommandIssued") {
    const auto* c = Payload<events::CommandIssued>(p);
    auto& cmd = s.last_command;
    cmd.present = true;
    cmd.kind = c->kind();
    cmd.linear = c->twist() ? V(c->twist()->linear()) : Eigen::Vector3d::Zero();
    cmd.angular = c->twist() ? V(c->twist()->angular()) : Eigen::Vector3d::Zero();
    cmd.joint_names = Strings(c->joint_names());
    cmd.joint_targets = Doubles(c->joint_targets());
    cmd.issued_by = c->issued_by() ? c->issued_by()->str() : "";
    cmd.issued_ns = source_time;
  } else if (type == "ModeChanged") {
    s.mode = Payload<events::ModeChanged>(p)->mode();
  } else if (type == "FaultRaised") {
    const auto* f = Payload<events::FaultRaised>(p);
    s.faults[f->code() ? f->code()->str() : ""] =
        RobotState::Fault{f->severity(), f->message() ? f->message()->str() : "", source_time};
  } else if (type == "FaultCleared") {
    const auto* f = Payload<events::FaultCleared>(p);
    s.faults.erase(f->code() ? f->code()->str() : "");
  } else if (type == "PredictionMade") {
    const auto* pm = Payload<events::PredictionMade>(p);
    auto& pred = s.prediction;
    pred.present = true;
    pred.start_ns = pm->start_ns();
    pred.horizon_ns = pm->horizon_ns();
    pred.based_on_version = pm->based_on_version();
    pred.collision = pm->collision() != nullptr;
    pred.collision_t_offset_ns = pm->collision() ? pm->collision()->t_offset_ns() : 0;
    pred.collision_link =
        pm->collision() && pm->collision()->link() ? pm->collision()->link()->str() : "";
    pred.collision_obstacle =
        pm->collision() && pm->collision()->obstacle() ? pm->collision()->obstacle()->str() : "";
    pred.limit_violations = pm->limit_violations() ? pm->limit_violations()->size() : 0;
    pred.prediction_id = event.id();
    // Remember what it said about 0.5 / 1 / 2 s ahead, to score when observations get there.
    if (pm->trajectory() && pm->trajectory()->size() > 0) {
      for (uint8_t h = 0; h < kScoredHorizonsNs.size(); ++h) {
        if (kScoredHorizonsNs[h] > pm->horizon_ns()) continue;
        const events::PredictedSample* nearest = nullptr;
        for (const auto* sample : *pm->trajectory()) {
          if (!nearest || Distance(sample->t_offset_ns(), kScoredHorizonsNs[h]) <
                              Distance(nearest->t_offset_ns(), kScoredHorizonsNs[h])) {
            nearest = sample;
          }
        }
        RobotState::PendingCheck check;
        check.due_ns = SaturatingAdd(pm->start_ns(), nearest->t_offset_ns());
        check.horizon = h;
        if (nearest->base_pose()) check.base = V(nearest->base_pose()->position());
        if (model.has_kinematics() && nearest->joint_positions()) {
          std::vector<double> q(nearest->joint_positions()->begin(),
                                nearest->joint_positions()->end());
          q.resize(model.joint_names().size(), 0.0);
          const Eigen::Quaterniond base_q =
              nearest->base_pose() ? Eigen::Quaterniond(nearest->base_pose()->orientation().w(),
                                                        nearest->base_pose()->orientation().x(),
                                                        nearest->base_pose()->orientation().y(),
                                                        nearest->base_pose()->orientation().z())
                                   : Eigen::Quaterniond::Identity();
          check.tool = (base_q.norm() > 0 ? base_q.normalized() : Eigen::Quaterniond::Identity()) *
                           model.LinkPoses(q)[model.end_effector_link()].translation() +
                       check.base;
        }
        s.pending_checks.push_back(check);
      }
      std::stable_sort(s.pending_checks.begin(), s.pending_checks.end(),
                       [](const auto& a, const auto& b) { return a.due_ns < b.due_ns; });
      // Bound the backlog: a robot that never reports again must not grow state forever.
      constexpr size_t kMaxPending = 64;
      if (s.pending_checks.size() > kMaxPending) {
        s.pending_checks.erase(s.pending_checks.begin(),
                               s.pending_checks.end() - static_cast<std::ptrdiff_t>(kMaxPending));
      }
    }
  } else if (type == "RobotWentSilent") {
    s.silent = true;
  } else if (type == "RobotResumed") {
    s.silent = false;
  } else if (type == "PredictionAlert") {
    ++s.alerts;
  } else {
    // Known to the schema (e.g. Blob) but not part of a robot's state.
    --s.counters.applied;
    ++s.counters.skipped_unknown_type;
  }
}

std::string EncodeState(const RobotState& s) { return EncodeStateWith(s, nullptr, 0); }

std::string EncodePublishedState(const RobotState& s, const RobotModel& model, TimeNs now) {
  return EncodeStateWith(s, &model, now);
}

std::vector<Eigen::Isometry3d> SiteLinkPoses(const RobotState& s, const RobotModel& model) {
  std::vector<double> q(model.joint_names().size(), 0.0);
  for (size_t i = 0; i < s.joint_names.size(); ++i) {
    if (auto m = model.MovableIndex(s.joint_names[i])) q[*m] = s.joint_position[i];
  }
  Eigen::Isometry3d base = Eigen::Isometry3d::Identity();
  base.translate(s.base_position);
  base.rotate(s.base_orientation);
  std::vector<Eigen::Isometry3d> poses = model.LinkPoses(q);
  for (auto& p : poses) p = base * p;
  return poses;
}

std::string EncodeStateWith(const RobotState& s, const RobotModel* published_model, TimeNs now) {
  flatbuffers::FlatBufferBuilder fbb(1024);
  auto robot_id = fbb.CreateString(s.robot_id);
  auto model = fbb.CreateString(s.model);
  auto joint_names = fbb.CreateVectorOfStrings(s.joint_names);
  auto position = fbb.CreateVector(s.joint_position);
  auto velocity = fbb.CreateVector(s.joint_velocity);
  auto effort = fbb.CreateVector(s.joint_effort);
  std::vector<flatbuffers::Offset<twin::ActiveFault>> faults;
  for (const auto& [code, f] : s.faults) {
    faults.push_back(twin::CreateActiveFault(fbb, fbb.CreateString(code), f.severity,
                                             fbb.CreateString(f.message), f.raised_ns));
  }
  auto fault_vector = fbb.CreateVector(faults);
  flatbuffers::Offset<twin::LastCommand> command;
  if (s.last_command.present) {
    const auto& c = s.last_command;
    const events::Twist twist(V(c.linear), V(c.angular));
    command = twin::CreateLastCommand(fbb, c.kind, &twist, fbb.CreateVectorOfStrings(c.joint_names),
                                      fbb.CreateVector(c.joint_targets),
                                      fbb.CreateString(c.issued_by), c.issued_ns);
  }
  flatbuffers::Offset<twin::PredictionSummary> prediction;
  if (s.prediction.present) {
    const auto& p = s.prediction;
    const fb::Uuid id = schemas::ToFb(p.prediction_id);
    prediction = twin::CreatePredictionSummary(
        fbb, p.start_ns, p.horizon_ns, p.based_on_version, p.collision, p.collision_t_offset_ns,
        fbb.CreateString(p.collision_link), fbb.CreateString(p.collision_obstacle),
        p.limit_violations, &id);
  }
  const auto& a = s.accuracy;
  std::vector<uint64_t> scored(a.base_scored.begin(), a.base_scored.end());
  auto accuracy = twin::CreatePredictionAccuracy(
      fbb, fbb.CreateVector(scored),
      fbb.CreateVector(std::vector<double>(a.mean_base_error_m.begin(), a.mean_base_error_m.end())),
      fbb.CreateVector(std::vector<double>(a.max_base_error_m.begin(), a.max_base_error_m.end())),
      fbb.CreateVector(std::vector<double>(a.mean_tool_error_m.begin(), a.mean_tool_error_m.end())),
      fbb.CreateVector(std::vector<uint64_t>(a.tool_scored.begin(), a.tool_scored.end())));
  std::vector<twin::PendingCheck> checks;
  for (const auto& c : s.pending_checks) {
    checks.emplace_back(c.due_ns, c.horizon, c.base_scored, c.tool_scored, V(c.base), V(c.tool));
  }
  auto check_vector = fbb.CreateVectorOfStructs(checks);
  auto counters = twin::CreateCounters(fbb, s.counters.applied, s.counters.skipped_unknown_type,
                                       s.counters.skipped_bad_payload, s.counters.upcast);
  const events::Pose base_pose(V(s.base_position),
                               events::Quat(s.base_orientation.x(), s.base_orientation.y(),
                                            s.base_orientation.z(), s.base_orientation.w()));
  const events::Twist base_twist(V(s.base_linear), V(s.base_angular));
  flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<flatbuffers::String>>> link_names;
  flatbuffers::Offset<flatbuffers::Vector<const events::Pose*>> link_poses;
  if (published_model != nullptr && published_model->has_kinematics()) {
    std::vector<std::string> names;
    std::vector<events::Pose> poses;
    const auto site = SiteLinkPoses(s, *published_model);
    for (size_t i = 0; i < site.size(); ++i) {
      names.push_back(published_model->links()[i].name);
      const Eigen::Quaterniond q(site[i].rotation());
      poses.emplace_back(V(Eigen::Vector3d(site[i].translation())),
                         events::Quat(q.x(), q.y(), q.z(), q.w()));
    }
    link_names = fbb.CreateVectorOfStrings(names);
    link_poses = fbb.CreateVectorOfStructs(poses);
  }
  twin::TwinStateBuilder b(fbb);
  b.add_robot_id(robot_id);
  b.add_stream_version(s.stream_version);
  b.add_last_position(s.last_position);
  b.add_registered(s.registered);
  b.add_model(model);
  b.add_joint_names(joint_names);
  b.add_joint_position(position);
  b.add_joint_velocity(velocity);
  b.add_joint_effort(effort);
  b.add_base_pose(&base_pose);
  b.add_base_twist(&base_twist);
  b.add_mode(s.mode);
  b.add_faults(fault_vector);
  if (s.last_command.present) b.add_last_command(command);
  b.add_last_observation_ns(s.last_observation_ns);
  b.add_last_event_ns(s.last_event_ns);
  if (s.prediction.present) b.add_prediction(prediction);
  b.add_accuracy(accuracy);
  b.add_pending_checks(check_vector);
  b.add_counters(counters);
  b.add_silent(s.silent);
  b.add_alerts(s.alerts);
  if (published_model != nullptr) {
    if (!link_names.IsNull()) {
      b.add_link_names(link_names);
      b.add_link_poses(link_poses);
    }
    b.add_staleness_ns(s.last_observation_ns ? now - s.last_observation_ns : 0);
    b.add_published_ns(now);
  }
  fbb.Finish(b.Finish(), twin::TwinStateIdentifier());
  return std::string(reinterpret_cast<const char*>(fbb.GetBufferPointer()), fbb.GetSize());
}

Result<RobotState> DecodeState(std::string_view bytes, uint32_t schema_version) {
  if (schema_version != kSnapshotSchemaVersion) {
    return Status::InvalidArgument(
        fmt::format("snapshot schema version {} (this build reads {}): replay from the first event",
                    schema_version, kSnapshotSchemaVersion));
  }
  // Everything is copied out of the snapshot: align a copy when the caller's bytes are not.
  std::vector<uint64_t> scratch;
  const uint8_t* aligned = AlignedBytes(bytes, scratch);
  auto verified = schemas::VerifyRoot<twin::TwinState>(
      std::string_view(reinterpret_cast<const char*>(aligned), bytes.size()),
      "snapshot (TwinState)", twin::TwinStateIdentifier());
  if (!verified.ok()) return verified.status();
  const twin::TwinState* t = *verified;
  RobotState s;
  s.robot_id = t->robot_id() ? t->robot_id()->str() : "";
  s.stream_version = t->stream_version();
  s.last_position = t->last_position();
  s.registered = t->registered();
  s.model = t->model() ? t->model()->str() : "";
  s.joint_names = Strings(t->joint_names());
  s.joint_position = Doubles(t->joint_position());
  s.joint_velocity = Doubles(t->joint_velocity());
  s.joint_effort = Doubles(t->joint_effort());
  if (s.joint_position.size() != s.joint_names.size() ||
      s.joint_velocity.size() != s.joint_names.size() ||
      s.joint_effort.size() != s.joint_names.size()) {
    return Status::Corruption("snapshot joint arrays do not match its joint names");
  }
  if (t->base_pose()) {
    s.base_position = V(t->base_pose()->position());
    const auto& q = t->base_pose()->orientation();
    s.base_orientation = Eigen::Quaterniond(q.w(), q.x(), q.y(), q.z());
  }
  if (t->base_twist()) {
    s.base_linear = V(t->base_twist()->linear());
    s.base_angular = V(t->base_twist()->angular());
  }
  s.mode = t->mode();
  if (t->faults()) {
    for (const auto* f : *t->faults()) {
      s.faults[f->code() ? f->code()->str() : ""] =
          RobotState::Fault{f->severity(), f->message() ? f->message()->str() : "", f->raised_ns()};
    }
  }
  if (const auto* c = t->last_command()) {
    auto& cmd = s.last_command;
    cmd.present = true;
    cmd.kind = c->kind();
    if (c->twist()) {
      cmd.linear = V(c->twist()->linear());
      cmd.angular = V(c->twist()->angular());
    }
    cmd.joint_names = Strings(c->joint_names());
    cmd.joint_targets = Doubles(c->joint_targets());
    cmd.issued_by = c->issued_by() ? c->issued_by()->str() : "";
    cmd.issued_ns = c->issued_ns();
  }
  s.last_observation_ns = t->last_observation_ns();
  s.last_event_ns = t->last_event_ns();
  if (const auto* p = t->prediction()) {
    auto& pred = s.prediction;
    pred.present = true;
    pred.start_ns = p->start_ns();
    pred.horizon_ns = p->horizon_ns();
    pred.based_on_version = p->based_on_version();
    pred.collision = p->collision_predicted();
    pred.collision_t_offset_ns = p->collision_t_offset_ns();
    pred.collision_link = p->collision_link() ? p->collision_link()->str() : "";
    pred.collision_obstacle = p->collision_obstacle() ? p->collision_obstacle()->str() : "";
    pred.limit_violations = p->limit_violations();
    pred.prediction_id = schemas::FromFb(p->prediction_id());
  }
  if (const auto* a = t->accuracy()) {
    auto copy = [](const auto* v, auto& out) {
      if (!v) return;
      for (size_t i = 0; i < out.size() && i < v->size(); ++i)
        out[i] = v->Get(static_cast<uint32_t>(i));
    };
    copy(a->scored(), s.accuracy.base_scored);
    copy(a->mean_base_error_m(), s.accuracy.mean_base_error_m);
    copy(a->max_base_error_m(), s.accuracy.max_base_error_m);
    copy(a->mean_tool_error_m(), s.accuracy.mean_tool_error_m);
    copy(a->tool_scored(), s.accuracy.tool_scored);
  }
  if (t->pending_checks()) {
    for (const auto* c : *t->pending_checks()) {
      RobotState::PendingCheck check;
      check.due_ns = c->due_ns();
      check.horizon = std::min<uint8_t>(c->horizon(), 2);
      check.base_scored = c->base_scored();
      check.tool_scored = c->tool_scored();
      check.base = V(c->base());
      check.tool = V(c->tool());
      s.pending_checks.push_back(check);
    }
  }
  if (const auto* c = t->counters()) {
    s.counters = {c->applied(), c->skipped_unknown_type(), c->skipped_bad_payload(), c->upcast()};
  }
  s.silent = t->silent();
  s.alerts = t->alerts();
  return s;
}

Result<RobotState> Rebuild(const eventstore::EventStore& store, std::string_view robot_id,
                           const RobotModel& model, const schemas::Upcasters& upcasters,
                           RebuildStats* stats, int64_t until_version, TimeNs until_ns) {
  const std::string stream = RobotStream(robot_id);
  RobotState state;
  state.robot_id = std::string(robot_id);
  RebuildStats local;
  // The state at a past moment starts from the newest snapshot before it (the store keeps a
  // history of them), the current state from the latest.
  auto snapshot = until_ns == eventstore::kTimeMax ? store.LoadSnapshot(stream)
                                                   : store.LoadSnapshotAt(stream, until_ns);
  if (snapshot.ok()) {
    auto decoded = DecodeState(snapshot->state, snapshot->schema_version);
    if (decoded.ok() && decoded->stream_version <= until_version &&
        decoded->last_event_ns <= until_ns &&
        static_cast<uint64_t>(decoded->stream_version) == snapshot->version) {
      state = std::move(decoded).value();
      local.from_snapshot = true;
    }
  } else if (snapshot.status().code() != Status::Code::kNotFound) {
    return snapshot.status();
  }
  eventstore::StreamVersion next = static_cast<eventstore::StreamVersion>(state.stream_version + 1);
  while (static_cast<int64_t>(next) <= until_version) {
    auto page = store.ReadStream(stream, next, eventstore::Direction::kForward, 1024);
    if (!page.ok()) return page.status();
    for (const auto& e : page->events) {
      if (static_cast<int64_t>(e.version()) > until_version || e.recorded_ns() > until_ns) {
        if (stats) *stats = local;
        return state;
      }
      Apply(state, e, model, upcasters);
      ++local.events_applied;
    }
    if (page->end) break;
    next = page->next;
  }
  if (stats) *stats = local;
  return state;
}

}  // namespace doppel::twins
