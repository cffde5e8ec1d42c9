// Gateway::Impl (gateway_impl.h): the channel catalogue fed by FleetFeed, the sessions that
// subscribe to it, commands into the store, and /metrics. The connections are http_session
// and ws_session; the wire formats are ws_framing and foxglove_messages.
#include "doppel/bridges/gateway.h"

#include <fmt/format.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>

#include "doppel/core/metrics.h"
#include "doppel/core/utf8.h"
#include "foxglove_messages.h"
#include "gateway_impl.h"
#include "http_session.h"
#include "ros_messages.h"
#include "ws_session.h"

namespace doppel::gateway {

namespace beast = boost::beast;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

constexpr std::string_view kComponent = "gateway";
constexpr size_t kMaxBacklogMessages = 20000;  // handed to the network thread, not yet sent
constexpr size_t kMaxCachedPages = 32;         // 16 MB at most

// What a connection over the budget reads before it is closed.
std::string BusyResponse() {
  constexpr std::string_view kBody = "doppel gateway: too many connections; try again later\n";
  return fmt::format(
      "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nRetry-After: 1\r\n"
      "Connection: close\r\nContent-Length: {}\r\n\r\n{}",
      kBody.size(), kBody);
}

}  // namespace

Gateway::Impl::Impl(GatewayOptions options)
    : options_(std::move(options)),
      acceptor_(std::make_unique<doppel::net::GuardedAcceptor>(
          io_, std::string(kComponent),
          doppel::net::AcceptLimits{.max_connections = options_.max_connections,
                                    .max_per_address = options_.max_connections_per_address},
          BusyResponse())) {}

Gateway::Counters Gateway::Impl::counters() const {
  Counters c;
  c.connections = connections_.load();
  c.accepted = accepted_.load();
  c.refused = refused_.load();
  c.messages_sent = sent_.load();
  c.messages_dropped = dropped_.load();
  c.bytes_sent = bytes_sent_.load();
  c.commands = commands_.load();
  c.robots = robots_.load();
  c.robots_refused = robots_refused_.load();
  const doppel::net::AcceptCounters tcp = acceptor_->counters();
  c.tcp_open = tcp.open;
  c.tcp_refused_total = tcp.refused_total;
  c.tcp_refused_per_address = tcp.refused_per_address;
  c.tcp_accept_errors = tcp.accept_errors;
  return c;
}

void Gateway::Impl::NoteSent(size_t bytes, TimeNs stamp) {
  ++sent_;
  bytes_sent_ += bytes;
  if (stamp != 0) {
    const int64_t lag = WallNowNs() - stamp;
    int64_t seen = max_lag_ns_.load();
    while (lag > seen && !max_lag_ns_.compare_exchange_weak(seen, lag)) {
    }
  }
}

