#include "doppel/archive/mcap_export.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <optional>
#include <vector>

#include "doppel/archive/output_file.h"
#include "doppel/core/aligned_bytes.h"
#include "doppel/core/log.h"
#include "doppel/eventstore/event_json.h"
#include "doppel/mcap/writer.h"
#include "doppel/replay/fleet_state.h"
#include "doppel/replay/window_reader.h"
#include "doppel/ros2/event_messages.h"
#include "doppel/ros2/message_definitions.h"
#include "doppel/schemas/twin_state_bfbs.h"
#include "export_channels.h"

namespace doppel::archive {
namespace {

constexpr char kComponent[] = "export";
constexpr char kFrame[] = "map";

// Reads a payload of a verified event as its table (aligned first: payloads sit 4-byte
// aligned inside their envelopes).
template <typename T>
const T* PayloadAs(const eventstore::RecordedEvent& e, std::vector<uint64_t>& scratch) {
  return flatbuffers::GetRoot<T>(AlignedBytes(e.payload(), scratch));
}

class Exporter {
 public:
  Exporter(const eventstore::EventStore& store, const ExportOptions& options,
           std::unique_ptr<mcap::Writer> writer)
      : store_(store), options_(options), writer_(std::move(writer)), channels_(*writer_) {}

  Result<ExportReport> Run() {
    replay::WindowReader reader(store_, options_.window);
    DOPPEL_RETURN_IF_ERROR(reader.Open());
    // The fleet just before the window: the opening state.
    const TimeNs before = options_.window.from == 0 ? 0 : options_.window.from - 1;
    auto fleet = replay::FleetState::At(store_, options_.window, before);
    if (!fleet.ok()) return fleet.status();
    fleet_ = std::move(fleet).value();
    DOPPEL_RETURN_IF_ERROR(WriteOpeningState());

    const uint64_t span = reader.end_position() - reader.first_position();
    uint64_t last_progress = 0;
    while (!reader.done()) {
      auto page = reader.Next();
      if (!page.ok()) return page.status();
      for (const auto& e : *page) DOPPEL_RETURN_IF_ERROR(Export(e));
      const uint64_t done = reader.next_position() - reader.first_position();
      if (options_.progress && (done - last_progress >= 4096 || reader.done())) {
        options_.progress(std::min(done, span), span);
        last_progress = done;
      }
    }
    DOPPEL_RETURN_IF_ERROR(WriteMetadata());
    DOPPEL_RETURN_IF_ERROR(writer_->Close());
    report_.bytes = writer_->bytes_written();
    report_.robots = fleet_.robots().size();
    report_.topics = channels_.MessagesPerTopic();
    return report_;
  }

 private:
  // Latched state, as `mcap filter -l` keeps it: for every robot folded to just before the
  // window, its last JointStateObserved and PoseObserved as they were recorded, and the twin's
  // view at the robot's newest event; all in log-time order, before the window's messages.
  Status WriteOpeningState() {
    struct Latched {
      TimeNs log = 0;
      uint64_t position = 0;
      const replay::RobotTwin* twin = nullptr;         // the twin's view, or
      std::optional<eventstore::RecordedEvent> event;  // an observation as recorded
    };
    std::vector<Latched> latched;
    for (const auto& [robot, twin] : fleet_.robots()) {
      latched.push_back({twin.state.last_event_ns, twin.state.last_position, &twin, {}});
      auto observations = LastObservations(twin);
      if (!observations.ok()) return observations.status();
      for (auto& e : *observations) {
        latched.push_back({e.recorded_ns(), e.position(), nullptr, std::move(e)});
      }
    }
    std::sort(latched.begin(), latched.end(), [](const Latched& a, const Latched& b) {
      return a.log != b.log ? a.log < b.log : a.position < b.position;
    });
    DOPPEL_RETURN_IF_ERROR(
        WriteStaticTransforms(latched.empty() ? options_.window.from : latched.front().log));
    const uint64_t before = report_.messages;
    for (const Latched& l : latched) {
      if (l.event) {
        DOPPEL_RETURN_IF_ERROR(WriteObservation(*l.event));
      } else if (options_.twin_period_ns > 0) {
        DOPPEL_RETURN_IF_ERROR(WriteTwin(*l.twin, l.log));
      }
    }
    report_.latched = report_.messages - before;
    return Status::Ok();
  }

