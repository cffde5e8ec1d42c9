// The store server with real processes and real sockets: `doppel store` runs as a child
// process on loopback; clients and subscribers are StoreClient, Subscription, or further
// `doppel subscribe` processes.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "doppel/eventstore/store_client.h"
#include "doppel/eventstore/subscription.h"
#include "doppel/schemas/store_protocol_generated.h"
#include "test_support.h"

namespace doppel::eventstore {
namespace {

using testing::JointStateEvent;
using testing::StartStore;
using testing::TempDir;

std::unique_ptr<StoreClient> ConnectTo(
    const std::string& endpoint, std::chrono::milliseconds deadline = std::chrono::seconds(30)) {
  StoreClientOptions options;
  options.endpoint = endpoint;
  options.attempt_timeout = std::chrono::milliseconds(500);
  options.deadline = deadline;
  auto client = StoreClient::Connect(options);
  EXPECT_TRUE(client.ok()) << client.status().ToString();
  return std::move(client).value();
}

std::unique_ptr<Subscription> Subscribe(const testing::StoreProcess& store,
                                        std::optional<GlobalPosition> from, int hwm = 100000,
                                        std::string prefix = "") {
  SubscriptionOptions options;
  options.store = store.listen;
  options.publish = store.publish;
  options.from = from;
  options.receive_hwm = hwm;
  options.stream_prefix = std::move(prefix);
  auto sub = Subscription::Start(options);
  EXPECT_TRUE(sub.ok()) << sub.status().ToString();
  return std::move(sub).value();
}

// Takes `count` events from `sub` (or fails after `timeout_s`), checking order on the way.
std::vector<RecordedEvent> Take(Subscription& sub, size_t count, int timeout_s = 60) {
  std::vector<RecordedEvent> events;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  while (events.size() < count && std::chrono::steady_clock::now() < deadline) {
    auto next = sub.Next(std::chrono::milliseconds(100));
    if (!next.ok() || !next->has_value()) continue;
    if (!events.empty()) {
      EXPECT_GT((*next)->position(), events.back().position());
    }
    events.push_back(std::move(**next));
  }
  return events;
}

void ExpectExactSequence(const std::vector<RecordedEvent>& events, GlobalPosition first,
                         size_t count) {
  ASSERT_EQ(events.size(), count);
  for (size_t i = 0; i < count; ++i) ASSERT_EQ(events[i].position(), first + i) << "at " << i;
}

TEST(StoreServerTest, ClientAppendsReadsAndGetsTheSameErrorsAsEmbedded) {
  TempDir dir;
  auto store = StartStore(dir.Sub("log"));
  auto client = ConnectTo(store.listen);
  auto a = client->Append(
      {"robot-1", ExpectedVersion::NoStream(), {JointStateEvent(1), JointStateEvent(2)}});
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->first_position, 0u);
  EXPECT_EQ(a->last_version, 1u);
  auto stale = client->Append({"robot-1", ExpectedVersion::Exact(0), {JointStateEvent(3)}});
  EXPECT_EQ(stale.status().code(), Status::Code::kWrongExpectedVersion);
  AppendRequest garbage{"robot-1", ExpectedVersion::Any(), {JointStateEvent(4)}};
  garbage.events[0].payload = "definitely not a flatbuffer";
  EXPECT_EQ(client->Append(garbage).status().code(), Status::Code::kInvalidArgument);