Status Gateway::Impl::Start() {
  DOPPEL_RETURN_IF_ERROR(acceptor_->Listen(options_.address, options_.port));
  port_ = acceptor_->port();

  if (options_.open_store) {
    auto store = options_.open_store();
    if (!store.ok()) return store.status();
    store_ = std::move(store).value();
  } else if (!options_.store.empty()) {
    eventstore::StoreClientOptions so;
    so.endpoint = options_.store;
    auto client = eventstore::StoreClient::Connect(so);
    if (!client.ok()) return client.status();
    store_ = std::move(client).value();
  }
  if (store_) state_queries_ = std::make_unique<StateQueries>(*store_);
  AddChannel("/fleet/summary");
  AddChannel("/fleet/alerts");

  FeedOptions fo;
  fo.twin_publish = options_.twin_publish;
  fo.store = options_.store;
  fo.publish = options_.publish;
  fo.open_feed = options_.open_feed;
  fo.frame = options_.frame;
  fo.summary_hz = options_.summary_hz;
  fo.time_hz = options_.time_hz;
  fo.forget_after_s = options_.forget_after_s;
  auto feed = FleetFeed::Start(fo, [this](FeedBatch batch) {
    if (backlog_.load() > kMaxBacklogMessages) {
      // The network thread is far behind: shed this batch's messages (counted), keep the
      // robots and the clock.
      dropped_ += batch.messages.size() + batch.ros_messages.size();
      batch.messages.clear();
      batch.ros_messages.clear();
    }
    const size_t n = batch.messages.size() + batch.ros_messages.size();
    backlog_ += n;
    net::post(io_, [this, n, b = std::move(batch)]() mutable {
      backlog_ -= n;
      OnBatch(std::move(b));
    });
  });
  if (!feed.ok()) return feed.status();
  feed_ = std::move(feed).value();

  const auto first_request_timeout = std::chrono::milliseconds(
      static_cast<int64_t>(std::max(0.001, options_.first_request_timeout_s) * 1000));
  acceptor_->Start(
      [this, first_request_timeout](tcp::socket socket, doppel::net::ConnectionTicket ticket) {
        beast::error_code ignored;
        socket.set_option(tcp::no_delay(true), ignored);
        std::make_shared<HttpSession>(std::move(socket), std::move(ticket), *this,
                                      first_request_timeout)
            ->Read();
      });
  thread_ = std::thread([this] { io_.run(); });
  log::Info(kComponent, "serving http://{}:{}/ (foxglove.websocket.v1 on the same port)",
            options_.address, port_);
  return Status::Ok();
}

Gateway::Impl::~Impl() {
  feed_.reset();
  state_queries_.reset();
  net::post(io_, [this] {
    acceptor_->Close();
    for (auto& [ptr, session] : sessions_) session->Close();
    for (auto& [ptr, weak] : replay_sessions_) {
      if (auto session = weak.lock()) session->Close();
    }
  });
  // Let the closes run, then stop.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  io_.stop();
  if (thread_.joinable()) thread_.join();
  // Only now: a replay session's next tick posts to the worker from the network thread.
  replay_worker_.reset();
  sessions_.clear();
  channels_.clear();
  store_.reset();
}

std::optional<Token> Gateway::Impl::Authorize(std::string_view token) {
  if (options_.tokens.empty()) return Token{"", Role::kViewer, "anonymous"};
  for (const auto& t : options_.tokens) {
    if (!token.empty() && t.token == token) return t;
  }
  ++refused_;
  return std::nullopt;
}

void Gateway::Impl::Joined(const std::shared_ptr<WsSession>& session) {
  sessions_[session.get()] = session;
  ++accepted_;
  connections_ = sessions_.size();
  if (session->protocol() == WsProtocol::kRosbridge) {
    // rosbridge has no greeting: the client subscribes and calls as it likes.
    if (rosbridge_sessions_++ == 0) feed_->SetRosDemand(true);
    log::Debug(kComponent, "rosbridge client {} ({}) joined; {} connected", session->who().name,
               RoleName(session->role()), sessions_.size());
    return;
  }
  session->SendText(ServerInfoJson(options_.name, RoleName(session->role()),
                                   session->role() != Role::kViewer, fmt::format("{}", port_)));
  session->PullAdvertisements();
  log::Debug(kComponent, "client {} ({}) joined; {} connected", session->who().name,
             RoleName(session->role()), sessions_.size());
}

void Gateway::Impl::Left(WsSession* session) {
  replay_sessions_.erase(session);
  if (auto it = sessions_.find(session);
      it != sessions_.end() && session->protocol() == WsProtocol::kRosbridge) {
    for (auto& [topic, watchers] : ros_watchers_) watchers.erase(session);
    if (--rosbridge_sessions_ == 0) feed_->SetRosDemand(false);
  }
  for (auto& [id, c] : channels_) c.subscribers.erase(session);
  sessions_.erase(session);
  connections_ = sessions_.size();
}

void Gateway::Impl::Subscribe(WsSession* session, uint32_t subscription, uint32_t channel) {
  auto it = channels_.find(channel);
  if (it == channels_.end()) {
    session->SendText(StatusJson(2, fmt::format("Unknown channel {}", channel)));
    return;
  }
  it->second.subscribers[session] = subscription;
  for (const auto& [payload, stamp] : it->second.recent) {
    session->SendMessage(subscription, channel, stamp, payload);
  }
}

