#include "doppel/bridges/dds_ingest.h"

#include <fmt/format.h>
#include <fnmatch.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cmath>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <utility>

#include "doppel/bridges/dds.h"
#include "doppel/core/log.h"
#include "doppel/core/utf8.h"
#include "doppel/eventstore/types.h"
#include "doppel/schemas/limits.h"
#include "doppel/schemas/payload_rules.h"
#include "doppel/schemas/robot_events_generated.h"
#include "ros2_msgs.h"

namespace doppel::dds {
namespace {

constexpr char kComponent[] = "dds-ingest";

enum class Kind { kJointStates, kOdom, kCmdVel, kDiagnostics, kMode };
// Counters::kinds is indexed by Kind.
static_assert(static_cast<size_t>(Kind::kMode) + 1 == DdsIngest::kKindNames.size());

struct TopicKind {
  const char* suffix;
  const char* type_name;
  Kind kind;
  const dds_topic_descriptor_t* descriptor;
};

const TopicKind kTopics[] = {
    {"/joint_states", "sensor_msgs::msg::dds_::JointState_", Kind::kJointStates,
     &sensor_msgs_msg_dds__JointState__desc},
    {"/odom", "nav_msgs::msg::dds_::Odometry_", Kind::kOdom, &nav_msgs_msg_dds__Odometry__desc},
    {"/cmd_vel", "geometry_msgs::msg::dds_::Twist_", Kind::kCmdVel,
     &geometry_msgs_msg_dds__Twist__desc},
    {"/diagnostics", "diagnostic_msgs::msg::dds_::DiagnosticArray_", Kind::kDiagnostics,
     &diagnostic_msgs_msg_dds__DiagnosticArray__desc},
    // A robot's mode as std_msgs/String: one of doppel.events.RobotMode's names (Idle, Manual,
    // Autonomous, EmergencyStop, Maintenance; any case).
    {"/mode", "std_msgs::msg::dds_::String_", Kind::kMode, &std_msgs_msg_dds__String__desc},
};

std::string Finish(flatbuffers::FlatBufferBuilder& fbb) {
  return std::string(reinterpret_cast<const char*>(fbb.GetBufferPointer()), fbb.GetSize());
}

// DDS samples as payloads. Values are judged afterwards by schemas::CheckPayloadValues, the
// one validation of every entry point.

// A JointState as a JointStateObserved payload.
Result<std::string> FromJointState(const sensor_msgs_msg_dds__JointState_& js) {
  const uint32_t n = js.name._length;
  flatbuffers::FlatBufferBuilder fbb(256);
  std::vector<std::string> names;
  for (uint32_t i = 0; i < n; ++i) names.emplace_back(js.name._buffer[i] ? js.name._buffer[i] : "");
  auto seq = [&](const dds_sequence_double& s) { return fbb.CreateVector(s._buffer, s._length); };
  auto names_off = fbb.CreateVectorOfStrings(names);
  auto p = seq(js.position), v = seq(js.velocity), e = seq(js.effort);
  fbb.Finish(events::CreateJointStateObserved(fbb, names_off, p, v, e));
  return Finish(fbb);
}

Result<std::string> FromOdometry(const nav_msgs_msg_dds__Odometry_& o) {
  const auto& p = o.pose.pose;
  const auto& t = o.twist.twist;
  flatbuffers::FlatBufferBuilder fbb(256);
  const events::Pose pose(
      events::Vec3(p.position.x, p.position.y, p.position.z),
      events::Quat(p.orientation.x, p.orientation.y, p.orientation.z, p.orientation.w));
  const events::Twist twist(events::Vec3(t.linear.x, t.linear.y, t.linear.z),
                            events::Vec3(t.angular.x, t.angular.y, t.angular.z));
  fbb.Finish(events::CreatePoseObserved(
      fbb, fbb.CreateString(o.header.frame_id ? o.header.frame_id : ""),
      fbb.CreateString(o.child_frame_id ? o.child_frame_id : ""), &pose, &twist));
  return Finish(fbb);
}

Result<std::string> FromTwist(const geometry_msgs_msg_dds__Twist_& t) {
  flatbuffers::FlatBufferBuilder fbb(128);
  const events::Twist twist(events::Vec3(t.linear.x, t.linear.y, t.linear.z),
                            events::Vec3(t.angular.x, t.angular.y, t.angular.z));
  fbb.Finish(events::CreateCommandIssued(fbb, events::CommandKind::Velocity, &twist, 0, 0,
                                         fbb.CreateString("ros2")));
  return Finish(fbb);
}

}  // namespace

class DdsIngest::Impl {
 public:
  Impl(eventstore::EventStore& store, IngestOptions options)
      : store_(store), options_(std::move(options)) {}

