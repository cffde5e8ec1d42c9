#include "doppel/twins/scene.h"

#include <fmt/format.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "doppel/core/utf8.h"

namespace doppel::twins {

Result<Scene> Scene::FromJson(std::string_view text) {
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    return Status::InvalidArgument(fmt::format("scene is not JSON: {}", e.what()));
  }
  Scene scene;
  if (!json.contains("obstacles") || !json["obstacles"].is_array()) {
    return Status::InvalidArgument("scene needs an \"obstacles\" array");
  }
  if (json["obstacles"].size() > kMaxObstacles) {
    return Status::InvalidArgument(
        fmt::format("scene has {} obstacles; at most {}", json["obstacles"].size(), kMaxObstacles));
  }
  int index = 0;
  for (const auto& o : json["obstacles"]) {
    try {
      Obstacle obstacle;
      obstacle.name = o.value("name", fmt::format("obstacle-{}", index));
      const std::string type = o.at("type").get<std::string>();
      auto vec3 = [&](const char* key) {
        const auto v = o.at(key).get<std::vector<double>>();
        if (v.size() != 3) throw std::invalid_argument(fmt::format("{} needs 3 numbers", key));
        return Eigen::Vector3d(v[0], v[1], v[2]);
      };
      if (type == "box") {
        obstacle.kind = Obstacle::Kind::kBox;
        obstacle.size = vec3("size");
        obstacle.pose.translate(vec3("position"));
        obstacle.pose.rotate(Eigen::AngleAxisd(o.value("yaw", 0.0), Eigen::Vector3d::UnitZ()));
      } else if (type == "cylinder") {
        obstacle.kind = Obstacle::Kind::kCylinder;
        obstacle.size =
            Eigen::Vector3d(o.at("radius").get<double>(), o.at("height").get<double>(), 0);
        obstacle.pose.translate(vec3("position"));
      } else if (type == "wall") {
        const auto from = o.at("from").get<std::vector<double>>();
        const auto to = o.at("to").get<std::vector<double>>();
        if (from.size() != 2 || to.size() != 2)
          throw std::invalid_argument("from/to need 2 numbers");
        const Eigen::Vector2d a(from[0], from[1]), b(to[0], to[1]);
        const double height = o.value("height", 2.0), thickness = o.value("thickness", 0.1);
        obstacle.kind = Obstacle::Kind::kBox;
        obstacle.size = Eigen::Vector3d((b - a).norm(), thickness, height);
        const Eigen::Vector2d mid = (a + b) / 2;
        obstacle.pose.translate(Eigen::Vector3d(mid.x(), mid.y(), height / 2));
        obstacle.pose.rotate(
            Eigen::AngleAxisd(std::atan2(b.y() - a.y(), b.x() - a.x()), Eigen::Vector3d::UnitZ()));
      } else {
        throw std::invalid_argument(fmt::format("unknown type '{}' (box, cylinder, wall)", type));
      }
      if (!obstacle.size.allFinite() || !obstacle.pose.matrix().allFinite()) {
        throw std::invalid_argument("sizes, positions and angles must be finite numbers");
      }
      // Every side of a box, a cylinder's radius and height: a zero side makes ODE's
      // box-cylinder test normalize a zero vector and abort.
      const bool positive = obstacle.kind == Obstacle::Kind::kBox
                                ? (obstacle.size.array() > 0).all()
                                : obstacle.size.x() > 0 && obstacle.size.y() > 0;
      if (!positive) throw std::invalid_argument("sizes must be positive");
      if ((obstacle.size.array() > kMaxObstacleSize).any()) {
        throw std::invalid_argument(fmt::format("sizes must be at most {} m (got {} x {} x {})",
                                                kMaxObstacleSize, obstacle.size.x(),
                                                obstacle.size.y(), obstacle.size.z()));
      }
      if (obstacle.pose.translation().cwiseAbs().maxCoeff() > kMaxSceneCoordinate) {
        throw std::invalid_argument(
            fmt::format("position must be within {} m of the origin", kMaxSceneCoordinate));
      }
      if (obstacle.name.size() > 256 || !IsValidUtf8(obstacle.name)) {
        throw std::invalid_argument("name must be UTF-8 of at most 256 bytes");
      }
      obstacle.bounding_radius = obstacle.kind == Obstacle::Kind::kBox
                                     ? obstacle.size.norm() / 2
                                     : std::hypot(obstacle.size.x(), obstacle.size.y() / 2);
      scene.obstacles.push_back(std::move(obstacle));
    } catch (const std::exception& e) {
      return Status::InvalidArgument(fmt::format("scene obstacle {}: {}", index, e.what()));
    }
    ++index;
  }
  return scene;
}

Result<Scene> Scene::FromFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::NotFound(fmt::format("cannot read scene file {}", path));
  std::stringstream text;
  text << in.rdbuf();
  return FromJson(text.str());
}

}  // namespace doppel::twins