void Gateway::Impl::Unsubscribe(WsSession* session, uint32_t subscription) {
  for (auto& [id, c] : channels_) {
    auto it = c.subscribers.find(session);
    if (it != c.subscribers.end() && it->second == subscription) c.subscribers.erase(it);
  }
}

void Gateway::Impl::AddChannel(const std::string& topic) {
  Channel c;
  c.id = next_channel_++;
  c.topic = topic;
  ChannelSpec spec = SpecFor(topic);
  auto& shared = specs_[spec.schema_name];
  if (!shared || shared->schema != spec.schema) {
    shared = std::make_shared<const ChannelSpec>(std::move(spec));
  }
  c.spec = shared;
  const bool events = topic == "/fleet/alerts" || topic.ends_with("/events");
  c.keep = events ? 20 : 1;
  topics_[topic] = c.id;
  channels_.emplace(c.id, std::move(c));
  CatalogueChanged();
}

void Gateway::Impl::AddRobot(const std::string& robot) {
  if (known_robots_.count(robot) > 0) return;
  if (known_robots_.size() >= options_.max_robots) {
    // Robot names come from the network: without a cap, made-up names would grow the
    // catalogue (and every client's join) without bound.
    ++robots_refused_;
    robot_refused_warning_.Warn(
        "robot '{}' not served: the gateway already serves --max-robots {} robots "
        "(doppel_gateway_robots_refused_total counts the refused)",
        ScrubUtf8(robot.substr(0, 100)), options_.max_robots);
    return;
  }
  known_robots_.insert(robot);
  for (const auto& topic : RobotTopics(robot)) AddChannel(topic);
  robots_ = known_robots_.size();
}

std::shared_ptr<const std::string> Gateway::Impl::AdvertisePage(uint32_t from, uint32_t& next) {
  if (auto cached = pages_.find(from); cached != pages_.end()) {
    next = cached->second.next;
    return cached->second.text;
  }
  std::vector<std::string> texts;
  size_t bytes = 0;
  auto it = channels_.lower_bound(from);
  for (; it != channels_.end() && texts.size() < kAdvertisePageChannels &&
         (texts.empty() || bytes < kAdvertisePageBytes);
       ++it) {
    const Channel& c = it->second;
    texts.push_back(ChannelJson(c.id, c.topic, *c.spec));
    bytes += texts.back().size();
  }
  next = it == channels_.end() ? next_channel_ : it->first;
  if (texts.empty()) return nullptr;
  std::vector<std::string_view> views(texts.begin(), texts.end());
  auto text = std::make_shared<const std::string>(AdvertiseJson(views, bytes));
  if (pages_.size() >= kMaxCachedPages) pages_.clear();
  pages_[from] = {text, next};
  return text;
}