  auto page = client->ReadStream("robot-1", 0, Direction::kForward, 10);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->events.size(), 2u);
  EXPECT_EQ(page->events[1].payload(), JointStateEvent(2).payload);
  EXPECT_EQ(*client->StreamHead("robot-1"), 1u);
  EXPECT_EQ(client->StreamHead("robot-404").status().code(), Status::Code::kNotFound);
  ASSERT_TRUE(client->Append({"robot-2", ExpectedVersion::Any(), {JointStateEvent(5)}}).ok());
  auto listed = client->ListStreams("robot-", "robot-1", 10);
  ASSERT_TRUE(listed.ok()) << listed.status().ToString();
  EXPECT_EQ(listed->streams, std::vector<std::string>{"robot-2"});
  EXPECT_TRUE(listed->end);
  ASSERT_TRUE(client->SaveSnapshot({"robot-1", 1, 3, 0, "snap"}).ok());
  auto snap = client->LoadSnapshot("robot-1");
  ASSERT_TRUE(snap.ok());
  EXPECT_EQ(snap->state, "snap");
  // The history remotely: version 1 is robot-1's second event.
  auto second = client->ReadStream("robot-1", 1, Direction::kForward, 1);
  ASSERT_TRUE(second.ok() && second->events.size() == 1u);
  const TimeNs at = second->events[0].recorded_ns();
  EXPECT_EQ(client->LoadSnapshotAt("robot-1", at)->state, "snap");
  EXPECT_EQ(client->LoadSnapshotAt("robot-1", at - 1).status().code(), Status::Code::kNotFound);
  ASSERT_TRUE(client->SetStreamMetadata("robot-1", {0, 1, 0}).ok());
  EXPECT_EQ(client->GetStreamMetadata("robot-1")->max_count, 1u);
  EXPECT_EQ(client->ReadAll(0, 10)->events.size(), 2u);  // retention honoured remotely
  EXPECT_EQ(*client->NextPosition(), 3u);
  auto report = client->Verify();
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->ok());
}

TEST(StoreServerTest, SubscriberProcessesReceiveEveryEventOnceInOrder) {
  TempDir dir;
  auto store = StartStore(dir.Sub("log"));
  constexpr int kSubscribers = 3, kAppenders = 4, kPerAppender = 150;
  constexpr int kTotal = kAppenders * kPerAppender;
  std::vector<std::unique_ptr<testing::DoppelProcess>> subscribers;
  for (int i = 0; i < kSubscribers; ++i) {
    subscribers.push_back(std::make_unique<testing::DoppelProcess>(
        std::vector<std::string>{"subscribe", "--store", store.listen, "--publish", store.publish,
                                 "--from", "0", "--count", std::to_string(kTotal)}));
  }
  auto client = ConnectTo(store.listen);
  std::vector<std::thread> appenders;
  for (int a = 0; a < kAppenders; ++a) {
    appenders.emplace_back([&, a] {
      for (int i = 0; i < kPerAppender; ++i) {
        auto r = client->Append(
            {"robot-" + std::to_string(a), ExpectedVersion::Any(), {JointStateEvent(i)}});
        ASSERT_TRUE(r.ok()) << r.status().ToString();
      }
    });
  }
  for (auto& t : appenders) t.join();
  for (auto& sub : subscribers) {
    std::map<std::string, uint64_t> next_version;
    for (int i = 0; i < kTotal; ++i) {
      auto line = sub->ReadLine(30000);
      ASSERT_TRUE(line.has_value()) << "subscriber stopped after " << i << " events";
      auto event = nlohmann::json::parse(*line);
      ASSERT_EQ(event["position"].get<uint64_t>(), static_cast<uint64_t>(i));
      const std::string stream = event["stream"];
      ASSERT_EQ(event["version"].get<uint64_t>(), next_version[stream]++);
    }
    EXPECT_EQ(sub->Wait(), 0);
  }
}

TEST(StoreServerTest, LateSubscriberCatchesUpAndJoinsLiveWithoutGapOrDuplicate) {
  TempDir dir;
  auto store = StartStore(dir.Sub("log"));
  auto client = ConnectTo(store.listen);
  for (int i = 0; i < 600; ++i) {
    ASSERT_TRUE(
        client
            ->Append(
                {"robot-" + std::to_string(i % 5), ExpectedVersion::Any(), {JointStateEvent(i)}})
            .ok());
  }
  auto sub = Subscribe(store, 0);
  std::thread more([&] {
    for (int i = 0; i < 600; ++i) {
      ASSERT_TRUE(client->Append({"robot-9", ExpectedVersion::Any(), {JointStateEvent(i)}}).ok());
    }
  });
  auto events = Take(*sub, 1200);
  more.join();
  ExpectExactSequence(events, 0, 1200);
  EXPECT_GT(sub->stats().read, 0u);
  EXPECT_GT(sub->stats().live, 0u);
  EXPECT_EQ(sub->checkpoint(), 1200u);
}

