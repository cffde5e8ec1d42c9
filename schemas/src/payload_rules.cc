#include "doppel/schemas/payload_rules.h"

#include <fmt/format.h>

#include <cmath>
#include <string>
#include <vector>

#include "doppel/core/aligned_bytes.h"
#include "doppel/core/utf8.h"
#include "doppel/schemas/limits.h"
#include "doppel/schemas/robot_events_generated.h"

namespace doppel::schemas {
namespace {

using StringList = flatbuffers::Vector<flatbuffers::Offset<flatbuffers::String>>;

// Collects the first rule a payload breaks; every check after that is a no-op.
class Rules {
 public:
  bool ok() const { return error_.empty(); }
  Status status() const { return ok() ? Status::Ok() : Status::InvalidArgument(error_); }

  void Text(const char* field, const flatbuffers::String* s, size_t max_bytes) {
    if (!ok() || s == nullptr) return;
    if (s->size() > max_bytes) {
      Fail("{} is {} bytes; at most {}", field, s->size(), max_bytes);
    } else if (!IsValidUtf8(s->string_view())) {
      Fail("{} is not valid UTF-8", field);
    }
  }
  void Names(const char* field, const StringList* list, size_t max_count) {
    if (!ok() || list == nullptr) return;
    if (list->size() > max_count) {
      Fail("{} has {} entries; at most {}", field, list->size(), max_count);
      return;
    }
    for (flatbuffers::uoffset_t i = 0; i < list->size() && ok(); ++i) {
      const flatbuffers::String* s = list->Get(i);
      if (s->size() > kMaxNameBytes) {
        Fail("{}[{}] is {} bytes; at most {}", field, i, s->size(), kMaxNameBytes);
      } else if (!IsValidUtf8(s->string_view())) {
        Fail("{}[{}] is not valid UTF-8", field, i);
      }
    }
  }
  void Number(const char* field, double v, double bound = HUGE_VAL) {
    if (!ok()) return;
    if (!std::isfinite(v)) {
      Fail("{} is {} (NaN or infinite)", field, v);
    } else if (std::fabs(v) > bound) {
      Fail("{} is {}; its magnitude may be at most {}", field, v, bound);
    }
  }
  void Numbers(const char* field, const flatbuffers::Vector<double>* v, double bound = HUGE_VAL) {
    if (!ok() || v == nullptr) return;
    for (flatbuffers::uoffset_t i = 0; i < v->size() && ok(); ++i) {
      Number(fmt::format("{}[{}]", field, i).c_str(), v->Get(i), bound);
    }
  }
  void Parallel(const char* field, const flatbuffers::Vector<double>* v, size_t n) {
    if (!ok() || v == nullptr || v->size() == 0 || v->size() == n) return;
    Fail("{} has {} values for {} names (must be empty or one per name)", field, v->size(), n);
  }
  void Vec(const char* field, const events::Vec3& v, double bound = kMaxCoordinate) {
    Number(fmt::format("{}.x", field).c_str(), v.x(), bound);
    Number(fmt::format("{}.y", field).c_str(), v.y(), bound);
    Number(fmt::format("{}.z", field).c_str(), v.z(), bound);
  }
  void PoseValues(const char* field, const events::Pose* p) {
    if (p == nullptr) return;
    Vec(fmt::format("{}.position", field).c_str(), p->position());
    const auto& q = p->orientation();
    for (double c : {q.x(), q.y(), q.z(), q.w()}) {
      Number(fmt::format("{}.orientation", field).c_str(), c, 1e3);
    }
  }
  void TwistValues(const char* field, const events::Twist* t, double linear, double angular) {
    if (t == nullptr) return;
    Vec(fmt::format("{}.linear", field).c_str(), t->linear(), linear);
    Vec(fmt::format("{}.angular", field).c_str(), t->angular(), angular);
  }
  void Count(const char* field, size_t n, size_t max) {
    if (ok() && n > max) Fail("{} has {} entries; at most {}", field, n, max);
  }
  template <typename E>
  void Enum(const char* field, E value, E max) {
    if (ok() && (static_cast<int>(value) < 0 || static_cast<int>(value) > static_cast<int>(max)))
      Fail("{} is {}, not a known value", field, static_cast<int>(value));
  }

  template <typename... Args>
  void Fail(fmt::format_string<Args...> f, Args&&... args) {
    if (ok()) error_ = fmt::format(f, std::forward<Args>(args)...);
  }

