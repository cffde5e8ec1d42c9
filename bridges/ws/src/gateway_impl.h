// The gateway's shared state: the channel catalogue (which robots have which channels, their
// newest messages, who subscribes), the connected sessions, the store client for commands and
// the counters behind /metrics. Everything here runs on the one network thread, except
// FleetFeed (its own thread, hands batches over with post), store appends (complete on the
// client's thread, post back) and the atomic counters (read by any thread).
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "channels.h"
#include "doppel/bridges/gateway.h"
#include "doppel/core/clock.h"
#include "doppel/core/log.h"
#include "doppel/eventstore/store_client.h"
#include "doppel/net/guarded_acceptor.h"
#include "doppel/replay/read_ahead.h"
#include "fleet_feed.h"
#include "replay_slots.h"
#include "replay_worker.h"
#include "state_queries.h"

namespace doppel::gateway {

class WsSession;

// Largest `advertise` the gateway sends: a fleet's channels go out in pages of at most this
// many channels and about this many bytes (a page always holds at least one channel), so
// that a client's join costs the same small steps whatever the fleet size.
inline constexpr size_t kAdvertisePageChannels = 500;
inline constexpr size_t kAdvertisePageBytes = 512 * 1024;

struct Channel {
  uint32_t id = 0;
  std::string topic;
  // Shared by every channel of the same kind: a TwinState .bfbs schema is 16 KB of base64,
  // and a fleet has thousands of twin_fb channels.
  std::shared_ptr<const ChannelSpec> spec;
  std::unordered_map<WsSession*, uint32_t> subscribers;  // session -> subscription id
  // The newest messages, sent to a new subscriber at once (state channels keep one, event
  // channels their last 20), the way ROS latches with transient-local durability.
  std::deque<std::pair<std::shared_ptr<const std::string>, TimeNs>> recent;
  size_t keep = 1;
};

class Gateway::Impl {
 public:
  explicit Impl(GatewayOptions options);
  ~Impl();

  Status Start();

  uint16_t port() const { return port_; }
  Counters counters() const;
  const GatewayOptions& options() const { return options_; }
  ReplaySlots& replay_slots() { return replay_slots_; }
  // How replay sessions read ahead: on the gateway's two shared threads, two pages of 256
  // events each, instead of a thread and eight pages of 1,024 per session.
  replay::ReadAheadOptions replay_read_ahead() const {
    return {.page_events = 256, .max_pages = 2, .pool = read_ahead_pool_};
  }
  // Runs `work` on the store off the network thread; `done` runs back on it (Unavailable
  // without a store or when too many queries wait).
  void QueryStore(StateQueries::Work work, std::function<void(Result<nlohmann::json>)> done);
  // Where replay sessions run (off the network thread).
  ReplayWorker& replay_worker() { return *replay_worker_; }
  // The store the gateway reads and appends to; null without one (replay needs it).
  const eventstore::EventStore* store() const { return store_.get(); }
  boost::asio::io_context& io() { return io_; }
  std::string Metrics() const;

  // Called by sessions (network thread).
  std::optional<Token> Authorize(std::string_view token);
  void Joined(const std::shared_ptr<WsSession>& session);
  // A replay session: not in the live catalogue, but closed with the gateway like the others.
  void ReplayJoined(const std::shared_ptr<WsSession>& session) {
    replay_sessions_[session.get()] = session;
  }
  void Left(WsSession* session);
  void Subscribe(WsSession* session, uint32_t subscription, uint32_t channel);
  void Unsubscribe(WsSession* session, uint32_t subscription);
  bool KnowsRobot(std::string_view robot) const { return known_robots_.count(robot) > 0; }
  // Appends `event` (a CommandIssued) to robot-<robot> and tells the session the outcome
  // (WsSession::CommandRecorded with request_id).
  void Command(const std::shared_ptr<WsSession>& session, const std::string& robot,
               eventstore::NewEvent event, std::string request_id = "");
  // rosbridge sessions: start or stop feeding `session` the ROS messages of `topic` (on start,
  // the newest of each of its slots at once), and answer a service call
  // (WsSession::ServiceDone).
  void RosWatch(WsSession* session, const std::string& topic, bool watch);
  void CallService(const std::shared_ptr<WsSession>& session, const std::string& id,
                   const std::string& service, const nlohmann::json& args);

  // Channel ids only grow: every channel that exists now has an id below channel_end().
  uint32_t channel_end() const { return next_channel_; }
  // An `advertise` of the next page of channels with ids in [from, channel_end()), and in
  // `next` the id to continue from; nullptr when no channel is left there. Pages are cached
  // until the catalogue changes, so clients joining together share them.
  std::shared_ptr<const std::string> AdvertisePage(uint32_t from, uint32_t& next);

  void NoteSent(size_t bytes, TimeNs stamp);
  void NoteDropped() { ++dropped_; }

 private:
  struct Page {
    std::shared_ptr<const std::string> text;
    uint32_t next = 0;
  };

  void OnBatch(FeedBatch batch);
  void AddRobot(const std::string& robot);
  void AddChannel(const std::string& topic);
  void CatalogueChanged() { pages_.clear(); }

  GatewayOptions options_;
  ReplaySlots replay_slots_{options_.max_replay_sessions, options_.max_replay_sessions_per_token};
  std::shared_ptr<replay::ReadAheadPool> read_ahead_pool_ =
      std::make_shared<replay::ReadAheadPool>(2);
  boost::asio::io_context io_;
  std::unique_ptr<net::GuardedAcceptor> acceptor_;
  uint16_t port_ = 0;
  std::unique_ptr<FleetFeed> feed_;
  std::unique_ptr<eventstore::EventStore> store_;
  std::thread thread_;

  std::map<uint32_t, Channel> channels_;  // ordered by id: pages walk it
  std::unordered_map<std::string, uint32_t> topics_;
  std::map<std::string, std::shared_ptr<const ChannelSpec>> specs_;  // by schema name
  std::set<std::string, std::less<>> known_robots_;
  uint32_t next_channel_ = 1;
  std::unordered_map<WsSession*, std::shared_ptr<WsSession>> sessions_;
  std::unordered_map<WsSession*, std::weak_ptr<WsSession>> replay_sessions_;
  std::map<uint32_t, Page> pages_;  // by first id; bounded (see AdvertisePage)
  // rosbridge: the newest ROS message per topic and slot (robot), for new subscribers, and
  // which sessions watch each topic.
  std::unordered_map<std::string, std::map<std::string, std::shared_ptr<const std::string>>>
      ros_latest_;
  std::unordered_map<std::string, std::set<WsSession*>> ros_watchers_;
  size_t rosbridge_sessions_ = 0;
  std::unique_ptr<StateQueries> state_queries_;
  std::unique_ptr<ReplayWorker> replay_worker_ = std::make_unique<ReplayWorker>();
  log::RateLimitedWarning robot_refused_warning_{"gateway"};

  std::atomic<size_t> backlog_{0};
  std::atomic<uint64_t> connections_{0}, accepted_{0}, refused_{0}, sent_{0}, dropped_{0},
      bytes_sent_{0}, commands_{0}, robots_{0}, robots_refused_{0};
  mutable std::atomic<int64_t> max_lag_ns_{0};
};

}  // namespace doppel::gateway
