// A plain CycloneDDS program standing in for a ROS 2 node that brings its own dds_ IDL: no
// doppel code. Built twice from this file:
//   cyclonedds_peer_rosidl  ros2_dds_idl_types.idl (members end in '_'), type information on
//   cyclonedds_peer_plain   ros2_plain_types.idl (plain members), no type information
// PEER_TYPES_H names the idlc header; F(member) spells a member as that IDL does.
//
// It publishes rt/<robot>/joint_states (reliable, keep last 10) and checks what comes back
// on rt/twin/<robot>/joint_states and rt/tf. It exits 0 only when at least --round-trips
// distinct sent position vectors came back bit for bit with the sent joint names, and rt/tf
// carried the robot's frames (`<robot>/...` in `map`, unit rotations); 1 when --seconds
// pass first. Stdout, one JSON line each:
//   {"topic":"sent","position":[...]}       every JointState it publishes
//   {"topic":"done","typeinfo":B,...}        at the end, pass or fail
// Loopback only through CYCLONEDDS_URI, which the caller sets.
#include <dds/dds.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include PEER_TYPES_H

#ifdef PEER_MEMBERS_END_IN_UNDERSCORE
#define F(member) member##_
#else
#define F(member) member
#endif

namespace {

using JointState = sensor_msgs_msg_dds__JointState_;
using TfMessage = tf2_msgs_msg_dds__TFMessage_;

const std::vector<std::string> kNames = {"shoulder_pan_joint", "shoulder_lift_joint",
                                         "elbow_joint",        "wrist_1_joint",
                                         "wrist_2_joint",      "wrist_3_joint"};

std::string JsonDoubles(const double* v, size_t n) {
  std::string out = "[";
  char buf[64];
  for (size_t i = 0; i < n; ++i) {
    std::snprintf(buf, sizeof(buf), "%s%.17g", i ? "," : "", v[i]);
    out += buf;
  }
  return out + "]";
}

dds_qos_t* ReliableQos(int depth) {
  dds_qos_t* qos = dds_create_qos();
  dds_qset_reliability(qos, DDS_RELIABILITY_RELIABLE, DDS_MSECS(100));
  dds_qset_durability(qos, DDS_DURABILITY_VOLATILE);
  dds_qset_history(qos, DDS_HISTORY_KEEP_LAST, depth);
  return qos;
}

// The peer's own claim checked: does its topic carry XTypes type information?
bool TopicHasTypeInfo(dds_entity_t topic) {
  dds_typeinfo_t* info = nullptr;
  if (dds_get_typeinfo(topic, &info) != DDS_RETCODE_OK || info == nullptr) return false;
  dds_free_typeinfo(info);
  return true;
}

int Matched(dds_entity_t entity, bool writer) {
  if (writer) {
    dds_publication_matched_status_t s{};
    return dds_get_publication_matched_status(entity, &s) < 0 ? -1 : int(s.current_count);
  }
  dds_subscription_matched_status_t s{};
  return dds_get_subscription_matched_status(entity, &s) < 0 ? -1 : int(s.current_count);
}

// Takes everything `reader` holds, calling on_sample with each valid one.
template <typename T, typename Fn>
void TakeAll(dds_entity_t reader, Fn on_sample) {
  void* samples[64] = {};
  dds_sample_info_t infos[64];
  const dds_return_t n = dds_take(reader, samples, infos, 64, 64);
  for (dds_return_t i = 0; i < n; ++i) {
    if (infos[i].valid_data) on_sample(*static_cast<const T*>(samples[i]));
  }
  if (n > 0) dds_return_loan(reader, samples, n);
}

}  // namespace

