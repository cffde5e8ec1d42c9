#include "rosbridge_session.h"

#include <fmt/format.h>

#include <algorithm>

#include "client_json.h"
#include "doppel/core/json_text.h"
#include "ros_messages.h"

namespace doppel::gateway {
namespace {

using nlohmann::json;

// Fragments smaller than this would cost more in envelope than they carry; a client asking
// for less gets this, so one message never becomes millions of frames.
constexpr size_t kMinFragmentSize = 64;

// "pkg/Name" and "pkg/msg/Name" name the same ROS 2 type; rosbridge accepts both.
std::string NormalizeType(std::string_view type) {
  std::string t(type);
  const auto first = t.find('/');
  if (first != std::string::npos && t.find('/', first + 1) == std::string::npos) {
    t.insert(first, "/msg");
  }
  return t;
}

// A rosbridge id may be a string or a number.
std::string IdOf(const json& j) {
  if (!j.is_object() || !j.contains("id")) return "";
  const auto& id = j["id"];
  if (id.is_string()) return id.get<std::string>();
  if (id.is_number_integer()) return std::to_string(id.get<int64_t>());
  return "";
}

size_t NonNegative(const json& j, const char* key) {
  if (!j.contains(key) || j[key].is_null()) return 0;
  const auto& v = j[key];
  if (!v.is_number()) throw std::invalid_argument(fmt::format("'{}' must be a number", key));
  const double d = v.get<double>();
  if (!(d >= 0)) throw std::invalid_argument(fmt::format("'{}' must not be negative", key));
  return d > 1e12 ? size_t{1'000'000'000'000} : static_cast<size_t>(d);
}

}  // namespace

std::string RosbridgeStatusJson(std::string_view level, std::string_view msg, std::string_view id) {
  json j = {{"op", "status"}, {"level", level}, {"msg", msg}};
  if (!id.empty()) j["id"] = id;
  return SafeJsonDump(j);
}

std::string RosbridgeSession::SlowClientWarning() {
  return RosbridgeStatusJson("warning",
                             "Send buffer limit reached: this client is slow, so only the newest "
                             "message per topic and robot is kept until it catches up");
}

RosbridgeSession::RosbridgeSession(Role role,
                                   std::function<bool(std::string_view robot)> knows_robot)
    : role_(role), knows_robot_(std::move(knows_robot)) {}

std::vector<RosbridgeAction> RosbridgeSession::TakeActions() {
  std::vector<RosbridgeAction> out;
  out.swap(actions_);
  return out;
}

void RosbridgeSession::SendStatus(std::string_view level, std::string_view msg,
                                  std::string_view id) {
  Reply(RosbridgeStatusJson(level, msg, id));
}

void RosbridgeSession::Reply(std::string text, size_t fragment_size) {
  auto shared = std::make_shared<const std::string>(std::move(text));
  actions_.push_back(RosbridgeSend{Fragments(shared, fragment_size), false, 0});
}

void RosbridgeSession::OnText(std::string_view text, int64_t now_ns) {
  (void)now_ns;
  auto parsed = ParseClientJson(text);
  if (!parsed.ok()) {
    SendStatus("error",
               fmt::format("{} message: {}", ClientJsonVerdict(parsed.status()),
                           parsed.status().message()),
               "");
    return;
  }
  const json& j = *parsed;
  if (!j.is_object() || !j.contains("op") || !j["op"].is_string()) {
    SendStatus("error", "Malformed message: want a JSON object with a string \"op\"", IdOf(j));
    return;
  }
  const std::string op = j["op"];
  const std::string id = IdOf(j);
  try {
    if (op == "subscribe") {
      Subscribe(j, id);
    } else if (op == "unsubscribe") {
      Unsubscribe(j, id);
    } else if (op == "advertise") {
      Advertise(j, id);
    } else if (op == "unadvertise") {
      const std::string topic = j.at("topic").get<std::string>();
      if (advertised_.erase(topic) == 0) {
        SendStatus("warning", fmt::format("Topic {} was not advertised by this client", topic), id);
      }
    } else if (op == "publish") {
      Publish(j, id);
    } else if (op == "call_service") {
      CallService(j, id);
    } else if (op == "set_level") {
      // Accepted for roslibjs' setStatusLevel; every status is sent whatever the level.
    } else {
      SendStatus("error", fmt::format("Unsupported op '{}'", op), id);
    }
  } catch (const std::exception& e) {
    SendStatus("error", fmt::format("Malformed '{}': {}", op, e.what()), id);
  }
}

// Several subscriptions of one topic get it once: at the lowest throttle and fragment size
// and with the longest queue (spec 3.2.4). The merge is read off the ends of the topic's
// multisets, so a subscribe or unsubscribe costs O(log n), not a pass over all of them (100,000
// subscribes to /tf were 5e9 steps on the network thread).
void RosbridgeSession::AddToMerge(Topic& topic, const Params& p) {
  ++merge_steps_;
  topic.throttles_ns.insert(p.throttle_ns);
  topic.queue_lengths.insert(p.queue_length);
  if (p.fragment_size > 0) topic.fragment_sizes.insert(p.fragment_size);
  topic.merged = Params{*topic.throttles_ns.begin(), *topic.queue_lengths.rbegin(),
                        topic.fragment_sizes.empty() ? 0 : *topic.fragment_sizes.begin()};
}

void RosbridgeSession::RemoveFromMerge(Topic& topic, const Params& p) {
  ++merge_steps_;
  // One of each: equal values of other subscriptions stay.
  topic.throttles_ns.erase(topic.throttles_ns.find(p.throttle_ns));
  topic.queue_lengths.erase(topic.queue_lengths.find(p.queue_length));
  if (p.fragment_size > 0) topic.fragment_sizes.erase(topic.fragment_sizes.find(p.fragment_size));
  if (topic.throttles_ns.empty()) return;  // the last one: the topic goes
  topic.merged = Params{*topic.throttles_ns.begin(), *topic.queue_lengths.rbegin(),
                        topic.fragment_sizes.empty() ? 0 : *topic.fragment_sizes.begin()};
}

void RosbridgeSession::Subscribe(const json& j, const std::string& id) {
  const std::string topic = j.at("topic").get<std::string>();
  std::string robot;
  const std::string type = RosTopicType(topic, &robot);
  if (type.empty()) {
    SendStatus("error",
               fmt::format("Unknown topic {}: doppel serves /tf, /diagnostics and "
                           "/<robot>/joint_states, /<robot>/odom, /<robot>/predicted_path",
                           topic),
               id);
    return;
  }
  if (!robot.empty() && !knows_robot_(robot)) {
    SendStatus("error", fmt::format("Unknown topic {}: no robot '{}'", topic, robot), id);
    return;
  }
  if (j.contains("type") && j["type"].is_string() && !j["type"].get<std::string>().empty() &&
      NormalizeType(j["type"].get<std::string>()) != type) {
    SendStatus(
        "error",
        fmt::format("Topic {} has type {}, not {}", topic, type, j["type"].get<std::string>()), id);
    return;
  }
  Params p;
  p.throttle_ns =
      static_cast<int64_t>(std::min<size_t>(NonNegative(j, "throttle_rate"), size_t{86'400'000})) *
      1'000'000;
  p.queue_length = std::min(NonNegative(j, "queue_length"), kMaxQueueLength);
  p.fragment_size = NonNegative(j, "fragment_size");
  if (p.fragment_size > 0) p.fragment_size = std::max(p.fragment_size, kMinFragmentSize);
  if (id.size() > kMaxSubscriptionIdBytes) {
    SendStatus("error",
               fmt::format("Subscribe to {} refused: its id is {} bytes, more than the {} a "
                           "subscription id may have",
                           topic, id.size(), kMaxSubscriptionIdBytes),
               // The id itself is not echoed: it is what was too large.
               "");
    return;
  }
  auto existing = topics_.find(topic);
  const bool replaces =
      !id.empty() && existing != topics_.end() && existing->second.subscriptions.count(id) > 0;
  if (!replaces && subscription_count_ >= kMaxSubscriptions) {
    SendStatus("error",
               fmt::format("Subscribe to {} refused: this connection holds {} subscriptions, the "
                           "most one may hold; unsubscribe some first",
                           topic, subscription_count_),
               id);
    return;
  }
  if (j.contains("compression") && j["compression"].is_string() && j["compression"] != "none" &&
      j["compression"] != "") {
    SendStatus("warning",
               fmt::format("Compression '{}' is not supported: {} is sent as JSON",
                           j["compression"].get<std::string>(), topic),
               id);
  }
  Topic& t = topics_[topic];
  const bool first = t.subscriptions.empty();
  auto [it, added] = t.subscriptions.try_emplace(
      id.empty() ? fmt::format("subscribe:{}", next_subscription_++) : id, p);
  if (added) {
    ++subscription_count_;
  } else {  // the same id again: its new values replace the old
    RemoveFromMerge(t, it->second);
    it->second = p;
  }
  AddToMerge(t, p);
  if (first) actions_.push_back(RosbridgeWatch{topic, true});
}

void RosbridgeSession::Unsubscribe(const json& j, const std::string& id) {
  const std::string topic = j.at("topic").get<std::string>();
  auto it = topics_.find(topic);
  if (it == topics_.end()) {
    SendStatus("warning", fmt::format("Not subscribed to {}", topic), id);
    return;
  }
  Topic& t = it->second;
  // With an id only that subscription ends; without one, all of the topic's (spec 3.2.5).
  if (id.empty()) {
    subscription_count_ -= t.subscriptions.size();
    t.subscriptions.clear();  // the topic goes with its merge: nothing to take out
  } else if (auto sub = t.subscriptions.find(id); sub != t.subscriptions.end()) {
    RemoveFromMerge(t, sub->second);
    t.subscriptions.erase(sub);
    --subscription_count_;
  }
  if (t.subscriptions.empty()) {
    topics_.erase(it);
    actions_.push_back(RosbridgeWatch{topic, false});
  }
}

bool RosbridgeSession::CheckPublishTopic(const std::string& topic, const std::string& id,
                                         std::string& robot, bool& stop) {
  if (role_ == Role::kViewer) {
    SendStatus(
        "error",
        fmt::format("Publishing on {} is not allowed for role viewer (needs an operator token)",
                    topic),
        id);
    return false;
  }
  const auto slash = topic.rfind('/');
  const std::string leaf = slash == std::string::npos ? topic : topic.substr(slash + 1);
  if (topic.size() < 2 || topic[0] != '/' || slash == 0 || slash == std::string::npos ||
      (leaf != "cmd_vel" && leaf != "stop")) {
    SendStatus(
        "error",
        fmt::format("Topic {}: clients may publish /<robot>/cmd_vel (geometry_msgs/Twist) or "
                    "/<robot>/stop (std_msgs/Empty)",
                    topic),
        id);
    return false;
  }
  robot = topic.substr(1, slash - 1);
  stop = leaf == "stop";
  if (!knows_robot_(robot)) {
    SendStatus("error", fmt::format("Unknown robot '{}'", robot), id);
    return false;
  }
  return true;
}

void RosbridgeSession::Advertise(const json& j, const std::string& id) {
  const std::string topic = j.at("topic").get<std::string>();
  std::string robot;
  bool stop = false;
  if (!CheckPublishTopic(topic, id, robot, stop)) return;
  const std::string want = stop ? "std_msgs/msg/Empty" : "geometry_msgs/msg/Twist";
  if (j.contains("type") && j["type"].is_string() &&
      NormalizeType(j["type"].get<std::string>()) != want) {
    SendStatus(
        "error",
        fmt::format("Topic {} has type {}, not {}", topic, want, j["type"].get<std::string>()), id);
    return;
  }
  advertised_[topic] = id;
}

void RosbridgeSession::Publish(const json& j, const std::string& id) {
  const std::string topic = j.at("topic").get<std::string>();
  std::string robot;
  bool stop = false;
  if (!CheckPublishTopic(topic, id, robot, stop)) return;
  const json msg = j.contains("msg") ? j["msg"] : json::object();
  if (!msg.is_object()) {
    SendStatus("error", fmt::format("Publish on {}: msg must be a JSON object", topic), id);
    return;
  }
  for (const char* part : {"linear", "angular"}) {
    if (!msg.contains(part)) continue;
    const auto& v = msg[part];
    bool ok = v.is_object();
    for (const char* axis : {"x", "y", "z"}) {
      ok = ok && (!v.contains(axis) || v[axis].is_number());
    }
    if (!ok) {
      SendStatus("error",
                 fmt::format("Publish on {}: msg.{} must be a geometry_msgs/Vector3 of numbers",
                             topic, part),
                 id);
      return;
    }
  }
  actions_.push_back(RosbridgeCommand{robot, stop, msg, id});
}

void RosbridgeSession::CallService(const json& j, const std::string& id) {
  const std::string service = j.at("service").get<std::string>();
  json args = j.contains("args") ? j["args"] : json::object();
  // The spec's args is a list; roslibjs sends the request object.
  if (args.is_array()) args = args.empty() ? json::object() : args[0];
  if (service == kListRobots) {
    actions_.push_back(RosbridgeServiceCall{id, service, json::object()});
  } else if (service == kRobotState) {
    if (!args.is_object() || !args.contains("robot") || !args["robot"].is_string()) {
      OnServiceDone(id, service,
                    doppel::Status::InvalidArgument("args.robot (a string) is required"));
      return;
    }
    if (args.contains("at") && !args["at"].is_null() && !args["at"].is_string()) {
      OnServiceDone(
          id, service,
          doppel::Status::InvalidArgument("args.at must be an ISO 8601 time or ns since epoch"));
      return;
    }
    actions_.push_back(RosbridgeServiceCall{id, service, args});
  } else {
    OnServiceDone(
        id, service,
        doppel::Status::NotFound(fmt::format("Unknown service {}: doppel serves {} and {}", service,
                                             kListRobots, kRobotState)));
  }
}

void RosbridgeSession::OnCommandDone(std::string_view request_id, std::string_view robot,
                                     const Result<uint64_t>& position) {
  if (position.ok()) {
    SendStatus("info", fmt::format("Command for {} recorded at position {}", robot, *position),
               request_id);
  } else {
    SendStatus("error",
               fmt::format("Command for {} refused: {}", robot, position.status().message()),
               request_id);
  }
}

void RosbridgeSession::OnServiceDone(std::string_view id, std::string_view service,
                                     const Result<json>& values) {
  json j = {{"op", "service_response"}, {"service", service}};
  if (!id.empty()) j["id"] = id;
  if (values.ok()) {
    j["values"] = *values;
    j["result"] = true;
  } else {
    // rosbridge puts the error text in `values` (roslibjs hands it to the failure callback).
    j["values"] = values.status().message();
    j["result"] = false;
  }
  Reply(SafeJsonDump(j));
}

void RosbridgeSession::OnMessage(std::string_view topic, std::string_view slot_name,
                                 const std::shared_ptr<const std::string>& publish,
                                 int64_t now_ns) {
  auto it = topics_.find(topic);
  if (it == topics_.end() || !publish) return;
  Topic& t = it->second;
  auto s = t.slots.find(slot_name);
  if (s == t.slots.end()) s = t.slots.emplace(std::string(slot_name), Slot{}).first;
  Deliver(t, s->second, publish, now_ns);
}

void RosbridgeSession::Deliver(Topic& topic, Slot& slot, std::shared_ptr<const std::string> publish,
                               int64_t now_ns) {
  if (publish) {
    // queue_length 0 still holds one: with a throttle, the newest message waits its turn.
    const size_t capacity = std::max<size_t>(1, topic.merged.queue_length);
    while (slot.queue.size() >= capacity) slot.queue.pop_front();
    slot.queue.push_back(std::move(publish));
  }
  while (!slot.queue.empty() &&
         (!slot.sent || now_ns - slot.last_sent_ns >= topic.merged.throttle_ns)) {
    if (slot.key == 0) slot.key = next_key_++;
    actions_.push_back(
        RosbridgeSend{Fragments(slot.queue.front(), topic.merged.fragment_size), true, slot.key});
    slot.queue.pop_front();
    slot.sent = true;
    slot.last_sent_ns = now_ns;
    if (topic.merged.throttle_ns > 0) break;
  }
}

void RosbridgeSession::OnTick(int64_t now_ns) {
  for (auto& [name, topic] : topics_) {
    if (topic.merged.throttle_ns == 0) continue;
    for (auto& [robot, slot] : topic.slots) {
      if (!slot.queue.empty()) Deliver(topic, slot, nullptr, now_ns);
    }
  }
}

std::optional<int64_t> RosbridgeSession::next_deadline() const {
  std::optional<int64_t> next;
  for (const auto& [name, topic] : topics_) {
    for (const auto& [robot, slot] : topic.slots) {
      if (slot.queue.empty()) continue;
      const int64_t due = slot.last_sent_ns + topic.merged.throttle_ns;
      if (!next || due < *next) next = due;
    }
  }
  return next;
}

std::vector<std::shared_ptr<const std::string>> RosbridgeSession::Fragments(
    const std::shared_ptr<const std::string>& text, size_t fragment_size) {
  if (fragment_size == 0 || text->size() <= fragment_size) return {text};
  // Cut at UTF-8 boundaries: every fragment must itself be valid text (a JSON string), and
  // joined they give back the message byte for byte (spec 3.1.1).
  std::vector<std::string_view> parts;
  const std::string_view all(*text);
  size_t start = 0;
  while (start < all.size()) {
    size_t end = std::min(all.size(), start + fragment_size);
    while (end < all.size() && end > start + 1 &&
           (static_cast<unsigned char>(all[end]) & 0xC0) == 0x80) {
      --end;
    }
    parts.push_back(all.substr(start, end - start));
    start = end;
  }
  const std::string id = fmt::format("fragment:{}", next_fragment_id_++);
  std::vector<std::shared_ptr<const std::string>> out;
  out.reserve(parts.size());
  for (size_t i = 0; i < parts.size(); ++i) {
    out.push_back(std::make_shared<const std::string>(SafeJsonDump({{"op", "fragment"},
                                                                    {"id", id},
                                                                    {"data", parts[i]},
                                                                    {"num", i},
                                                                    {"total", parts.size()}})));
  }
  return out;
}

}  // namespace doppel::gateway
