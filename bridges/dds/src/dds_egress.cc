#include "doppel/bridges/dds_egress.h"

#include <fmt/format.h>

#include <atomic>
#include <cctype>
#include <map>
#include <mutex>
#include <thread>

#include "command_relay.h"
#include "doppel/bridges/dds.h"
#include "doppel/bridges/twin_publisher.h"
#include "doppel/core/log.h"
#include "doppel/eventstore/subscription.h"
#include "doppel/schemas/robot_events_generated.h"
#include "doppel/schemas/twin_state_generated.h"
#include "doppel/schemas/verify_root.h"
#include "ros2_msgs.h"

namespace doppel::dds {
namespace {

constexpr char kComponent[] = "dds-egress";

}  // namespace

class DdsEgress::Impl {
 public:
  explicit Impl(EgressOptions options) : options_(std::move(options)) {}

  Status Start() {
    auto participant = Participant::Create(options_.domain);
    if (!participant.ok()) return participant.status();
    participant_ = std::make_unique<Participant>(std::move(participant).value());
    auto publisher = TwinPublisher::Create(*participant_, "", options_.frame);
    if (!publisher.ok()) return publisher.status();
    publisher_ = std::move(publisher).value();
    auto sub = eventstore::ConnectSubscriber(options_.twin_publish, "twin/");
    if (!sub.ok()) return sub.status();
    sub_ = std::move(sub).value();
    if (!options_.store.empty() || options_.open_feed) {
      // Operators' commands are followed from now on (a command issued while the egress was
      // down is stale: it is not replayed into a robot); so are predictions.
      auto open =
          [this](const std::string& type) -> Result<std::unique_ptr<eventstore::EventFeed>> {
        if (options_.open_feed) return options_.open_feed(std::nullopt, "robot-", type);
        eventstore::SubscriptionOptions so;
        so.store = options_.store;
        so.publish = options_.publish;
        so.stream_prefix = "robot-";
        so.event_type = type;
        auto sub = eventstore::Subscription::Start(so);
        if (!sub.ok()) return sub.status();
        return std::unique_ptr<eventstore::EventFeed>(std::move(sub).value());
      };
      auto predictions = open("PredictionMade");
      if (!predictions.ok()) return predictions.status();
      predictions_ = std::move(predictions).value();
      auto commands = open("CommandIssued");
      if (!commands.ok()) return commands.status();
      commands_ = std::move(commands).value();
      relay_ = std::make_unique<CommandRelay>(*participant_, options_.stop_hold);
    }
    thread_ = std::thread([this] { Run(); });
    return Status::Ok();
  }

  ~Impl() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }

  Counters counters() const {
    std::lock_guard lock(mu_);
    return counters_;
  }

 private:
  void Run() {
    while (!stop_) {
      zmq::pollitem_t item = {sub_.handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, std::chrono::milliseconds(predictions_ ? 5 : 50));
      zmq::message_t topic, body;
      while (sub_.recv(topic, zmq::recv_flags::dontwait)) {
        if (!topic.more() || !sub_.recv(body, zmq::recv_flags::dontwait)) continue;
        PublishState(std::string(topic.to_string_view().substr(5)), body);
      }
      if (predictions_) {
        auto next = predictions_->Next(std::chrono::milliseconds(0));
        while (next.ok() && next->has_value()) {
          PublishPath(**next);
          next = predictions_->Next(std::chrono::milliseconds(0));
        }
      }
      if (commands_) {
        auto next = commands_->Next(std::chrono::milliseconds(0));
        while (next.ok() && next->has_value()) {
          relay_->OnCommand(**next, WallNowNs());
          next = commands_->Next(std::chrono::milliseconds(0));
        }
        relay_->Tick(WallNowNs());
        Count([this](Counters& c) { c.commands_relayed = relay_->relayed(); });
      }
    }
  }

  void PublishState(const std::string& robot, const zmq::message_t& body) {
    const uint8_t* bytes = eventstore::AlignedBytes(body, scratch_);
    auto verified = schemas::VerifyRoot<twin::TwinState>(
        std::string_view(reinterpret_cast<const char*>(bytes), body.size()), "TwinState",
        twin::TwinStateIdentifier());
    if (!verified.ok()) {
      Count([](Counters& c) { ++c.bad; });
      return;
    }
    if (!publisher_->PublishState(robot, **verified)) return;
    Count([this](Counters& c) {
      ++c.states;
      c.robots = publisher_->robots();
    });
  }

  void PublishPath(const eventstore::RecordedEvent& e) {
    const std::string robot(e.stream().substr(6));
    const auto* p =
        flatbuffers::GetRoot<events::PredictionMade>(AlignedBytes(e.payload(), payload_scratch_));
    if (!publisher_->PublishPath(robot, *p)) return;
    Count([](Counters& c) { ++c.paths; });
  }

  template <typename F>
  void Count(F f) {
    std::lock_guard lock(mu_);
    f(counters_);
  }

  EgressOptions options_;
  std::unique_ptr<Participant> participant_;
  std::unique_ptr<TwinPublisher> publisher_;  // after participant_: its writers use it
  zmq::socket_t sub_;
  std::vector<uint64_t> scratch_;          // for misaligned messages
  std::vector<uint64_t> payload_scratch_;  // for payloads nested in envelopes
  std::unique_ptr<eventstore::EventFeed> predictions_, commands_;
  std::unique_ptr<CommandRelay> relay_;  // after participant_: its writers use it
  std::atomic<bool> stop_{false};
  std::thread thread_;
  mutable std::mutex mu_;
  Counters counters_;
};

DdsEgress::DdsEgress(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
DdsEgress::~DdsEgress() = default;

Result<std::unique_ptr<DdsEgress>> DdsEgress::Start(EgressOptions options) {
  auto impl = std::make_unique<Impl>(std::move(options));
  DOPPEL_RETURN_IF_ERROR(impl->Start());
  return std::unique_ptr<DdsEgress>(new DdsEgress(std::move(impl)));
}

DdsEgress::Counters DdsEgress::counters() const { return impl_->counters(); }

}  // namespace doppel::dds