 private:
  std::string error_;
};

template <typename T>
const T* Root(std::string_view payload) {
  return flatbuffers::GetRoot<T>(payload.data());
}

void CheckJointState(Rules& r, const events::JointStateObserved& js) {
  const size_t n = js.names() ? js.names()->size() : 0;
  if (n == 0) r.Fail("names is empty: a joint state names its joints");
  r.Names("names", js.names(), kMaxJointsPerRobot);
  r.Parallel("position", js.position(), n);
  r.Parallel("velocity", js.velocity(), n);
  r.Parallel("effort", js.effort(), n);
  r.Numbers("position", js.position());
  r.Numbers("velocity", js.velocity());
  r.Numbers("effort", js.effort());
}

void CheckCommand(Rules& r, const events::CommandIssued& c) {
  r.Enum("kind", c.kind(), events::CommandKind::MAX);
  r.TwistValues("twist", c.twist(), kMaxCommandLinear, kMaxCommandAngular);
  r.Names("joint_names", c.joint_names(), kMaxJointsPerRobot);
  r.Numbers("joint_targets", c.joint_targets(), kMaxJointTarget);
  const size_t names = c.joint_names() ? c.joint_names()->size() : 0;
  const size_t targets = c.joint_targets() ? c.joint_targets()->size() : 0;
  if (r.ok() && names != targets) {
    r.Fail("{} joint targets for {} joint names", targets, names);
  }
  r.Text("issued_by", c.issued_by(), kMaxNameBytes);
}

void CheckPrediction(Rules& r, const events::PredictionMade& p) {
  if (p.trajectory()) {
    r.Count("trajectory", p.trajectory()->size(), kMaxPredictionSamples);
    for (flatbuffers::uoffset_t i = 0; i < p.trajectory()->size() && r.ok(); ++i) {
      const auto* s = p.trajectory()->Get(i);
      r.PoseValues("trajectory.base_pose", s->base_pose());
      r.Count("trajectory.joint_positions", s->joint_positions() ? s->joint_positions()->size() : 0,
              kMaxJointsPerRobot);
      r.Numbers("trajectory.joint_positions", s->joint_positions());
    }
  }
  if (const auto* c = p.collision()) {
    r.Text("collision.link", c->link(), kMaxNameBytes);
    r.Text("collision.obstacle", c->obstacle(), kMaxNameBytes);
    if (c->contact_point()) r.Vec("collision.contact_point", *c->contact_point());
  }
  if (p.limit_violations()) {
    r.Count("limit_violations", p.limit_violations()->size(), kMaxJointsPerRobot);
    for (flatbuffers::uoffset_t i = 0; i < p.limit_violations()->size() && r.ok(); ++i) {
      const auto* v = p.limit_violations()->Get(i);
      r.Text("limit_violations.joint", v->joint(), kMaxNameBytes);
      r.Number("limit_violations.value", v->value());
      r.Number("limit_violations.limit", v->limit());
    }
  }
}

}  // namespace

Status CheckPayloadValues(std::string_view type, std::string_view payload) {
  // Structs of doubles are read in place: from 8-aligned bytes (a payload inside its envelope
  // is only 4-aligned).
  std::vector<uint64_t> scratch;
  payload = std::string_view(reinterpret_cast<const char*>(AlignedBytes(payload, scratch)),
                             payload.size());
  Rules r;
  if (type == "JointStateObserved") {
    CheckJointState(r, *Root<events::JointStateObserved>(payload));
  } else if (type == "PoseObserved") {
    const auto& p = *Root<events::PoseObserved>(payload);
    r.Text("frame_id", p.frame_id(), kMaxNameBytes);
    r.Text("child_frame_id", p.child_frame_id(), kMaxNameBytes);
    r.PoseValues("pose", p.pose());
    r.TwistValues("twist", p.twist(), kMaxCoordinate, kMaxCoordinate);
  } else if (type == "CommandIssued") {
    CheckCommand(r, *Root<events::CommandIssued>(payload));
  } else if (type == "RobotRegistered") {
    const auto& p = *Root<events::RobotRegistered>(payload);
    r.Text("robot_id", p.robot_id(), kMaxNameBytes);
    r.Text("model", p.model(), kMaxNameBytes);
    r.Text("urdf", p.urdf(), kMaxUrdfBytes);
    r.Names("joint_names", p.joint_names(), kMaxJointsPerRobot);
    r.Names("frames", p.frames(), kMaxJointsPerRobot);
    r.Text("base_frame", p.base_frame(), kMaxNameBytes);
  } else if (type == "ModeChanged") {
    const auto& p = *Root<events::ModeChanged>(payload);
    r.Enum("mode", p.mode(), events::RobotMode::MAX);
    r.Text("reason", p.reason(), kMaxTextBytes);
  } else if (type == "FaultRaised") {
    const auto& p = *Root<events::FaultRaised>(payload);
    r.Text("code", p.code(), kMaxNameBytes);
    r.Enum("severity", p.severity(), events::Severity::MAX);
    r.Text("message", p.message(), kMaxTextBytes);
  } else if (type == "FaultCleared") {
    r.Text("code", Root<events::FaultCleared>(payload)->code(), kMaxNameBytes);
  } else if (type == "PredictionMade") {
    CheckPrediction(r, *Root<events::PredictionMade>(payload));
  } else if (type == "PredictionAlert") {
    const auto& p = *Root<events::PredictionAlert>(payload);
    r.Enum("kind", p.kind(), events::AlertKind::MAX);
    r.Text("link", p.link(), kMaxNameBytes);
    r.Text("obstacle", p.obstacle(), kMaxNameBytes);
    if (p.contact_point()) r.Vec("contact_point", *p.contact_point());
    r.Number("value", p.value());
    r.Number("limit", p.limit());
  }
  if (!r.ok()) {
    return Status::InvalidArgument(fmt::format("{}: {}", type, r.status().message()));
  }
  return Status::Ok();
}

}  // namespace doppel::schemas
