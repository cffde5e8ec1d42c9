// The channels of an MCAP export, created as first used: ROS topics with their ros2msg
// schema and rosbag2 QoS metadata, the JSON events channel, TwinState channels; one schema
// record per type. Counts messages and numbers them per channel.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "doppel/mcap/writer.h"
#include "doppel/ros2/message_definitions.h"

namespace doppel::archive {

class ExportChannels {
 public:
  explicit ExportChannels(mcap::Writer& writer) : writer_(writer) {}

  // A ROS 2 topic of `type` ("pkg/msg/Type"); NotFound when doppel has no definition of it.
  Result<uint16_t> Ros(const std::string& topic, std::string_view type,
                       const ros2::QosProfile& qos);
  // /doppel/events: each event as JSON, with the JSON Schema of the envelope.
  uint16_t Events();
  // A TwinState channel (flatbuffer with TwinState's .bfbs).
  uint16_t TwinState(const std::string& topic);

  // The channel's next sequence number (from 1), counting the message.
  uint32_t NextSequence(uint16_t channel);
  std::map<std::string, uint64_t> MessagesPerTopic() const;

 private:
  uint16_t Channel(const std::string& topic, uint16_t schema, std::string encoding,
                   std::map<std::string, std::string> metadata);
  uint16_t Schema(const std::string& name, std::string encoding, std::string data);

  mcap::Writer& writer_;
  std::map<std::string, uint16_t, std::less<>> channels_;  // by topic
  std::map<std::string, uint16_t, std::less<>> schemas_;   // by name
  std::vector<std::pair<std::string, uint64_t>> counts_;   // by channel id: topic, messages
  uint16_t events_ = 0;
};

}  // namespace doppel::archive
