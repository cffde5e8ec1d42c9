// A stand-in for a stock ROS 2 node on ROS 2's default middleware: Fast DDS with types from
// `fastddsgen -typeros2`, no doppel code. It publishes rt/<robot>/joint_states and
// rt/<robot>/cmd_vel with ROS type names, subscribes to rt/twin/<robot>/joint_states and
// rt/tf, and prints one JSON line per sample it receives:
//   {"topic":"twin_joint_states","name":[...],"position":[...]}
//   {"topic":"tf","frames":["<robot>/base_link",...]}
// and, for each JointState it publishes, {"topic":"sent","position":[...]}.
// Loopback only: builtin transports off, UDPv4 whitelisted to 127.0.0.1, unicast discovery
// to the CycloneDDS participant ports of the domain.
#include <fastdds/rtps/transport/UDPv4TransportDescriptor.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fastdds/dds/domain/DomainParticipant.hpp>
#include <fastdds/dds/domain/DomainParticipantFactory.hpp>
#include <fastdds/dds/publisher/DataWriter.hpp>
#include <fastdds/dds/publisher/Publisher.hpp>
#include <fastdds/dds/subscriber/DataReader.hpp>
#include <fastdds/dds/subscriber/DataReaderListener.hpp>
#include <fastdds/dds/subscriber/SampleInfo.hpp>
#include <fastdds/dds/subscriber/Subscriber.hpp>
#include <fastdds/dds/topic/TypeSupport.hpp>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "ros2_typesPubSubTypes.h"

using namespace eprosima::fastdds::dds;  // NOLINT(build/namespaces)
using eprosima::fastdds::rtps::UDPv4TransportDescriptor;
using eprosima::fastrtps::rtps::Locator_t;

namespace {

std::mutex print_mu;

std::string JsonDoubles(const std::vector<double>& v) {
  std::string out = "[";
  char buf[64];
  for (size_t i = 0; i < v.size(); ++i) {
    std::snprintf(buf, sizeof(buf), "%s%.17g", i ? "," : "", v[i]);
    out += buf;
  }
  return out + "]";
}

std::string JsonStrings(const std::vector<std::string>& v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) out += (i ? ",\"" : "\"") + v[i] + "\"";
  return out + "]";
}

void Print(const std::string& line) {
  std::lock_guard lock(print_mu);
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

class JointsListener : public DataReaderListener {
 public:
  void on_data_available(DataReader* reader) override {
    sensor_msgs::msg::JointState js;
    SampleInfo info;
    while (reader->take_next_sample(&js, &info) == ReturnCode_t::RETCODE_OK) {
      if (!info.valid_data) continue;
      Print("{\"topic\":\"twin_joint_states\",\"name\":" + JsonStrings(js.name()) +
            ",\"position\":" + JsonDoubles(js.position()) + "}");
    }
  }
};

class TfListener : public DataReaderListener {
 public:
  void on_data_available(DataReader* reader) override {
    tf2_msgs::msg::TFMessage tf;
    SampleInfo info;
    while (reader->take_next_sample(&tf, &info) == ReturnCode_t::RETCODE_OK) {
      if (!info.valid_data) continue;
      std::vector<std::string> frames;
      for (const auto& t : tf.transforms()) frames.push_back(t.child_frame_id());
      Print("{\"topic\":\"tf\",\"frames\":" + JsonStrings(frames) + "}");
    }
  }
};

}  // namespace