TEST(StoreServerTest, FilteredSubscriptionSeesOnlyItsStreams) {
  TempDir dir;
  auto store = StartStore(dir.Sub("log"));
  auto client = ConnectTo(store.listen);
  auto sub = Subscribe(store, std::nullopt, 100000, "robot-1");
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(
        client->Append({i % 2 ? "robot-1" : "arm-1", ExpectedVersion::Any(), {JointStateEvent(i)}})
            .ok());
  }
  auto events = Take(*sub, 50);
  ASSERT_EQ(events.size(), 50u);
  for (const auto& e : events) EXPECT_EQ(e.stream(), "robot-1");
  auto extra = sub->Next(std::chrono::milliseconds(300));
  ASSERT_TRUE(extra.ok());
  EXPECT_FALSE(extra->has_value());
}

TEST(StoreServerTest, KilledSubscriberResumesExactlyFromItsCheckpoint) {
  TempDir dir;
  auto store = StartStore(dir.Sub("log"));
  auto client = ConnectTo(store.listen);
  for (int i = 0; i < 500; ++i) {
    ASSERT_TRUE(client->Append({"robot-1", ExpectedVersion::Any(), {JointStateEvent(i)}}).ok());
  }
  uint64_t checkpoint = 0;
  {
    testing::DoppelProcess first(
        {"subscribe", "--store", store.listen, "--publish", store.publish, "--from", "0"});
    for (int i = 0; i < 200; ++i) {
      auto line = first.ReadLine(20000);
      ASSERT_TRUE(line.has_value());
      checkpoint = nlohmann::json::parse(*line)["position"].get<uint64_t>() + 1;
    }
    first.Kill(SIGKILL);
    first.Wait();
  }
  ASSERT_EQ(checkpoint, 200u);
  testing::DoppelProcess second({"subscribe", "--store", store.listen, "--publish", store.publish,
                                 "--from", std::to_string(checkpoint), "--count", "300"});
  for (uint64_t expect = checkpoint; expect < 500; ++expect) {
    auto line = second.ReadLine(20000);
    ASSERT_TRUE(line.has_value());
    ASSERT_EQ(nlohmann::json::parse(*line)["position"].get<uint64_t>(), expect);
  }
  EXPECT_EQ(second.Wait(), 0);
}

TEST(StoreServerTest, SlowSubscriberPastTheHighWaterMarkEndsWithEveryEvent) {
  TempDir dir;
  auto store =
      StartStore(dir.Sub("log"), "tcp://127.0.0.1:0", "tcp://127.0.0.1:0", {"--publish-hwm", "50"});
  auto client = ConnectTo(store.listen);
  auto sub = Subscribe(store, std::nullopt, /*hwm=*/20);
  ASSERT_TRUE(sub->Next(std::chrono::milliseconds(200)).ok());  // connected, at "now"
  // Flood while the subscriber is not reading: PUB drops past its high-water mark.
  std::atomic<int> done{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < 8; ++w) {
    writers.emplace_back([&, w] {
      for (int i = 0; i < 100; ++i) {
        AppendRequest batch{"robot-" + std::to_string(w), ExpectedVersion::Any(), {}};
        for (int k = 0; k < 10; ++k) batch.events.push_back(JointStateEvent(i * 10 + k));
        ASSERT_TRUE(client->Append(batch).ok());
      }
      ++done;
    });
  }
  for (auto& t : writers) t.join();
  auto events = Take(*sub, 8000);
  ExpectExactSequence(events, 0, 8000);
  EXPECT_GT(sub->stats().gaps, 0u) << "the flood should have overrun the subscriber";
  EXPECT_GT(sub->stats().read, 0u);
}

