// Fuzzes the scene loader (Scene::FromJson) and what an accepted scene is for: a prediction
// of the builtin "doppel_base" driving among its obstacles. The base starts a metre before
// the first obstacle and drives at it, so the obstacle's shape reaches ODE's collision code.
// A short, coarse horizon keeps one prediction to a few milliseconds.
#include <cmath>
#include <memory>
#include <string_view>

#include "doppel/twins/predictor.h"
#include "doppel/twins/robot_model.h"
#include "doppel/twins/scene.h"
#include "fuzz_inputs.h"

namespace {

std::shared_ptr<const doppel::twins::RobotModel> BaseModel() {
  static const auto model = [] {
    auto m = doppel::twins::RobotModel::Builtin("doppel_base");
    DOPPEL_FUZZ_CHECK(m.ok(), "builtin doppel_base: %s", m.status().ToString().c_str());
    return std::make_shared<const doppel::twins::RobotModel>(std::move(m).value());
  }();
  return model;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace doppel::twins;
  auto scene = Scene::FromJson(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!scene.ok()) return 0;
  for (const Obstacle& o : scene->obstacles) {
    DOPPEL_FUZZ_CHECK(
        o.size.allFinite() && o.pose.matrix().allFinite() && std::isfinite(o.bounding_radius),
        "accepted obstacle %s is not finite", o.name.c_str());
  }

  PredictionRequest request;
  if (!scene->obstacles.empty()) {
    const Eigen::Vector3d at = scene->obstacles.front().pose.translation();
    request.base_pose.translation() = Eigen::Vector3d(at.x() - 1.0, at.y(), 0);
  }
  request.joint_positions.assign(BaseModel()->joint_names().size(), 0.0);
  request.command = PredictionRequest::Command::kVelocity;
  request.linear = Eigen::Vector3d(1.0, 0, 0);
  request.angular = Eigen::Vector3d(0, 0, 0.3);
  PredictionOptions options;
  options.step_s = 0.01;
  options.horizon_s = 0.5;

  const Predictor predictor(BaseModel(), std::make_shared<const Scene>(std::move(scene).value()));
  const Prediction p = predictor.Predict(request, options);
  DOPPEL_FUZZ_CHECK(p.refused.empty(), "a finite request was refused: %s", p.refused.c_str());
  DOPPEL_FUZZ_CHECK(!p.trajectory.empty() && p.steps > 0, "nothing predicted");
  for (const PredictedSample& s : p.trajectory) {
    DOPPEL_FUZZ_CHECK(s.base_pose.matrix().allFinite(), "non-finite pose at t=%f", s.t);
  }
  if (p.collision) {
    DOPPEL_FUZZ_CHECK(p.collision->t >= 0 && p.collision->t <= options.horizon_s + 1e-9,
                      "collision at t=%f", p.collision->t);
  }
  return 0;
}