  Status Start() {
    auto participant = Participant::Create(options_.domain);
    if (!participant.ok()) return participant.status();
    participant_ = std::make_unique<Participant>(std::move(participant).value());
    auto discovery = Reader::DiscoverPublications(*participant_);
    if (!discovery.ok()) return discovery.status();
    discovery_ = std::make_unique<Reader>(std::move(discovery).value());
    thread_ = std::thread([this] { Run(); });
    log::Info(kComponent, "watching DDS domain {} for robots matching '{}'", options_.domain,
              options_.robots);
    return Status::Ok();
  }

  ~Impl() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }

  Counters counters() const {
    std::lock_guard lock(mu_);
    Counters c = counters_;
    c.warnings_suppressed = warning_.suppressed();
    return c;
  }

 private:
  struct Subscription {
    std::string robot;
    Kind kind;
    Reader reader;
    int64_t last_accepted_ns = 0;
    std::set<std::string> active_faults;      // diagnostics: statuses now WARN or ERROR
    int last_mode = -1;                       // mode: the last one appended
    std::map<uint64_t, bool> doppel_writers;  // cmd_vel: writer handle -> one of doppel's?
  };

  void Discover() {
    (void)discovery_->Take(
        [&](const void* sample) {
          const auto* endpoint = static_cast<const dds_builtintopic_endpoint_t*>(sample);
          if (!endpoint->topic_name || !endpoint->type_name) return;
          const std::string_view topic = endpoint->topic_name;
          if (!topic.starts_with("rt/")) return;
          for (const TopicKind& t : kTopics) {
            // rt/<robot><suffix> with a non-empty robot: the fleet-wide rt/diagnostics (which
            // doppel's egress writes) is not a robot's.
            if (!topic.ends_with(t.suffix) || topic.size() <= 3 + std::strlen(t.suffix) ||
                std::string_view(endpoint->type_name) != t.type_name) {
              continue;
            }
            const std::string robot(topic.substr(3, topic.size() - 3 - std::strlen(t.suffix)));
            if (robot.empty() || robot.find('/') != std::string::npos) return;
            if (fnmatch(options_.robots.c_str(), robot.c_str(), 0) != 0) return;
            const std::string key(topic);
            if (subscriptions_.count(key) || refused_topics_.count(key)) return;
            if (!Admit(key, robot)) return;
            QosSpec qos;
            qos.depth = 100;
            auto reader = Reader::Create(*participant_, t.descriptor, key, qos);
            if (!reader.ok()) {
              log::Warn(kComponent, "cannot read {}: {}", key, reader.status().ToString());
              return;
            }
            subscriptions_.emplace(
                key, Subscription{robot, t.kind, std::move(reader).value(), 0, {}, -1, {}});
            Register(robot);
            log::Info(kComponent, "robot {}: reading {}", robot, key);
          }
        },
        std::chrono::milliseconds(0));
  }

  // Whether a topic of `robot` may be read: its stream name must be valid (UTF-8, bounded)
  // and, for a robot not yet known, the fleet must be below max_robots. A refused topic is
  // remembered (bounded by the same cap) so it is not reconsidered on every discovery.
  bool Admit(const std::string& topic, const std::string& robot) {
    Status why = eventstore::ValidateStreamName("robot-" + robot);
    if (why.ok() && !registered_.count(robot) && registered_.size() >= options_.max_robots) {
      why = Status::InvalidArgument(
          fmt::format("the ingest already reads {} robots (max_robots)", options_.max_robots));
    }
    if (why.ok()) return true;
    if (refused_topics_.size() < options_.max_robots) refused_topics_.insert(topic);
    bump([](Counters& c) { ++c.robots_refused; });
    warning_.Warn("ignoring topic {}: {}", ScrubUtf8(topic), why.message());
    return false;
  }