TEST(StoreServerTest, StoreKilledAndRestartedLosesNoAcknowledgedEventAndSubscriptionsContinue) {
  TempDir dir;
  auto store = StartStore(dir.Sub("log"));
  const std::string listen = store.listen, publish = store.publish;
  auto client = ConnectTo(listen, std::chrono::seconds(60));
  auto sub = Subscribe(store, 0);
  std::mutex mu;
  std::vector<std::pair<EventId, GlobalPosition>> acked;
  std::atomic<bool> stop{false};
  std::vector<std::thread> writers;
  for (int w = 0; w < 4; ++w) {
    writers.emplace_back([&, w] {
      for (int i = 0; !stop; ++i) {
        NewEvent e = JointStateEvent(i);
        const EventId id = e.id;
        auto r = client->Append({"robot-" + std::to_string(w), ExpectedVersion::Any(), {e}});
        ASSERT_TRUE(r.ok()) << r.status().ToString();
        std::lock_guard lock(mu);
        acked.emplace_back(id, r->first_position);
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  store.process->Kill(SIGKILL);
  store.process->Wait();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto restarted = StartStore(dir.Sub("log"), listen, publish);
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  stop = true;
  for (auto& t : writers) t.join();

  // Every acknowledged event is in the log where the ack said, once.
  std::map<GlobalPosition, EventId> stored;
  for (GlobalPosition from = 0;;) {
    auto page = client->ReadAll(from, 4096);
    ASSERT_TRUE(page.ok()) << page.status().ToString();
    for (const auto& e : page->events) stored.emplace(e.position(), e.id());
    if (page->end) break;
    from = page->next;
  }
  ASSERT_GT(acked.size(), 0u);
  for (const auto& [id, position] : acked) {
    ASSERT_TRUE(stored.count(position)) << "acknowledged position " << position << " lost";
    ASSERT_EQ(stored[position], id);
  }
  // The subscription saw every stored event exactly once, in order, across the restart.
  auto events = Take(*sub, stored.size());
  ExpectExactSequence(events, 0, stored.size());
  EXPECT_TRUE(client->Verify()->ok());
}

// Sends raw frames on a DEALER and returns the reply frame, if any.
std::optional<std::string> RawRequest(zmq::socket_t& dealer, const std::string& bytes) {
  dealer.send(zmq::buffer(bytes));
  zmq::pollitem_t item = {dealer.handle(), 0, ZMQ_POLLIN, 0};
  zmq::poll(&item, 1, std::chrono::milliseconds(5000));
  zmq::message_t reply;
  if (!dealer.recv(reply, zmq::recv_flags::dontwait)) return std::nullopt;
  return reply.to_string();
}

void ExpectErrorReply(const std::optional<std::string>& reply, const std::string& words) {
  ASSERT_TRUE(reply.has_value()) << "no reply";
  flatbuffers::Verifier v(reinterpret_cast<const uint8_t*>(reply->data()), reply->size());
  ASSERT_TRUE(v.VerifyBuffer<fb::StoreResponse>(nullptr));
  const auto* response = flatbuffers::GetRoot<fb::StoreResponse>(reply->data());
  ASSERT_EQ(response->response_type(), fb::Response::ErrorResponse);
  EXPECT_NE(response->response_as_ErrorResponse()->message()->str().find(words), std::string::npos)
      << response->response_as_ErrorResponse()->message()->str();
}

TEST(StoreServerTest, GarbageFramesGetErrorRepliesAndTheServerKeepsServing) {
  TempDir dir;
  auto store = StartStore(dir.Sub("log"));
  zmq::socket_t dealer(SharedZmqContext(), zmq::socket_type::dealer);
  dealer.set(zmq::sockopt::linger, 0);
  dealer.connect(store.listen);

  ExpectErrorReply(RawRequest(dealer, "hello, store"), "malformed request");
  ExpectErrorReply(RawRequest(dealer, std::string(3, '\xff')), "malformed request");
  // A real request cut short.
  flatbuffers::FlatBufferBuilder fbb;
  auto stream = fbb.CreateString("robot-1");
  auto read = fb::CreateReadStreamRequest(fbb, stream, 0, false, 10);
  fbb.Finish(fb::CreateStoreRequest(fbb, 7, fb::Request::ReadStreamRequest, read.Union()));
  const std::string valid(reinterpret_cast<const char*>(fbb.GetBufferPointer()), fbb.GetSize());
  ExpectErrorReply(RawRequest(dealer, valid.substr(0, valid.size() / 2)), "malformed request");
  // Oversized.
  ExpectErrorReply(RawRequest(dealer, std::string(17 << 20, 'x')), "larger than");
  // A request type this server does not know (a newer client).
  flatbuffers::FlatBufferBuilder unknown;
  auto body = fb::CreateOkResponse(unknown);
  unknown.Finish(fb::CreateStoreRequest(unknown, 8, static_cast<fb::Request>(77), body.Union()));
  ExpectErrorReply(
      RawRequest(dealer, std::string(reinterpret_cast<const char*>(unknown.GetBufferPointer()),
                                     unknown.GetSize())),
      "unknown request type");
  // Two frames where one is expected.
  dealer.send(zmq::str_buffer("a"), zmq::send_flags::sndmore);
  ExpectErrorReply(RawRequest(dealer, "b"), "one request frame");
  // And it still serves.
  auto reply = RawRequest(dealer, valid);
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(flatbuffers::GetRoot<fb::StoreResponse>(reply->data())->response_type(),
            fb::Response::ReadResponse);
  auto client = ConnectTo(store.listen);
  EXPECT_TRUE(client->Append({"robot-1", ExpectedVersion::Any(), {JointStateEvent(1)}}).ok());
}

std::string Bytes(const flatbuffers::FlatBufferBuilder& fbb) {
  return std::string(reinterpret_cast<const char*>(fbb.GetBufferPointer()), fbb.GetSize());
}

// A request whose type tag names a table that is absent verifies (FlatBuffers allows it);
// the server once dereferenced the missing table. 32 bytes are enough.
TEST(StoreServerTest, RequestTypeWithoutItsTableIsRefusedAndTheServerKeepsServing) {
  TempDir dir;
  auto store = StartStore(dir.Sub("log"));
  zmq::socket_t dealer(SharedZmqContext(), zmq::socket_type::dealer);
  dealer.set(zmq::sockopt::linger, 0);
  dealer.connect(store.listen);
  for (auto type : {fb::Request::AppendRequest, fb::Request::ReadStreamRequest,
                    fb::Request::ReadAllRequest, fb::Request::PositionAtTimeRequest,
                    fb::Request::StreamHeadRequest, fb::Request::SaveSnapshotRequest,
                    fb::Request::LoadSnapshotRequest, fb::Request::SetStreamMetadataRequest,
                    fb::Request::GetStreamMetadataRequest, fb::Request::AppendCopiedRequest,
                    fb::Request::CopyCheckpointRequest, fb::Request::CopiedPositionRequest}) {
    flatbuffers::FlatBufferBuilder fbb;
    fb::StoreRequestBuilder b(fbb);
    b.add_request_id(9);
    b.add_request_type(type);
    fbb.Finish(b.Finish());
    ExpectErrorReply(RawRequest(dealer, Bytes(fbb)), "carries no request table");
  }
  auto client = ConnectTo(store.listen);
  EXPECT_TRUE(client->Append({"robot-1", ExpectedVersion::Any(), {JointStateEvent(1)}}).ok());
  EXPECT_TRUE(client->Verify()->ok());
}

// One event referenced many times from the events vector: the frame is about 11 MB, the
// decoded request would be terabytes. Refused before anything is copied.
TEST(StoreServerTest, AppendThatRepeatsOneEventOffsetIsRefusedBeforeDecoding) {
  TempDir dir;
  auto store = StartStore(dir.Sub("log"));
  zmq::socket_t dealer(SharedZmqContext(), zmq::socket_type::dealer);
  dealer.set(zmq::sockopt::linger, 0);
  dealer.connect(store.listen);
  auto repeated = [](size_t copies) {
    flatbuffers::FlatBufferBuilder fbb(12 << 20);
    const std::string payload(10 << 20, 'p');
    auto type = fbb.CreateString("Blob");
    auto bytes = fbb.CreateVector(reinterpret_cast<const uint8_t*>(payload.data()), payload.size());
    auto event = fb::CreateNewEventMsg(fbb, nullptr, type, bytes);
    std::vector<flatbuffers::Offset<fb::NewEventMsg>> events(copies, event);
    auto list = fbb.CreateVector(events);
    auto stream = fbb.CreateString("robot-1");
    auto append = fb::CreateAppendRequest(fbb, stream, fb::ExpectedKind::Any, 0, list);
    fbb.Finish(fb::CreateStoreRequest(fbb, 5, fb::Request::AppendRequest, append.Union()));
    return Bytes(fbb);
  };
  // More tables than any append may hold: the Verifier stops it.
  ExpectErrorReply(RawRequest(dealer, repeated(200000)), "do not verify");
  // Few enough tables to verify, but 640 GB decoded: the size bound stops it.
  ExpectErrorReply(RawRequest(dealer, repeated(60000)), "decodes to more than");
  auto client = ConnectTo(store.listen);
  auto head = client->ReadAll(0, 10);
  ASSERT_TRUE(head.ok());
  EXPECT_TRUE(head->events.empty()) << "nothing of the refused appends was written";
  EXPECT_TRUE(client->Append({"robot-1", ExpectedVersion::Any(), {JointStateEvent(1)}}).ok());
}

// A copied page (doppel copy into a running server) meets the same bounds as an append: one
// envelope referenced many times is refused before it is copied, an envelope that does not
// verify is refused naming it, and nothing of either is written.
TEST(StoreServerTest, CopiedPagesThatRepeatOrBreakEnvelopesAreRefusedBeforeAnythingIsWritten) {
  TempDir dir;
  auto store = StartStore(dir.Sub("log"));
  zmq::socket_t dealer(SharedZmqContext(), zmq::socket_type::dealer);
  dealer.set(zmq::sockopt::linger, 0);
  dealer.connect(store.listen);
  auto page = [](size_t copies, const std::string& envelope) {
    flatbuffers::FlatBufferBuilder fbb(envelope.size() + (copies << 3) + 1024);
    auto bytes =
        fbb.CreateVector(reinterpret_cast<const uint8_t*>(envelope.data()), envelope.size());
    auto event = fb::CreateEventBytes(fbb, bytes);
    std::vector<flatbuffers::Offset<fb::EventBytes>> events(copies, event);
    auto list = fbb.CreateVector(events);
    auto copier = fbb.CreateString("main");
    auto body = fb::CreateAppendCopiedRequest(fbb, copier, 0, 1'000'000, list);
    fbb.Finish(fb::CreateStoreRequest(fbb, 7, fb::Request::AppendCopiedRequest, body.Union()));
    return Bytes(fbb);
  };
  ExpectErrorReply(RawRequest(dealer, page(60000, std::string(10 << 20, 'e'))),
                   "decodes to more than");
  ExpectErrorReply(RawRequest(dealer, page(1, "not an envelope")), "copied event 0 of 1");
  auto client = ConnectTo(store.listen);
  auto head = client->ReadAll(0, 10);
  ASSERT_TRUE(head.ok());
  EXPECT_TRUE(head->events.empty()) << "nothing of the refused pages was written";
  EXPECT_EQ(client->LoadCopyCheckpoint("main")->source_next, 0u);
  EXPECT_TRUE(client->Append({"robot-1", ExpectedVersion::Any(), {JointStateEvent(1)}}).ok());
}

TEST(StoreServerTest, CurveRefusesClientsWithoutAnAllowedKey) {
  TempDir dir;
  ASSERT_EQ(testing::RunDoppel({"keygen", "--out", dir.Sub("server")}).exit_code, 0);
  ASSERT_EQ(testing::RunDoppel({"keygen", "--out", dir.Sub("alice")}).exit_code, 0);
  ASSERT_EQ(testing::RunDoppel({"keygen", "--out", dir.Sub("mallory")}).exit_code, 0);
  auto store =
      StartStore(dir.Sub("log"), "tcp://127.0.0.1:0", "tcp://127.0.0.1:0",
                 {"--curve-key", dir.Sub("server.key"), "--curve-allow", dir.Sub("alice.pub")});
  auto server_key = ReadCurveKeyFile(dir.Sub("server.pub"));
  ASSERT_TRUE(server_key.ok());
  auto connect = [&](const std::string& who, std::chrono::milliseconds deadline) {
    StoreClientOptions options;
    options.endpoint = store.listen;
    options.attempt_timeout = std::chrono::milliseconds(500);
    options.deadline = deadline;
    options.curve =
        CurveClientConfig{server_key->public_key, *ReadCurveKeyFile(dir.Sub(who + ".key"))};
    return std::move(StoreClient::Connect(options)).value();
  };
  auto alice = connect("alice", std::chrono::seconds(20));
  EXPECT_TRUE(alice->Append({"robot-1", ExpectedVersion::Any(), {JointStateEvent(1)}}).ok());
  auto mallory = connect("mallory", std::chrono::milliseconds(1500));
  auto denied = mallory->Append({"robot-1", ExpectedVersion::Any(), {JointStateEvent(2)}});
  EXPECT_EQ(denied.status().code(), Status::Code::kUnavailable);
  EXPECT_FALSE(mallory->ReadAll(0, 10).ok());
  // Nor can a client without CURVE at all.
  auto plain = ConnectTo(store.listen, std::chrono::milliseconds(1500));
  EXPECT_FALSE(plain->ReadAll(0, 10).ok());
  // The log holds only Alice's event.
  auto page = alice->ReadAll(0, 10);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->events.size(), 1u);
}

}  // namespace
}  // namespace doppel::eventstore