void Gateway::Impl::OnBatch(FeedBatch batch) {
  const uint32_t end_before = next_channel_;
  for (const auto& robot : batch.new_robots) AddRobot(robot);
  if (next_channel_ != end_before) {
    // Each session takes the new channels as pages, at its own pace.
    for (auto& [ptr, session] : sessions_) session->PullAdvertisements();
  }
  if (!batch.gone_robots.empty()) {
    std::vector<uint32_t> ids;
    for (const auto& robot : batch.gone_robots) {
      if (known_robots_.erase(robot) == 0) continue;
      for (const auto& topic : RobotTopics(robot)) {
        auto t = topics_.find(topic);
        if (t == topics_.end()) continue;
        ids.push_back(t->second);
        channels_.erase(t->second);
        topics_.erase(t);
      }
    }
    robots_ = known_robots_.size();
    for (const auto& robot : batch.gone_robots) {
      for (auto& [topic, slots] : ros_latest_) slots.erase(robot);
    }
    if (!ids.empty()) {
      CatalogueChanged();
      for (auto& [ptr, session] : sessions_) session->Unadvertise(ids);
    }
  }
  for (const auto& m : batch.ros_messages) {
    // Only robots the gateway serves: their names bound how many slots there are.
    if (known_robots_.count(m.slot) == 0) continue;
    ros_latest_[m.topic][m.slot] = m.publish;
    if (auto w = ros_watchers_.find(m.topic); w != ros_watchers_.end()) {
      for (WsSession* session : w->second) session->SendRos(m.topic, m.slot, m.publish);
    }
  }
  for (const auto& m : batch.messages) {
    auto t = topics_.find(m.topic);
    if (t == topics_.end()) continue;
    Channel& c = channels_.at(t->second);
    for (const auto& [session, subscription] : c.subscribers) {
      session->SendMessage(subscription, c.id, m.stamp, m.payload);
    }
    c.recent.emplace_back(m.payload, m.stamp);
    if (c.recent.size() > c.keep) c.recent.pop_front();
  }
  if (batch.clock != 0) {
    for (auto& [ptr, session] : sessions_) session->SendTime(batch.clock);
  }
}

void Gateway::Impl::Command(const std::shared_ptr<WsSession>& session, const std::string& robot,
                            eventstore::NewEvent event, std::string request_id) {
  if (!store_) {
    session->CommandRecorded(
        robot, request_id,
        Status::Unavailable("This gateway has no store: commands are not accepted"));
    return;
  }
  ++commands_;
  std::weak_ptr<WsSession> weak = session;
  store_->AppendAsync(
      {"robot-" + robot, eventstore::ExpectedVersion::Any(), {std::move(event)}},
      [this, weak, robot, request_id = std::move(request_id)](Result<eventstore::AppendResult> r) {
        if (!r.ok()) log::Warn(kComponent, "command for {}: {}", robot, r.status().message());
        Result<uint64_t> position = r.ok() ? Result<uint64_t>(r->first_position) : r.status();
        net::post(io_, [weak, robot, request_id, position = std::move(position)] {
          if (auto s = weak.lock()) s->CommandRecorded(robot, request_id, position);
        });
      });
}

void Gateway::Impl::RosWatch(WsSession* session, const std::string& topic, bool watch) {
  if (!watch) {
    if (auto w = ros_watchers_.find(topic); w != ros_watchers_.end()) {
      w->second.erase(session);
      if (w->second.empty()) ros_watchers_.erase(w);
    }
    return;
  }
  ros_watchers_[topic].insert(session);
  // Latched, as Foxglove channels are: the newest of each robot at once.
  if (auto latest = ros_latest_.find(topic); latest != ros_latest_.end()) {
    for (const auto& [slot, payload] : latest->second) session->SendRos(topic, slot, payload);
  }
}

void Gateway::Impl::QueryStore(StateQueries::Work work,
                               std::function<void(Result<nlohmann::json>)> done) {
  if (!state_queries_) {
    done(Status::Unavailable("this gateway has no store"));
    return;
  }
  state_queries_->Submit(std::move(work), [this, done = std::move(done)](Result<nlohmann::json> r) {
    net::post(io_, [done, r = std::move(r)] { done(r); });
  });
}

void Gateway::Impl::CallService(const std::shared_ptr<WsSession>& session, const std::string& id,
                                const std::string& service, const nlohmann::json& args) {
  if (service == RosbridgeSession::kListRobots) {
    session->ServiceDone(id, service, nlohmann::json{{"robots", known_robots_}});
    return;
  }
  // kRobotState: args.robot is a string (the session checked).
  const std::string robot = args.at("robot").get<std::string>();
  TimeNs at = eventstore::kTimeMax;
  if (args.contains("at") && args["at"].is_string() && !args["at"].get<std::string>().empty()) {
    auto t = ParseTime(args["at"].get<std::string>());
    if (!t.ok()) {
      session->ServiceDone(id, service, t.status());
      return;
    }
    at = *t;
  }
  if (!state_queries_) {
    session->ServiceDone(id, service,
                         Status::Unavailable("This gateway has no store: no robot_state"));
    return;
  }
  std::weak_ptr<WsSession> weak = session;
  state_queries_->Query(robot, at, [this, weak, id, service](Result<nlohmann::json> r) {
    net::post(io_, [weak, id, service, r = std::move(r)] {
      if (auto s = weak.lock()) s->ServiceDone(id, service, r);
    });
  });
}

