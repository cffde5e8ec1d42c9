// Fuzzes the URDF loader (RobotModel::FromUrdf: urdfdom's parser, then doppel's tree walk,
// collision shapes and diff-drive detection) and forward kinematics of an accepted model at
// zero joint positions.
#include <console_bridge/console.h>

#include <string_view>
#include <vector>

#include "doppel/twins/robot_model.h"
#include "fuzz_inputs.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // urdfdom logs each refused document; at millions of inputs that is most of the run time.
  console_bridge::setLogLevel(console_bridge::CONSOLE_BRIDGE_LOG_NONE);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace doppel::twins;
  auto model = RobotModel::FromUrdf(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!model.ok()) return 0;
  const std::vector<double> zeros(model->joint_names().size(), 0.0);
  const auto poses = model->LinkPoses(zeros);
  DOPPEL_FUZZ_CHECK(poses.size() == model->links().size(), "%zu poses for %zu links", poses.size(),
                    model->links().size());
  for (const std::string& name : model->joint_names()) {
    DOPPEL_FUZZ_CHECK(model->MovableIndex(name).has_value(), "joint %s has no index", name.c_str());
  }
  if (model->has_kinematics()) {
    const int tool = model->end_effector_link();
    DOPPEL_FUZZ_CHECK(tool >= 0 && tool < static_cast<int>(model->links().size()),
                      "end effector %d of %zu links", tool, model->links().size());
  }
  return 0;
}