  // A robot's newest JointStateObserved (and PoseObserved, for a robot with a base) up to its
  // folded version, read backwards over at most kLatchedLookback events.
  Result<std::vector<eventstore::RecordedEvent>> LastObservations(const replay::RobotTwin& twin) {
    constexpr uint64_t kLatchedLookback = 4096;
    std::vector<eventstore::RecordedEvent> found;
    const auto& s = twin.state;
    if (s.stream_version < 0) return found;
    bool want_joints = !s.joint_names.empty(), want_pose = HasBase(twin);
    const std::string stream = twins::RobotStream(s.robot_id);
    uint64_t next = static_cast<uint64_t>(s.stream_version), read = 0;
    while ((want_joints || want_pose) && read < kLatchedLookback) {
      auto page = store_.ReadStream(stream, next, eventstore::Direction::kBackward, 256);
      if (!page.ok()) return page.status();
      for (auto& e : page->events) {
        ++read;
        if (want_joints && e.type() == "JointStateObserved") {
          want_joints = false;
          found.push_back(e);
        } else if (want_pose && e.type() == "PoseObserved") {
          want_pose = false;
          found.push_back(e);
        }
      }
      if (page->end || page->events.empty()) break;
      next = page->next;
    }
    return found;
  }

  // /tf_static: each robot's odometry frame is the site frame (doppel folds odometry poses
  // as site poses), so Foxglove can place `<robot>/odom` children.
  Status WriteStaticTransforms(TimeNs at) {
    if (fleet_.robots().empty()) return Status::Ok();
    ros2::TFMessage tf;
    for (const auto& [robot, twin] : fleet_.robots()) {
      ros2::TransformStamped t;
      t.header.stamp = ros2::ToRosTime(at);
      t.header.frame_id = kFrame;
      t.child_frame_id = robot + "/odom";
      tf.transforms.push_back(std::move(t));
    }
    return Ros("/tf_static", "tf2_msgs/msg/TFMessage", tf, at, at,
               {.reliable = true, .transient_local = true, .depth = 1});
  }

  static bool HasBase(const replay::RobotTwin& twin) {
    if (twin.model && twin.model->diff_drive()) return true;
    const auto& s = twin.state;
    return !s.base_position.isZero() ||
           !s.base_orientation.coeffs().isApprox(Eigen::Quaterniond::Identity().coeffs());
  }

  static ros2::Pose BasePose(const twins::RobotState& s) {
    return {{s.base_position.x(), s.base_position.y(), s.base_position.z()},
            {s.base_orientation.x(), s.base_orientation.y(), s.base_orientation.z(),
             s.base_orientation.w()}};
  }

  static std::string Topic(std::string_view robot, std::string_view leaf) {
    return fmt::format("/{}/{}", robot, leaf);
  }

  // The twin's view of a robot: folded joints, link transforms, TwinState.
  Status WriteTwin(const replay::RobotTwin& twin, TimeNs at) {
    const auto& s = twin.state;
    const auto stamp = ros2::ToRosTime(s.last_observation_ns ? s.last_observation_ns : at);
    if (!s.joint_names.empty()) {
      ros2::JointState js;
      js.header.stamp = stamp;
      js.header.frame_id = s.robot_id + "/base_link";
      js.name = s.joint_names;
      js.position = s.joint_position;
      js.velocity = s.joint_velocity;
      js.effort = s.joint_effort;
      DOPPEL_RETURN_IF_ERROR(
          Ros("/twin/" + s.robot_id + "/joint_states", "sensor_msgs/msg/JointState", js, at, at));
    }
    ros2::TFMessage tf;
    auto add = [&](const std::string& child, const Eigen::Isometry3d& pose) {
      ros2::TransformStamped t;
      t.header.stamp = stamp;
      t.header.frame_id = kFrame;
      t.child_frame_id = child;
      const Eigen::Vector3d p = pose.translation();
      const Eigen::Quaterniond q(pose.rotation());
      t.translation = {p.x(), p.y(), p.z()};
      t.rotation = {q.x(), q.y(), q.z(), q.w()};
      tf.transforms.push_back(std::move(t));
    };
    if (twin.model && twin.model->has_kinematics() &&
        s.joint_names.size() >= twin.model->joint_names().size()) {
      const auto poses = twins::SiteLinkPoses(s, *twin.model);
      for (size_t i = 0; i < poses.size(); ++i) {
        add(s.robot_id + "/" + twin.model->links()[i].name, poses[i]);
      }
    } else {
      Eigen::Isometry3d base = Eigen::Isometry3d::Identity();
      base.translate(s.base_position);
      base.rotate(s.base_orientation);
      add(s.robot_id + "/base_link", base);
    }
    DOPPEL_RETURN_IF_ERROR(Ros("/tf", "tf2_msgs/msg/TFMessage", tf, at, at,
                               {.reliable = true, .transient_local = false, .depth = 100}));
    const std::string state = twins::EncodePublishedState(s, twin.model_or_generic(), at);
    const uint16_t channel = channels_.TwinState("/doppel/twin_state/" + s.robot_id);
    return Write(channel, at, at, state);
  }