std::string Gateway::Impl::Metrics() const {
  const Counters c = counters();
  const double lag = max_lag_ns_.exchange(0) / 1e9;
  MetricsPage page;
  page.Gauge("doppel_gateway_connections", "WebSocket clients connected now", c.connections);
  page.Counter("doppel_gateway_connections_accepted_total", "WebSocket clients accepted",
               c.accepted);
  page.Counter("doppel_gateway_connections_refused_total",
               "WebSocket clients refused (bad or missing token)", c.refused);
  page.Counter("doppel_gateway_messages_sent_total", "WebSocket messages sent", c.messages_sent);
  page.Counter("doppel_gateway_messages_dropped_total",
               "Messages replaced by a newer value for a slow client", c.messages_dropped);
  page.Counter("doppel_gateway_bytes_sent_total", "WebSocket bytes sent", c.bytes_sent);
  page.Counter("doppel_gateway_commands_total", "Operator commands received", c.commands);
  page.Gauge("doppel_gateway_robots", "Robots with advertised channels", c.robots);
  page.Counter("doppel_gateway_robots_refused_total",
               "Robots not served because --max-robots were already served", c.robots_refused);
  page.Gauge("doppel_gateway_tcp_connections", "TCP connections open now (HTTP and WebSocket)",
             c.tcp_open);
  page.Counter("doppel_gateway_tcp_refused_total",
               "TCP connections closed at once: --max-connections were open", c.tcp_refused_total);
  page.Counter("doppel_gateway_tcp_refused_per_address_total",
               "TCP connections closed at once: their address had --max-connections-per-address "
               "open",
               c.tcp_refused_per_address);
  page.Counter("doppel_gateway_tcp_accept_errors_total",
               "accept(2) failures, such as running out of file descriptors", c.tcp_accept_errors);
  page.Gauge("doppel_gateway_lag_seconds",
             "Largest delay from twin publish to send since the last scrape", lag);
  page.Gauge("doppel_gateway_replay_sessions", "Replay sessions open now",
             static_cast<double>(replay_slots_.open()));
  page.Counter("doppel_gateway_replay_sessions_refused_total",
               "Replay sessions refused: --max-replay-sessions or --max-replay-sessions-per-token "
               "were open",
               static_cast<double>(replay_slots_.refused()));
  const ReplayWorker::Counters r = replay_worker_->counters();
  page.Counter("doppel_gateway_replay_seeks_total", "Replay seeks run (each folds the fleet)",
               r.seeks_run);
  page.Counter("doppel_gateway_replay_seeks_coalesced_total",
               "Replay seeks replaced by a later seek of the same session before they started",
               r.seeks_coalesced);
  page.Counter("doppel_gateway_replay_jobs_dropped_total",
               "Replay jobs not run because their session had closed", r.jobs_dropped);
  page.Counter("doppel_gateway_replay_requests_refused_total",
               "Replay requests refused: too many pending for their session", r.requests_refused);
  if (options_.extra_metrics) page.Append(options_.extra_metrics());
  return page.text();
}

Result<std::unique_ptr<Gateway>> Gateway::Start(GatewayOptions options) {
  auto impl = std::make_unique<Impl>(std::move(options));
  if (Status s = impl->Start(); !s.ok()) return s;
  return std::unique_ptr<Gateway>(new Gateway(std::move(impl)));
}

Gateway::Gateway(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Gateway::~Gateway() = default;
uint16_t Gateway::port() const { return impl_->port(); }
Gateway::Counters Gateway::counters() const { return impl_->counters(); }

}  // namespace doppel::gateway
