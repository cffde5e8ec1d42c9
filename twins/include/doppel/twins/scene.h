// Scene: a site's static obstacles, from a JSON file:
//
//   {"obstacles": [
//     {"name": "rack-1",  "type": "box",      "size": [1, 0.5, 2], "position": [3, 1, 1], "yaw":
//     0.3},
//     {"name": "pillar",  "type": "cylinder", "radius": 0.2, "height": 3, "position": [0, 4, 1.5]},
//     {"name": "north",   "type": "wall",     "from": [-5, 5], "to": [5, 5],
//      "height": 2, "thickness": 0.1}
//   ]}
//
// Units are metres and radians in the site frame (z up). A box's position is its center;
// "yaw" (default 0) turns it about z. A cylinder stands on its axis along z. A wall is a box
// from one floor point to another, standing on z = 0.
//
// Limits (a scene breaking one is refused with the obstacle and the reason): at most
// kMaxObstacles obstacles; every number finite; sizes in (0, kMaxObstacleSize] metres;
// positions within kMaxSceneCoordinate of the origin; names UTF-8 of at most 256 bytes.
#pragma once

#include <Eigen/Geometry>
#include <string>
#include <string_view>
#include <vector>

#include "doppel/core/status.h"

namespace doppel::twins {

inline constexpr size_t kMaxObstacles = 10000;
inline constexpr double kMaxObstacleSize = 1000.0;       // m, any dimension of one obstacle
inline constexpr double kMaxSceneCoordinate = 100000.0;  // m from the site origin

struct Obstacle {
  enum class Kind { kBox, kCylinder };
  std::string name;
  Kind kind = Kind::kBox;
  Eigen::Vector3d size = Eigen::Vector3d::Zero();  // box: x y z; cylinder: radius, height, 0
  Eigen::Isometry3d pose = Eigen::Isometry3d::Identity();
  // Radius of a sphere about pose.translation() that holds the whole obstacle: the broad
  // phase of a prediction skips obstacles out of the robot's reach.
  double bounding_radius = 0;
};

struct Scene {
  std::vector<Obstacle> obstacles;

  static Result<Scene> FromJson(std::string_view json);
  static Result<Scene> FromFile(const std::string& path);
};

}  // namespace doppel::twins
