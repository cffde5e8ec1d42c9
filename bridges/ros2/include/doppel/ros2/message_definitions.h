// What rosbag2 stores beside each topic in an MCAP file (profile `ros2`): the schema text of
// the message type (encoding `ros2msg`) and the publisher's QoS (`offered_qos_profiles`).
#pragma once

#include <string>
#include <string_view>

#include "doppel/core/status.h"

namespace doppel::ros2 {

// The ros2msg text of `type` ("sensor_msgs/msg/JointState"): the type's own fields, then for
// each type it depends on (depth first, each once) a line of 80 '=', "MSG: pkg/Type" and that
// type's fields. NotFound for a type doppel does not write.
Result<std::string> Ros2MsgDefinition(std::string_view type);

struct QosProfile {
  bool reliable = true;
  bool transient_local = false;
  uint32_t depth = 10;
};
// `offered_qos_profiles` as rosbag2 (Humble to Jazzy) writes it: a YAML list with one
// publisher's profile; unset deadline, lifespan and lease are the "infinite" durations.
std::string OfferedQosProfilesYaml(const QosProfile& qos);

}  // namespace doppel::ros2