int main(int argc, char** argv) {
  std::string robot = "fd_arm_0";
  int domain = 0;
  double seconds = 20;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--robot")) robot = argv[i + 1];
    if (!std::strcmp(argv[i], "--domain")) domain = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--seconds")) seconds = std::atof(argv[i + 1]);
  }

  DomainParticipantQos pqos;
  pqos.name("doppel_fastdds_peer");
  pqos.transport().use_builtin_transports = false;
  auto udp = std::make_shared<UDPv4TransportDescriptor>();
  udp->interfaceWhiteList.emplace_back("127.0.0.1");
  pqos.transport().user_transports.push_back(udp);
  for (int index = 0; index < 20; ++index) {
    Locator_t peer;
    peer.kind = LOCATOR_KIND_UDPv4;
    eprosima::fastrtps::rtps::IPLocator::setIPv4(peer, 127, 0, 0, 1);
    peer.port = 7400 + 250 * domain + 10 + 2 * index;
    pqos.wire_protocol().builtin.initialPeersList.push_back(peer);
  }
  DomainParticipant* participant =
      DomainParticipantFactory::get_instance()->create_participant(domain, pqos);
  if (participant == nullptr) {
    std::fprintf(stderr, "fastdds_peer: cannot create a participant\n");
    return 1;
  }
  TypeSupport joint_type(new sensor_msgs::msg::JointStatePubSubType());
  TypeSupport twist_type(new geometry_msgs::msg::TwistPubSubType());
  TypeSupport tf_type(new tf2_msgs::msg::TFMessagePubSubType());
  joint_type.register_type(participant);
  twist_type.register_type(participant);
  tf_type.register_type(participant);

  Topic* joints_out = participant->create_topic("rt/" + robot + "/joint_states",
                                                joint_type.get_type_name(), TOPIC_QOS_DEFAULT);
  Topic* cmd_out = participant->create_topic("rt/" + robot + "/cmd_vel", twist_type.get_type_name(),
                                             TOPIC_QOS_DEFAULT);
  Topic* twin_in = participant->create_topic("rt/twin/" + robot + "/joint_states",
                                             joint_type.get_type_name(), TOPIC_QOS_DEFAULT);
  Topic* tf_in = participant->create_topic("rt/tf", tf_type.get_type_name(), TOPIC_QOS_DEFAULT);

  Publisher* publisher = participant->create_publisher(PUBLISHER_QOS_DEFAULT);
  Subscriber* subscriber = participant->create_subscriber(SUBSCRIBER_QOS_DEFAULT);
  DataWriterQos wqos = DATAWRITER_QOS_DEFAULT;
  wqos.reliability().kind = RELIABLE_RELIABILITY_QOS;
  wqos.history().kind = KEEP_LAST_HISTORY_QOS;
  wqos.history().depth = 10;
  // No data sharing: Fast DDS would put its segments in /dev/shm, and a peer that is killed
  // leaves them there. Everything goes over UDP on loopback, as it does to doppel.
  wqos.data_sharing().off();
  DataWriter* joints_writer = publisher->create_datawriter(joints_out, wqos);
  DataWriter* cmd_writer = publisher->create_datawriter(cmd_out, wqos);
  DataReaderQos rqos = DATAREADER_QOS_DEFAULT;
  rqos.reliability().kind = RELIABLE_RELIABILITY_QOS;
  rqos.history().kind = KEEP_LAST_HISTORY_QOS;
  rqos.history().depth = 100;
  rqos.data_sharing().off();
  JointsListener joints_listener;
  TfListener tf_listener;
  DataReader* twin_reader = subscriber->create_datareader(twin_in, rqos, &joints_listener);
  DataReader* tf_reader = subscriber->create_datareader(tf_in, rqos, &tf_listener);
  if (!joints_writer || !cmd_writer || !twin_reader || !tf_reader) {
    std::fprintf(stderr, "fastdds_peer: cannot create endpoints\n");
    return 1;
  }

  const std::vector<std::string> names = {"shoulder_pan_joint", "shoulder_lift_joint",
                                          "elbow_joint",        "wrist_1_joint",
                                          "wrist_2_joint",      "wrist_3_joint"};
  const auto start = std::chrono::steady_clock::now();
  int k = 0;
  while (std::chrono::steady_clock::now() - start < std::chrono::duration<double>(seconds)) {
    sensor_msgs::msg::JointState js;
    const auto now = std::chrono::system_clock::now().time_since_epoch();
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now).count();
    js.header().stamp().sec(static_cast<int32_t>(ns / 1000000000));
    js.header().stamp().nanosec(static_cast<uint32_t>(ns % 1000000000));
    js.header().frame_id(robot + "/base_link");
    js.name(names);
    std::vector<double> q;
    for (int j = 0; j < 6; ++j) q.push_back(0.1 * j + 0.3 * std::sin(0.05 * k + j));
    js.position(q);
    js.velocity(std::vector<double>(6, 0.0));
    joints_writer->write(&js);
    Print("{\"topic\":\"sent\",\"position\":" + JsonDoubles(q) + "}");
    if (k % 10 == 5) {
      geometry_msgs::msg::Twist twist;
      twist.linear().x(0.25);
      twist.angular().z(-0.5);
      cmd_writer->write(&twist);
    }
    ++k;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  participant->delete_contained_entities();
  DomainParticipantFactory::get_instance()->delete_participant(participant);
  return 0;
}
