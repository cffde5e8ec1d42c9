// JSON of the FlatBuffers values that the Foxglove channels (fleet_feed.cc) and the ROS
// messages of rosbridge (ros_messages.cc) both show, in one place: vectors, quaternions,
// poses (a missing pose is the identity) and arrays of doubles.
#pragma once

#include <nlohmann/json.hpp>

#include "doppel/schemas/robot_events_generated.h"

namespace doppel::gateway {

inline nlohmann::json Vec(const events::Vec3& v) {
  return {{"x", v.x()}, {"y", v.y()}, {"z", v.z()}};
}

inline nlohmann::json Quat(const events::Quat& q) {
  return {{"x", q.x()}, {"y", q.y()}, {"z", q.z()}, {"w", q.w()}};
}

inline nlohmann::json PoseJson(const events::Pose* p) {
  if (p == nullptr) {
    return {{"position", {{"x", 0.0}, {"y", 0.0}, {"z", 0.0}}},
            {"orientation", {{"x", 0.0}, {"y", 0.0}, {"z", 0.0}, {"w", 1.0}}}};
  }
  return {{"position", Vec(p->position())}, {"orientation", Quat(p->orientation())}};
}

template <typename V>
nlohmann::json Doubles(const V* v) {
  nlohmann::json out = nlohmann::json::array();
  if (v != nullptr) {
    for (double d : *v) out.push_back(d);
  }
  return out;
}

}  // namespace doppel::gateway