  Status Export(const eventstore::RecordedEvent& e) {
    if (options_.twin_period_ns > 0) fleet_.Apply(e);  // only the twin channels need the fold
    const TimeNs log = e.recorded_ns(), pub = e.occurred_ns();
    if (report_.events == 0) report_.first_position = e.position();
    report_.last_position = e.position();
    ++report_.events;
    if (options_.events_channel) {
      DOPPEL_RETURN_IF_ERROR(Write(channels_.Events(), log, pub, eventstore::EventJson(e)));
    }
    const std::string_view robot_id = replay::RobotOfStream(e.stream());
    if (robot_id.empty()) return Status::Ok();
    const std::string_view type = e.type();
    if (type == "JointStateObserved" || type == "PoseObserved") {
      DOPPEL_RETURN_IF_ERROR(WriteObservation(e));
      return MaybeWriteTwin(robot_id, log);
    }
    const std::string robot(robot_id);
    if (type == "CommandIssued") {
      const auto* p = PayloadAs<events::CommandIssued>(e, scratch_);
      if (p->kind() != events::CommandKind::Velocity) return Status::Ok();
      return Ros(Topic(robot, "cmd_vel"), "geometry_msgs/msg/Twist", ros2::ToTwist(*p), log, pub);
    }
    if (type == "FaultRaised" || type == "FaultCleared") {
      ros2::DiagnosticArray d;
      d.header.stamp = ros2::ToRosTime(pub);
      if (type == "FaultRaised") {
        const auto* p = PayloadAs<events::FaultRaised>(e, scratch_);
        d.status.push_back(ros2::FaultStatus(robot, *p));
        Incident(e, robot, "fault",
                 {{"code", d.status[0].name},
                  {"message", d.status[0].message},
                  {"severity", events::EnumNameSeverity(p->severity())}});
      } else {
        d.status.push_back(ros2::FaultStatus(robot, *PayloadAs<events::FaultCleared>(e, scratch_)));
      }
      return Ros("/diagnostics", "diagnostic_msgs/msg/DiagnosticArray", d, log, pub);
    }
    if (type == "PredictionMade") {
      const auto* p = PayloadAs<events::PredictionMade>(e, scratch_);
      return Ros("/twin/" + robot + "/predicted_path", "nav_msgs/msg/Path",
                 ros2::ToPath(*p, kFrame), log, pub);
    }
    if (type == "PredictionAlert") {
      const auto* p = PayloadAs<events::PredictionAlert>(e, scratch_);
      Incident(e, robot, "alert",
               {{"alert", events::EnumNameAlertKind(p->kind())},
                {"in_s", fmt::format("{}", p->t_offset_ns() / 1e9)},
                {"link", p->link() ? p->link()->str() : ""},
                {"obstacle", p->obstacle() ? p->obstacle()->str() : ""}});
    } else if (type == "RobotWentSilent") {
      Incident(e, robot, "silence", {});
    }
    return Status::Ok();
  }

  // /<robot>/joint_states or /<robot>/odom: an observation as the robot published it.
  Status WriteObservation(const eventstore::RecordedEvent& e) {
    const std::string_view robot = replay::RobotOfStream(e.stream());
    const TimeNs log = e.recorded_ns(), pub = e.occurred_ns();
    cdr_.Clear();
    Result<uint16_t> channel = 0;
    if (e.type() == "JointStateObserved") {
      channel = RobotChannel(robot, &RobotChannels::joint_states, "joint_states",
                             "sensor_msgs/msg/JointState");
      ros2::EncodeJointState(*PayloadAs<events::JointStateObserved>(e, scratch_), pub, cdr_);
    } else {
      channel = RobotChannel(robot, &RobotChannels::odom, "odom", "nav_msgs/msg/Odometry");
      ros2::EncodeOdometry(*PayloadAs<events::PoseObserved>(e, scratch_), pub, cdr_);
    }
    if (!channel.ok()) return channel.status();
    return Write(*channel, log, pub, cdr_.bytes());
  }

  // A robot's own topic, looked up without building its name once it exists.
  struct RobotChannels {
    uint16_t joint_states = 0, odom = 0;
  };
  Result<uint16_t> RobotChannel(std::string_view robot, uint16_t RobotChannels::*which,
                                std::string_view leaf, std::string_view type) {
    auto it = robot_channels_.find(robot);
    if (it == robot_channels_.end())
      it = robot_channels_.emplace(std::string(robot), RobotChannels{}).first;
    uint16_t& id = it->second.*which;
    if (id == 0) {
      auto created = channels_.Ros(Topic(robot, leaf), type, {});
      if (!created.ok()) return created.status();
      id = *created;
    }
    return id;
  }