int main(int argc, char** argv) {
  std::string robot = "cy_arm_0";
  uint32_t domain = 0;
  double seconds = 60;
  size_t want_round_trips = 10;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--robot")) robot = argv[i + 1];
    if (!std::strcmp(argv[i], "--domain")) domain = uint32_t(std::atoi(argv[i + 1]));
    if (!std::strcmp(argv[i], "--seconds")) seconds = std::atof(argv[i + 1]);
    if (!std::strcmp(argv[i], "--round-trips")) want_round_trips = size_t(std::atoi(argv[i + 1]));
  }
  const char* uri = std::getenv("CYCLONEDDS_URI");
  if (uri == nullptr || *uri == '\0') {
    std::fprintf(stderr, "%s: set CYCLONEDDS_URI to a loopback-only configuration\n", argv[0]);
    return 2;
  }

  const dds_entity_t participant = dds_create_participant(domain, nullptr, nullptr);
  if (participant < 0) {
    std::fprintf(stderr, "%s: participant: %s\n", argv[0], dds_strretcode(participant));
    return 1;
  }
  const std::string joints_name = "rt/" + robot + "/joint_states";
  const std::string twin_name = "rt/twin/" + robot + "/joint_states";
  const dds_entity_t joints_topic = dds_create_topic(
      participant, &sensor_msgs_msg_dds__JointState__desc, joints_name.c_str(), nullptr, nullptr);
  const dds_entity_t twin_topic = dds_create_topic(
      participant, &sensor_msgs_msg_dds__JointState__desc, twin_name.c_str(), nullptr, nullptr);
  const dds_entity_t tf_topic =
      dds_create_topic(participant, &tf2_msgs_msg_dds__TFMessage__desc, "rt/tf", nullptr, nullptr);
  dds_qos_t* wqos = ReliableQos(10);
  dds_qos_t* rqos = ReliableQos(100);
  const dds_entity_t writer = dds_create_writer(participant, joints_topic, wqos, nullptr);
  const dds_entity_t twin_reader = dds_create_reader(participant, twin_topic, rqos, nullptr);
  const dds_entity_t tf_reader = dds_create_reader(participant, tf_topic, rqos, nullptr);
  dds_delete_qos(wqos);
  dds_delete_qos(rqos);
  if (joints_topic < 0 || twin_topic < 0 || tf_topic < 0 || writer < 0 || twin_reader < 0 ||
      tf_reader < 0) {
    std::fprintf(stderr, "%s: cannot create topics and endpoints\n", argv[0]);
    return 1;
  }

  std::vector<std::vector<double>> sent;
  std::set<std::vector<double>> round_trips;
  size_t twin_samples = 0, tf_samples = 0, bad = 0;
  std::set<std::string> frames;
  std::vector<char*> names;
  for (const auto& n : kNames) names.push_back(const_cast<char*>(n.c_str()));

  const std::string prefix = robot + "/";
  const auto start = std::chrono::steady_clock::now();
  bool passed = false;
  for (int k = 0; std::chrono::steady_clock::now() - start < std::chrono::duration<double>(seconds);
       ++k) {
    double q[6], zeros[6] = {};
    for (int j = 0; j < 6; ++j) q[j] = 0.1 * j + 0.3 * std::sin(0.05 * k + j);
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                        std::chrono::system_clock::now().time_since_epoch())
                        .count();
    JointState js{};
    js.F(header).F(stamp).F(sec) = int32_t(ns / 1'000'000'000);
    js.F(header).F(stamp).F(nanosec) = uint32_t(ns % 1'000'000'000);
    const std::string frame = prefix + "base_link";
    js.F(header).F(frame_id) = const_cast<char*>(frame.c_str());
    js.F(name) = {6, 6, names.data(), false};
    js.F(position) = {6, 6, q, false};
    js.F(velocity) = {6, 6, zeros, false};
    js.F(effort) = {0, 0, nullptr, false};
    if (dds_write(writer, &js) == DDS_RETCODE_OK) {
      sent.emplace_back(q, q + 6);
      std::printf("{\"topic\":\"sent\",\"position\":%s}\n", JsonDoubles(q, 6).c_str());
      std::fflush(stdout);
    }

    TakeAll<JointState>(twin_reader, [&](const JointState& back) {
      ++twin_samples;
      const auto& n = back.F(name);
      const auto& p = back.F(position);
      bool same_names = n._length == kNames.size();
      for (uint32_t i = 0; same_names && i < n._length; ++i) same_names = kNames[i] == n._buffer[i];
      if (!same_names || p._length != 6) return;
      const std::vector<double> position(p._buffer, p._buffer + 6);
      // Exact equality on purpose: the doubles must survive the trip unchanged.
      for (const auto& s : sent) {
        if (s == position) round_trips.insert(position);
      }
    });
    TakeAll<TfMessage>(tf_reader, [&](const TfMessage& tf) {
      ++tf_samples;
      const auto& ts = tf.F(transforms);
      for (uint32_t i = 0; i < ts._length; ++i) {
        const auto& t = ts._buffer[i];
        const std::string child = t.F(child_frame_id);
        if (child.rfind(prefix, 0) != 0) continue;
        const auto& r = t.F(transform).F(rotation);
        const double norm =
            std::sqrt(r.F(x) * r.F(x) + r.F(y) * r.F(y) + r.F(z) * r.F(z) + r.F(w) * r.F(w));
        if (std::string(t.F(header).F(frame_id)) != "map" || std::abs(norm - 1) > 1e-6) {
          ++bad;
          continue;
        }
        frames.insert(child);
      }
    });
    if (round_trips.size() >= want_round_trips && frames.size() >= 2 && bad == 0) {
      passed = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }

  std::string frame_list;
  for (const auto& f : frames) frame_list += (frame_list.empty() ? "\"" : ",\"") + f + "\"";
  std::printf(
      "{\"topic\":\"done\",\"passed\":%s,\"typeinfo\":%s,\"sent\":%zu,\"twin_samples\":%zu,"
      "\"round_trips\":%zu,\"tf_samples\":%zu,\"bad_tf\":%zu,\"frames\":[%s],"
      "\"matched\":{\"joint_states_readers\":%d,\"twin_writers\":%d,\"tf_writers\":%d}}\n",
      passed ? "true" : "false", TopicHasTypeInfo(joints_topic) ? "true" : "false", sent.size(),
      twin_samples, round_trips.size(), tf_samples, bad, frame_list.c_str(), Matched(writer, true),
      Matched(twin_reader, false), Matched(tf_reader, false));
  std::fflush(stdout);
  dds_delete(participant);
  return passed ? 0 : 1;
}
