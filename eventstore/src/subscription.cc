#include "doppel/eventstore/subscription.h"

#include <fmt/format.h>

#include "doppel/core/log.h"
#include "doppel/eventstore/log_format.h"
#include "doppel/eventstore/wire_format.h"

namespace doppel::eventstore {

Subscription::Subscription(SubscriptionOptions options) : options_(std::move(options)) {}
Subscription::~Subscription() = default;

Result<std::unique_ptr<Subscription>> Subscription::Start(SubscriptionOptions options) {
  std::unique_ptr<Subscription> s(new Subscription(std::move(options)));
  DOPPEL_RETURN_IF_ERROR(s->Open());
  return s;
}

Status Subscription::Open() {
  StoreClientOptions client_options;
  client_options.endpoint = options_.store;
  client_options.curve = options_.curve;
  auto client = StoreClient::Connect(client_options);
  if (!client.ok()) return client.status();
  client_ = std::move(client).value();
  try {
    sub_ = zmq::socket_t(SharedZmqContext(), zmq::socket_type::sub);
    sub_.set(zmq::sockopt::rcvhwm, options_.receive_hwm);
    ConfigureClientSocket(sub_, options_.publish, options_.curve);
    // Everything: events of every stream (for gap detection) and heartbeats.
    sub_.set(zmq::sockopt::subscribe, "");
    sub_.connect(options_.publish);
  } catch (const zmq::error_t& e) {
    return Status::InvalidArgument(
        fmt::format("cannot subscribe to {}: {}", options_.publish, e.what()));
  }
  if (options_.from) {
    next_ = *options_.from;
  } else {
    // "Now": subscribed first, so nothing committed after this read can be missed.
    auto head = client_->NextPosition();
    if (!head.ok()) return head.status();
    next_ = *head;
  }
  catching_up_ = true;
  return Status::Ok();
}

bool Subscription::Matches(const RecordedEvent& e) const {
  if (!options_.stream_prefix.empty() && !e.stream().starts_with(options_.stream_prefix)) {
    return false;
  }
  return options_.event_type.empty() || e.type() == options_.event_type;
}

GlobalPosition Subscription::checkpoint() const {
  return ready_.empty() ? next_ : ready_.front().position();
}

Status Subscription::CatchUp() {
  // Read until the store has nothing newer; live messages meanwhile wait in the SUB queue.
  while (true) {
    auto page = client_->ReadAll(next_, options_.read_page);
    if (!page.ok()) return page.status();
    for (RecordedEvent& e : page->events) {
      if (e.position() < next_) continue;
      ++stats_.read;
      next_ = e.position() + 1;
      if (Matches(e)) ready_.push_back(std::move(e));
    }
    next_ = std::max(next_, page->next);
    if (page->end) break;
    if (ready_.size() >= options_.read_page) return Status::Ok();  // hand some out first
  }
  catching_up_ = false;
  return Status::Ok();
}

void Subscription::TakeLive(zmq::message_t& topic, zmq::message_t& body) {
  if (topic.to_string_view() == wire::kHeartbeatTopic) {
    if (body.size() == 8 && format::GetBigEndian64(body.to_string_view()) > next_) {
      ++stats_.gaps;  // the store is ahead of everything we received: a tail was dropped
      catching_up_ = true;
    }
    return;
  }
  auto event = RecordedEvent::FromBytes(body.to_string());
  if (!event.ok()) {
    log::Warn("subscription", "ignoring a published event that does not verify: {}",
              event.status().message());
    return;
  }
  const GlobalPosition position = event->position();
  if (position < next_) {
    ++stats_.duplicates;
    return;
  }
  if (position > next_) {
    ++stats_.gaps;  // dropped at the high-water mark, or published while we were away
    catching_up_ = true;
    return;  // the healing read delivers it
  }
  ++stats_.live;
  next_ = position + 1;
  if (Matches(*event)) ready_.push_back(std::move(event).value());
}

Result<std::optional<RecordedEvent>> Subscription::Next(std::chrono::milliseconds timeout) {
  const int64_t deadline = MonotonicNowNs() + std::chrono::nanoseconds(timeout).count();
  while (true) {
    if (!ready_.empty()) {
      RecordedEvent e = std::move(ready_.front());
      ready_.pop_front();
      ++stats_.delivered;
      return std::optional<RecordedEvent>(std::move(e));
    }
    if (catching_up_) {
      Status s = CatchUp();
      if (!s.ok()) return s;
      continue;
    }
    const int64_t left_ms = std::max<int64_t>(0, (deadline - MonotonicNowNs()) / 1'000'000);
    zmq::pollitem_t item = {sub_.handle(), 0, ZMQ_POLLIN, 0};
    try {
      zmq::poll(&item, 1, std::chrono::milliseconds(left_ms));
    } catch (const zmq::error_t& e) {
      if (e.num() != EINTR) return Status::Unavailable(e.what());
    }
    // Drain what is queued (bounded), keeping order.
    for (int i = 0; i < 4096 && !catching_up_; ++i) {
      zmq::message_t topic, body;
      if (!sub_.recv(topic, zmq::recv_flags::dontwait)) break;
      if (!topic.more() || !sub_.recv(body, zmq::recv_flags::dontwait)) continue;
      while (body.more()) {  // tolerate extra frames from a future server
        zmq::message_t extra;
        if (!sub_.recv(extra, zmq::recv_flags::dontwait)) break;
      }
      TakeLive(topic, body);
    }
    if (ready_.empty() && !catching_up_ && MonotonicNowNs() >= deadline) {
      return std::optional<RecordedEvent>();
    }
  }
}

}  // namespace doppel::eventstore