  // The twin's channels after an observation, at most once per twin_period_ns of recorded time.
  Status MaybeWriteTwin(std::string_view robot, TimeNs at) {
    if (options_.twin_period_ns <= 0) return Status::Ok();
    auto it = last_twin_.find(robot);
    const bool fresh = it == last_twin_.end();
    if (fresh) it = last_twin_.emplace(std::string(robot), at).first;
    if (!fresh && at - it->second < options_.twin_period_ns) return Status::Ok();
    it->second = at;
    const replay::RobotTwin* twin = fleet_.Find(robot);
    return twin ? WriteTwin(*twin, at) : Status::Ok();
  }

  void Incident(const eventstore::RecordedEvent& e, std::string_view robot, std::string_view kind,
                std::map<std::string, std::string> details) {
    // Metadata records go at the end (each would close a chunk); their number is bounded so
    // memory stays constant whatever the window. The count is always exact.
    constexpr size_t kMaxIncidentRecords = 100'000;
    if (++report_.incidents > kMaxIncidentRecords) return;
    details["kind"] = kind;
    details["robot"] = robot;
    details["at"] = FormatTime(e.recorded_ns());
    details["at_ns"] = std::to_string(e.recorded_ns());
    details["position"] = std::to_string(e.position());
    details["event_type"] = e.type();
    incidents_.push_back(std::move(details));
  }

  Status WriteMetadata() {
    for (auto& incident : incidents_) {
      DOPPEL_RETURN_IF_ERROR(writer_->WriteMetadata("doppel.incident", std::move(incident)));
    }
    const auto& w = options_.window;
    std::string types;
    for (const auto& t : w.types) types += (types.empty() ? "" : ",") + t;
    return writer_->WriteMetadata("doppel.export",
                                  {{"source", options_.source},
                                   {"from", FormatTime(w.from)},
                                   {"from_ns", std::to_string(w.from)},
                                   {"to", w.to == eventstore::kTimeMax ? "now" : FormatTime(w.to)},
                                   {"to_ns", std::to_string(w.to)},
                                   {"robots", w.robots},
                                   {"types", types.empty() ? "*" : types},
                                   {"events", std::to_string(report_.events)},
                                   {"first_position", std::to_string(report_.first_position)},
                                   {"last_position", std::to_string(report_.last_position)},
                                   {"latched_messages", std::to_string(report_.latched)},
                                   {"incidents", std::to_string(report_.incidents)},
                                   {"exported_at", FormatTime(WallNowNs())}});
  }

  template <typename M>
  Status Ros(const std::string& topic, std::string_view type, const M& message, TimeNs log,
             TimeNs pub, ros2::QosProfile qos = {}) {
    auto channel = channels_.Ros(topic, type, qos);
    if (!channel.ok()) return channel.status();
    cdr_.Clear();
    ros2::Encode(message, cdr_);
    return Write(*channel, log, pub, cdr_.bytes());
  }

  Status Write(uint16_t channel, TimeNs log, TimeNs pub, std::string_view data) {
    ++report_.messages;
    return writer_->WriteMessage(channel, channels_.NextSequence(channel),
                                 static_cast<uint64_t>(std::max<TimeNs>(log, 0)),
                                 static_cast<uint64_t>(std::max<TimeNs>(pub, 0)), data);
  }

  const eventstore::EventStore& store_;
  const ExportOptions& options_;
  std::unique_ptr<mcap::Writer> writer_;
  ExportChannels channels_;
  replay::FleetState fleet_;
  ros2::CdrWriter cdr_;
  std::vector<uint64_t> scratch_;
  std::map<std::string, TimeNs, std::less<>> last_twin_;
  std::map<std::string, RobotChannels, std::less<>> robot_channels_;
  std::vector<std::map<std::string, std::string>> incidents_;
  ExportReport report_;
};

}  // namespace

Result<ExportReport> ExportMcap(const eventstore::EventStore& store, const ExportOptions& options) {
  // Written under <out>.partial and renamed over `out` when complete; only a regular file (or
  // nothing) at `out` is replaced (output_file.h).
  auto file = OutputFile::Begin(options.out);
  if (!file.ok()) return file.status();
  mcap::WriterOptions wo;
  wo.profile = "ros2";
  wo.library = "doppel " DOPPEL_VERSION;
  wo.compression = options.compression;
  wo.chunk_size = options.chunk_size;
  wo.fsync_on_close = true;
  auto writer = mcap::Writer::Open(file->partial(), wo);
  if (!writer.ok()) return writer.status();
  log::Info(kComponent, "exporting {} to {}", options.window.Describe(), options.out);
  auto report = Exporter(store, options, std::move(writer).value()).Run();
  if (!report.ok()) return report.status();  // ~OutputFile removes the partial file
  DOPPEL_RETURN_IF_ERROR(file->Commit());
  return report;
}

}  // namespace doppel::archive