  // Once per robot: a RobotRegistered event if its stream is new, with the configured model
  // (none: generic, and the twin learns joint names from the observations).
  void Register(const std::string& robot) {
    if (!registered_.insert(robot).second) return;
    {
      std::lock_guard lock(mu_);
      counters_.robots = registered_.size();
    }
    const std::string stream = "robot-" + robot;
    if (store_.StreamHead(stream).ok()) return;
    std::string model;
    for (const auto& [glob, name] : options_.models) {
      if (fnmatch(glob.c_str(), robot.c_str(), 0) == 0) {
        model = name;
        break;
      }
    }
    flatbuffers::FlatBufferBuilder fbb;
    fbb.Finish(
        events::CreateRobotRegistered(fbb, fbb.CreateString(robot), fbb.CreateString(model)));
    eventstore::NewEvent e;
    e.type = "RobotRegistered";
    e.payload = Finish(fbb);
    e.occurred_ns = WallNowNs();
    pending_[stream].insert(pending_[stream].begin(), std::move(e));
  }

  void Run() {
    while (!stop_) {
      Discover();
      bool any = false;
      for (auto& [topic, sub] : subscriptions_) {
        auto taken = sub.reader.Take(
            [&](const void* sample, uint64_t publication) {
              // doppel's own cmd_vel (an operator's command relayed by the egress) was
              // recorded when it was issued: never a second time.
              if (sub.kind == Kind::kCmdVel && FromDoppel(sub, publication)) {
                bump([](Counters& c) { ++c.own_commands; });
                return;
              }
              Convert(sub, sample);
            },
            std::chrono::milliseconds(0));
        if (taken.ok() && *taken > 0) any = true;
      }
      Flush();
      if (!any) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    Flush();
  }

  // A robot's own rt/<robot>/diagnostics: a status going to WARN or ERROR raises a fault
  // (code = status name), going back to OK clears it. Never decimated; a sample that changes
  // nothing is counted as decimated.
  void ConvertDiagnostics(Subscription& sub, const diagnostic_msgs_msg_dds__DiagnosticArray_& d) {
    const std::string stream = "robot-" + sub.robot;
    for (uint32_t i = 0; i < d.status._length; ++i) {
      const auto& st = d.status._buffer[i];
      if (st.name == nullptr || *st.name == '\0' || st.level > 3 ||
          std::strlen(st.name) > schemas::kMaxNameBytes || !IsValidUtf8(st.name) ||
          (st.message != nullptr &&
           (std::strlen(st.message) > schemas::kMaxTextBytes || !IsValidUtf8(st.message)))) {
        Tally(sub.kind, &Counters::bad, &KindCounters::bad);
        warning_.Warn(
            "robot {}: bad diagnostics status (no name, level {}, or text that is not "
            "UTF-8 within its bounds)",
            sub.robot, st.level);
        return;
      }
    }
    int produced = 0;
    for (uint32_t i = 0; i < d.status._length; ++i) {
      const auto& st = d.status._buffer[i];
      const std::string code = st.name;
      flatbuffers::FlatBufferBuilder fbb(128);
      eventstore::NewEvent e;
      e.occurred_ns = FromRosTime(d.header.stamp);
      if (e.occurred_ns == 0) e.occurred_ns = WallNowNs();
      if ((st.level == 1 || st.level == 2) && sub.active_faults.insert(code).second) {
        fbb.Finish(events::CreateFaultRaised(
            fbb, fbb.CreateString(code),
            st.level == 2 ? events::Severity::Error : events::Severity::Warning,
            fbb.CreateString(st.message ? st.message : "")));
        e.type = "FaultRaised";
      } else if (st.level == 0 && sub.active_faults.erase(code) > 0) {
        fbb.Finish(events::CreateFaultCleared(fbb, fbb.CreateString(code)));
        e.type = "FaultCleared";
      } else {
        continue;
      }
      e.payload = Finish(fbb);
      pending_[stream].push_back(std::move(e));
      ++produced;
    }
    if (produced == 0) {
      Tally(sub.kind, &Counters::decimated, &KindCounters::decimated);
    } else {
      ++pending_samples_[stream][static_cast<size_t>(sub.kind)];
    }
  }

  // Whether the writer of a sample is one of doppel's (USER_DATA kDoppelWriterUserData),
  // remembered per writer.
  bool FromDoppel(Subscription& sub, uint64_t publication) {
    auto it = sub.doppel_writers.find(publication);
    if (it == sub.doppel_writers.end()) {
      const bool ours = sub.reader.PublicationUserData(publication) == kDoppelWriterUserData;
      if (sub.doppel_writers.size() > 1000) sub.doppel_writers.clear();
      it = sub.doppel_writers.emplace(publication, ours).first;
    }
    return it->second;
  }

  // A robot's rt/<robot>/mode: a ModeChanged when it differs from the last one appended
  // (a robot republishing its mode is counted as decimated). Never rate-limited.
  void ConvertMode(Subscription& sub, const std_msgs_msg_dds__String_& m) {
    const std::string_view text = m.data ? m.data : "";
    int mode = -1;
    for (int i = 0; i <= static_cast<int>(events::RobotMode::MAX); ++i) {
      const std::string_view name = events::EnumNamesRobotMode()[i];
      if (name.size() == text.size() &&
          std::equal(name.begin(), name.end(), text.begin(),
                     [](char a, char b) { return std::tolower(a) == std::tolower(b); })) {
        mode = i;
      }
    }
    if (mode < 0) {
      Tally(sub.kind, &Counters::bad, &KindCounters::bad);
      warning_.Warn("robot {}: unknown mode '{}'", sub.robot, ScrubUtf8(text.substr(0, 64)));
      return;
    }
    if (mode == sub.last_mode) {
      Tally(sub.kind, &Counters::decimated, &KindCounters::decimated);
      return;
    }
    sub.last_mode = mode;
    flatbuffers::FlatBufferBuilder fbb(64);
    fbb.Finish(
        events::CreateModeChanged(fbb, static_cast<events::RobotMode>(mode),
                                  fbb.CreateString("reported on rt/" + sub.robot + "/mode")));
    eventstore::NewEvent e;
    e.type = "ModeChanged";
    e.payload = Finish(fbb);
    e.occurred_ns = WallNowNs();
    const std::string stream = "robot-" + sub.robot;
    pending_[stream].push_back(std::move(e));
    ++pending_samples_[stream][static_cast<size_t>(sub.kind)];
  }

  void Convert(Subscription& sub, const void* sample) {
    Tally(sub.kind, &Counters::samples, &KindCounters::samples);
    if (sub.kind == Kind::kMode) {
      ConvertMode(sub, *static_cast<const std_msgs_msg_dds__String_*>(sample));
      return;
    }
    if (sub.kind == Kind::kDiagnostics) {
      ConvertDiagnostics(sub,
                         *static_cast<const diagnostic_msgs_msg_dds__DiagnosticArray_*>(sample));
      return;
    }
    const int64_t now = MonotonicNowNs();
    if (options_.max_rate_hz > 0 && sub.last_accepted_ns != 0 &&
        now - sub.last_accepted_ns < static_cast<int64_t>(1e9 / options_.max_rate_hz)) {
      Tally(sub.kind, &Counters::decimated, &KindCounters::decimated);
      return;
    }
    Result<std::string> payload = Status::InvalidArgument("unknown");
    eventstore::NewEvent e;
    switch (sub.kind) {
      case Kind::kJointStates: {
        const auto& js = *static_cast<const sensor_msgs_msg_dds__JointState_*>(sample);
        payload = FromJointState(js);
        e.type = "JointStateObserved";
        e.occurred_ns = FromRosTime(js.header.stamp);
        break;
      }
      case Kind::kOdom: {
        const auto& o = *static_cast<const nav_msgs_msg_dds__Odometry_*>(sample);
        payload = FromOdometry(o);
        e.type = "PoseObserved";
        e.occurred_ns = FromRosTime(o.header.stamp);
        break;
      }
      case Kind::kCmdVel:
        payload = FromTwist(*static_cast<const geometry_msgs_msg_dds__Twist_*>(sample));
        e.type = "CommandIssued";
        e.occurred_ns = WallNowNs();  // Twist has no stamp
        break;
      case Kind::kDiagnostics:
      case Kind::kMode:
        return;  // handled above
    }
    if (payload.ok()) {
      // The one validation every entry point applies (the log would refuse the whole batch).
      if (Status rules = schemas::CheckPayloadValues(e.type, *payload); !rules.ok()) {
        payload = rules;
      }
    }
    if (!payload.ok()) {
      Tally(sub.kind, &Counters::bad, &KindCounters::bad);
      warning_.Warn("robot {}: bad {} sample: {}", sub.robot, e.type,
                    ScrubUtf8(payload.status().message()));
      return;
    }
    if (e.occurred_ns == 0) e.occurred_ns = WallNowNs();
    e.payload = std::move(payload).value();
    sub.last_accepted_ns = now;
    pending_["robot-" + sub.robot].push_back(std::move(e));
    ++pending_samples_["robot-" + sub.robot][static_cast<size_t>(sub.kind)];
  }

  void Flush() {
    for (auto& [stream, events] : pending_) {
      if (events.empty()) continue;
      // Samples and registrations are counted apart: every sample is either appended,
      // decimated or bad.
      const auto by_kind = std::exchange(pending_samples_[stream], {});
      store_.AppendAsync({stream, eventstore::ExpectedVersion::Any(), std::move(events)},
                         [this, by_kind, stream](Result<eventstore::AppendResult> r) {
                           if (r.ok()) {
                             bump([&by_kind](Counters& c) {
                               for (size_t k = 0; k < by_kind.size(); ++k) {
                                 c.appended += by_kind[k];
                                 c.kinds[k].appended += by_kind[k];
                               }
                             });
                           } else {
                             bump([](Counters& c) { ++c.append_errors; });
                             warning_.Warn("appending to {}: {}", stream,
                                           ScrubUtf8(r.status().ToString()));
                           }
                         });
      events.clear();
    }
  }

  // One sample counted in a total and in its kind's count.
  void Tally(Kind kind, uint64_t Counters::*total, uint64_t KindCounters::*per_kind) {
    std::lock_guard lock(mu_);
    ++(counters_.*total);
    ++(counters_.kinds[static_cast<size_t>(kind)].*per_kind);
  }

  template <typename F>
  void bump(F f) {
    std::lock_guard lock(mu_);
    f(counters_);
  }

  eventstore::EventStore& store_;
  IngestOptions options_;
  std::unique_ptr<Participant> participant_;
  std::unique_ptr<Reader> discovery_;
  std::map<std::string, Subscription> subscriptions_;  // by topic
  std::set<std::string> registered_;
  std::set<std::string> refused_topics_;  // at most max_robots
  log::RateLimitedWarning warning_{kComponent};
  std::map<std::string, std::vector<eventstore::NewEvent>> pending_;  // by stream
  // Samples behind pending_, by stream and topic kind.
  std::map<std::string, std::array<uint64_t, kKindNames.size()>> pending_samples_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  mutable std::mutex mu_;
  Counters counters_;
};

DdsIngest::DdsIngest(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
DdsIngest::~DdsIngest() = default;

Result<std::unique_ptr<DdsIngest>> DdsIngest::Start(eventstore::EventStore& store,
                                                    IngestOptions options) {
  auto impl = std::make_unique<Impl>(store, std::move(options));
  DOPPEL_RETURN_IF_ERROR(impl->Start());
  return std::unique_ptr<DdsIngest>(new DdsIngest(std::move(impl)));
}

DdsIngest::Counters DdsIngest::counters() const { return impl_->counters(); }

}  // namespace doppel::dds
