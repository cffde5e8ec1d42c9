#include "channel_messages.h"

#include "doppel/core/aligned_bytes.h"
#include "doppel/core/json_text.h"
#include "doppel/schemas/payloads.h"
#include "doppel/schemas/robot_events_generated.h"
#include "event_json_values.h"

namespace doppel::gateway {
namespace {

using nlohmann::json;

json Strings(const flatbuffers::Vector<flatbuffers::Offset<flatbuffers::String>>* v) {
  json out = json::array();
  if (v != nullptr) {
    for (const auto* s : *v) out.push_back(s->str());
  }
  return out;
}

std::string Str(const flatbuffers::String* s) { return s ? s->str() : std::string(); }

}  // namespace

json Stamp(TimeNs ns) { return {{"sec", ns / 1'000'000'000}, {"nsec", ns % 1'000'000'000}}; }

std::shared_ptr<const std::string> Shared(const json& j) {
  return std::make_shared<const std::string>(SafeJsonDump(j));
}

json TwinJson(const twin::TwinState& s, TimeNs now) {
  json j;
  j["timestamp"] = Stamp(s.published_ns());
  j["robot_id"] = Str(s.robot_id());
  j["version"] = s.stream_version();
  j["position"] = s.last_position();
  j["model"] = Str(s.model());
  j["mode"] = events::EnumNameRobotMode(s.mode());
  j["silent"] = s.silent();
  j["staleness_ms"] = s.last_observation_ns() ? (now - s.last_observation_ns()) / 1e6 : -1.0;
  j["joint_names"] = Strings(s.joint_names());
  j["joint_position"] = Doubles(s.joint_position());
  j["joint_velocity"] = Doubles(s.joint_velocity());
  j["base_pose"] = PoseJson(s.base_pose());
  if (const auto* t = s.base_twist()) {
    j["base_twist"] = {{"linear", Vec(t->linear())}, {"angular", Vec(t->angular())}};
  }
  json faults = json::array();
  if (s.faults()) {
    for (const auto* f : *s.faults()) {
      faults.push_back({{"code", Str(f->code())},
                        {"severity", events::EnumNameSeverity(f->severity())},
                        {"message", Str(f->message())}});
    }
  }
  j["faults"] = faults;
  json prediction = nullptr;
  if (const auto* p = s.prediction()) {
    prediction = {{"start_ns", p->start_ns()},
                  {"collision_predicted", p->collision_predicted()},
                  {"collision_in_s", p->collision_t_offset_ns() / 1e9},
                  {"collision_link", Str(p->collision_link())},
                  {"collision_obstacle", Str(p->collision_obstacle())},
                  {"limit_violations", p->limit_violations()}};
  }
  j["prediction"] = prediction;
  json accuracy = nullptr;
  if (const auto* a = s.accuracy()) {
    accuracy = {{"horizons_s", {0.5, 1.0, 2.0}},
                {"scored", Doubles(a->scored())},
                {"mean_base_error_m", Doubles(a->mean_base_error_m())},
                {"mean_tool_error_m", Doubles(a->mean_tool_error_m())}};
  }
  j["accuracy"] = accuracy;
  j["alerts"] = s.alerts();
  json links = json::array();
  if (s.link_names() && s.link_poses()) {
    const size_t n = std::min(s.link_names()->size(), s.link_poses()->size());
    for (size_t i = 0; i < n; ++i) {
      const auto* p = s.link_poses()->Get(i);
      links.push_back({{"name", s.link_names()->Get(i)->str()},
                       {"x", p->position().x()},
                       {"y", p->position().y()},
                       {"z", p->position().z()}});
    }
  }
  j["links"] = links;
  return j;
}

bool IsObservation(std::string_view type) {
  return type == "JointStateObserved" || type == "PoseObserved";
}

void AppendStateMessages(const std::string& robot, const twin::TwinState& s,
                         std::shared_ptr<const std::string> raw, TimeNs stamp, TimeNs now,
                         const std::string& frame, std::vector<FeedMessage>& out, json* twin_out) {
  json twin = TwinJson(s, now);
  const std::string p = "/" + robot + "/";
  out.push_back({p + "twin_fb", std::move(raw), stamp});
  if (s.joint_names() && s.joint_names()->size() > 0) {
    json js = {{"timestamp", Stamp(s.last_observation_ns() ? s.last_observation_ns() : stamp)},
               {"name", twin["joint_names"]},
               {"position", twin["joint_position"]},
               {"velocity", twin["joint_velocity"]},
               {"effort", Doubles(s.joint_effort())}};
    out.push_back({p + "joint_states", Shared(js), stamp});
  }
  json pose = {{"timestamp", Stamp(stamp)}, {"frame_id", frame}, {"pose", twin["base_pose"]}};
  out.push_back({p + "pose", Shared(pose), stamp});
  out.push_back({p + "twin", Shared(twin), stamp});
  if (twin_out) *twin_out = std::move(twin);
}

void AppendEventMessages(const eventstore::RecordedEvent& e, const std::string& frame,
                         std::vector<FeedMessage>& out, std::vector<uint64_t>& scratch) {
  const std::string robot(e.stream().substr(6));  // "robot-<id>"
  const std::string_view type = e.type();
  const std::string p = "/" + robot + "/";
  json payload = nullptr;
  if (auto text = schemas::PayloadToJson(type, e.payload()); text.ok()) {
    payload = json::parse(*text, nullptr, false);
  }
  json ev = {{"timestamp", Stamp(e.recorded_ns())},
             {"robot_id", robot},
             {"type", type},
             {"version", e.version()},
             {"position", e.position()},
             {"occurred_ns", e.occurred_ns()},
             {"payload", payload}};
  out.push_back({p + "events", Shared(ev), e.recorded_ns()});
  if (type == "PredictionAlert" || type == "FaultRaised" || type == "RobotWentSilent" ||
      type == "FaultCleared" || type == "RobotResumed") {
    out.push_back({"/fleet/alerts", Shared(ev), e.recorded_ns()});
  }
  if (type != "PredictionMade") return;
  const auto* m = flatbuffers::GetRoot<events::PredictionMade>(AlignedBytes(e.payload(), scratch));
  json poses = json::array();
  if (m->trajectory()) {
    for (const auto* sample : *m->trajectory()) poses.push_back(PoseJson(sample->base_pose()));
  }
  json collision = nullptr;
  if (const auto* c = m->collision()) {
    collision = {{"t_offset_s", c->t_offset_ns() / 1e9},
                 {"link", Str(c->link())},
                 {"obstacle", Str(c->obstacle())},
                 {"contact_point", c->contact_point() ? Vec(*c->contact_point()) : json(nullptr)}};
  }
  json limits = json::array();
  if (m->limit_violations()) {
    for (const auto* v : *m->limit_violations()) {
      limits.push_back({{"joint", Str(v->joint())},
                        {"t_offset_s", v->t_offset_ns() / 1e9},
                        {"value", v->value()},
                        {"limit", v->limit()}});
    }
  }
  json prediction = {
      {"timestamp", Stamp(m->start_ns())}, {"frame_id", frame},      {"poses", poses},
      {"step_s", m->step_ns() / 1e9},      {"collision", collision}, {"limit_violations", limits}};
  out.push_back({p + "prediction", Shared(prediction), e.recorded_ns()});
}

}  // namespace doppel::gateway
