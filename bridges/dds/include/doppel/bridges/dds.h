// The one layer over CycloneDDS's C API in doppel: a participant in a domain that stays on
// loopback unless told otherwise, and typed writers and readers with ROS-style QoS.
// Nothing else in doppel calls dds_*.
//
// Types are the idlc-generated C structs of bridges/dds/idl/ros2_msgs.idl, passed with
// their descriptor (e.g. sensor_msgs_msg_dds__JointState__desc). Those descriptors carry no
// XTypes type information, so endpoints match peers by topic and type name only, whatever
// the peer's member names (see bridges/dds/CMakeLists.txt).
#pragma once

#include <dds/dds.h>

#include <chrono>
#include <functional>
#include <string>
#include <string_view>

#include "doppel/core/clock.h"
#include "doppel/core/status.h"
#include "ros2_msgs.h"

namespace doppel::dds {

// builtin_interfaces/Time <-> ns since the epoch.
inline builtin_interfaces_msg_dds__Time_ ToRosTime(TimeNs ns) {
  return {static_cast<int32_t>(ns / 1'000'000'000), static_cast<uint32_t>(ns % 1'000'000'000)};
}
inline TimeNs FromRosTime(const builtin_interfaces_msg_dds__Time_& t) {
  return static_cast<TimeNs>(t.sec) * 1'000'000'000 + t.nanosec;
}

// CycloneDDS configuration keeping every packet on the loopback interface, no multicast,
// unicast discovery to 127.0.0.1: the text of deploy/dds/loopback.xml, built in. Used when
// neither a config nor CYCLONEDDS_URI is given.
std::string_view LoopbackConfig();

// Owns one DDS entity; deleting it deletes its children.
class Entity {
 public:
  Entity() = default;
  explicit Entity(dds_entity_t handle) : handle_(handle) {}
  ~Entity();
  Entity(Entity&& other) noexcept : handle_(other.handle_) { other.handle_ = 0; }
  Entity& operator=(Entity&& other) noexcept;
  Entity(const Entity&) = delete;
  Entity& operator=(const Entity&) = delete;
  dds_entity_t handle() const { return handle_; }

 private:
  dds_entity_t handle_ = 0;
};

class Participant {
 public:
  // Joins `domain_id`. The domain is created with `config` (XML), or CYCLONEDDS_URI's when
  // that is set, or LoopbackConfig(). A domain already made in this process is reused.
  static Result<Participant> Create(uint32_t domain_id = 0, std::string config = "");
  dds_entity_t handle() const { return participant_.handle(); }

 private:
  Entity participant_;
};

// ROS-style QoS: reliable or best effort, volatile or transient local, keep last N.
struct QosSpec {
  bool reliable = true;
  bool transient_local = false;
  int depth = 10;
};

// USER_DATA of doppel's own writers on robot topics (Writer::Create's user_data), so a reader
// can tell them from the robot's (Reader::PublicationUserData).
inline constexpr char kDoppelWriterUserData[] = "doppel";

class Writer {
 public:
  // A topic of `descriptor`'s type named `topic` (e.g. "rt/robot7/joint_states") and a
  // writer on it; `user_data` (if any) goes with the writer's discovery data.
  static Result<Writer> Create(const Participant& participant,
                               const dds_topic_descriptor_t* descriptor, const std::string& topic,
                               const QosSpec& qos = {}, std::string_view user_data = {});
  // REQUIRES: sample points at the C struct of this writer's type.
  Status Write(const void* sample);
  // How many readers are matched now.
  int MatchedReaders() const;
  dds_entity_t handle() const { return writer_.handle(); }

 private:
  Entity topic_;
  Entity writer_;
};

class Reader {
 public:
  // ignore_local: do not receive samples written through the same participant.
  static Result<Reader> Create(const Participant& participant,
                               const dds_topic_descriptor_t* descriptor, const std::string& topic,
                               const QosSpec& qos = {}, bool ignore_local = false);
  // A reader of DDS publication discovery: samples are dds_builtintopic_endpoint_t, one per
  // writer that appears anywhere in the domain (topic and type names included).
  static Result<Reader> DiscoverPublications(const Participant& participant);
  // Waits up to `timeout` for data, then takes what is there (up to `max`), calling
  // `on_sample` with each valid sample (the C struct, loaned: copy what you keep).
  // Returns how many samples it handed over.
  Result<int> Take(const std::function<void(const void* sample)>& on_sample,
                   std::chrono::milliseconds timeout, int max = 256);
  // The same, also handing over the handle of the writer that published each sample.
  Result<int> Take(const std::function<void(const void* sample, uint64_t publication)>& on_sample,
                   std::chrono::milliseconds timeout, int max = 256);
  // The USER_DATA of a matched writer (by the handle Take handed over); empty if it has none
  // or is no longer matched.
  std::string PublicationUserData(uint64_t publication) const;
  int MatchedWriters() const;

 private:
  Status Watch(const Participant& participant);

  Entity topic_;
  Entity reader_;
  Entity waitset_;
  Entity condition_;
};

}  // namespace doppel::dds
