// The command line over PostgreSQL: `doppel pg-store init`, then append, read and verify with
// --store postgres://..., with the same output and exit codes as over an embedded log.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "doppel/pgstore/pg_event_store.h"
#include "gateway_client.h"
#include "pg_server.h"
#include "test_support.h"

namespace doppel {
namespace {

using testing::RunDoppel;
using testing::SharedPgServer;

std::string NewDatabase(const std::string& name) {
  auto url = SharedPgServer().CreateDatabase(name);
  EXPECT_TRUE(url.ok()) << url.status().ToString();
  return url.ok() ? *url : std::string();
}

TEST(PgCliTest, InitThenAppendReadAndVerifyThroughAPostgresUrl) {
  const std::string url = NewDatabase("cli_roundtrip");
  auto init = RunDoppel({"pg-store", "init", "--url", url});
  ASSERT_EQ(init.exit_code, 0) << init.err;
  EXPECT_NE(init.out.find("tables are ready"), std::string::npos) << init.out;
  ASSERT_EQ(RunDoppel({"pg-store", "init", "--url", url}).exit_code, 0);  // again: fine

  auto appended =
      RunDoppel({"append", "--store", url, "--stream", "robot-7", "--type", "JointStateObserved",
                 "--expect", "none", "--json", R"({"names":["j1","j2"],"position":[0.5,1.5]})"});
  ASSERT_EQ(appended.exit_code, 0) << appended.err;
  auto line = nlohmann::json::parse(appended.out);
  EXPECT_EQ(line["stream"], "robot-7");
  EXPECT_EQ(line["version"], 0);
  EXPECT_EQ(line["position"], 1);  // PostgreSQL's positions start at 1

  auto read = RunDoppel({"read", "--store", url, "--format", "jsonl"});
  ASSERT_EQ(read.exit_code, 0) << read.err;
  auto event = nlohmann::json::parse(read.out);
  EXPECT_EQ(event["stream"], "robot-7");
  EXPECT_EQ(event["payload"]["position"][1], 1.5);
  EXPECT_EQ(event["id"], line["id"]);

  // The same exit codes as over an embedded log.
  auto conflict = RunDoppel({"append", "--store", url, "--stream", "robot-7", "--type",
                             "ModeChanged", "--expect", "5", "--json", R"({"mode":"Idle"})"});
  EXPECT_EQ(conflict.exit_code, 3) << conflict.err;
  EXPECT_NE(conflict.err.find("expected version 5"), std::string::npos) << conflict.err;
  auto reuse = RunDoppel({"append", "--store", url, "--stream", "robot-7", "--type", "ModeChanged",
                          "--id", line["id"].get<std::string>(), "--json", R"({"mode":"Idle"})"});
  EXPECT_EQ(reuse.exit_code, 4) << reuse.err;
  auto bad = RunDoppel({"append", "--store", url, "--stream", "robot-7", "--type",
                        "JointStateObserved", "--json", R"({"names":["a"],"position":"x"})"});
  EXPECT_NE(bad.exit_code, 0);

  auto subscribed = RunDoppel({"subscribe", "--store", url, "--from", "0", "--count", "1"});
  ASSERT_EQ(subscribed.exit_code, 0) << subscribed.err;
  EXPECT_EQ(nlohmann::json::parse(subscribed.out)["id"], line["id"]);

  auto verify = RunDoppel({"verify", "--store", url});
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
  EXPECT_NE(verify.out.find("verify OK: 1 events in 1 streams"), std::string::npos) << verify.out;
}

TEST(PgCliTest, VerifyFindsBadRowsAndHolesAndExitsFive) {
  const std::string url = NewDatabase("cli_verify");
  ASSERT_EQ(RunDoppel({"pg-store", "init", "--url", url}).exit_code, 0);
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(RunDoppel({"append", "--store", url, "--stream", "r", "--type", "ModeChanged",
                         "--json", R"({"mode":"Idle"})"})
                  .exit_code,
              0);
  }
  ASSERT_TRUE(SharedPgServer()
                  .Run("cli_verify",
                       "DELETE FROM events WHERE version = 1; UPDATE events SET payload = "
                       "'\\x00'::bytea WHERE version = 2")
                  .ok());
  auto verify = RunDoppel({"verify", "--store", url});
  EXPECT_EQ(verify.exit_code, 5) << verify.out << verify.err;
  EXPECT_NE(verify.out.find("stream r has 2 events with versions 0..2"), std::string::npos)
      << verify.out;
  EXPECT_NE(verify.out.find("events row at position 3 (r version 2)"), std::string::npos)
      << verify.out;
}

TEST(PgCliTest, BadUrlsAndForeignTablesGetClearErrors) {
  auto nowhere = RunDoppel({"read", "--store", "postgres:///x?host=/nonexistent-doppel-dir"});
  EXPECT_EQ(nowhere.exit_code, 1);
  EXPECT_NE(nowhere.err.find("cannot connect to PostgreSQL"), std::string::npos) << nowhere.err;

  const std::string url = NewDatabase("cli_foreign");
  ASSERT_TRUE(SharedPgServer()
                  .Run("cli_foreign", "CREATE TABLE events (id serial, stream text, data jsonb)")
                  .ok());
  auto init = RunDoppel({"pg-store", "init", "--url", url});
  EXPECT_EQ(init.exit_code, 1);
  EXPECT_NE(init.err.find("table events has no column position"), std::string::npos) << init.err;
  auto read = RunDoppel({"read", "--store", url});
  EXPECT_EQ(read.exit_code, 1);
  EXPECT_NE(read.err.find("no column position"), std::string::npos) << read.err;

  auto not_url = RunDoppel({"pg-store", "init", "--url", "/var/lib/doppel"});
  EXPECT_EQ(not_url.exit_code, 2) << not_url.err;
}

// A twin follows a PostgreSQL store as it follows a store server: it folds what is appended
// there (through a PgSubscription) and appends what it derives there, with causation.
TEST(PgCliTest, ATwinFollowsPostgresAndAppendsItsPredictionsThere) {
  const std::string url = NewDatabase("cli_twin");
  ASSERT_EQ(RunDoppel({"pg-store", "init", "--url", url}).exit_code, 0);
  testing::DoppelProcess twin({"twin", "--store", url, "--twin-publish", "tcp://127.0.0.1:0"});
  auto ready = twin.ReadLine(20'000);
  ASSERT_TRUE(ready.has_value()) << "the twin did not start";
  EXPECT_NE(ready->find("twin_publish"), std::string::npos) << *ready;

  auto store = pgstore::PgEventStore::Open(url);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  eventstore::NewEvent command = testing::EventFromJson(
      "CommandIssued",
      R"({"kind":"JointTargets","joint_names":["shoulder_lift_joint"],"joint_targets":[2.2],"issued_by":"test"})");
  const EventId command_id = EventId::Random();
  command.id = command_id;
  ASSERT_TRUE((*store)
                  ->Append({"robot-p1",
                            eventstore::ExpectedVersion::Any(),
                            {testing::EventFromJson("RobotRegistered",
                                                    R"({"robot_id":"p1","model":"doppel_arm6"})"),
                             command}})
                  .ok());
  std::vector<eventstore::RecordedEvent> derived;
  for (int i = 0; i < 300 && derived.size() < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    auto page = (*store)->ReadStream("robot-p1", 2, eventstore::Direction::kForward, 10);
    ASSERT_TRUE(page.ok()) << page.status().ToString();
    derived = page->events;
  }
  ASSERT_GE(derived.size(), 2u) << "the twin appended nothing within 15 s";
  EXPECT_EQ(derived[0].type(), "PredictionMade");
  EXPECT_EQ(derived[1].type(), "PredictionAlert");
  for (const auto& e : derived) {
    EXPECT_EQ(schemas::FromFb(e.envelope().causation_id()), command_id);
  }
  // A store server's flag makes no sense here.
  auto both = RunDoppel({"twin", "--store", url, "--publish", "tcp://127.0.0.1:1"});
  EXPECT_EQ(both.exit_code, 2) << both.err;
}

// The gateway over a PostgreSQL store: its store queries (the incidents list) read there.
TEST(PgCliTest, AGatewayListsIncidentsFromPostgres) {
  const std::string url = NewDatabase("cli_gateway");
  ASSERT_EQ(RunDoppel({"pg-store", "init", "--url", url}).exit_code, 0);
  auto store = pgstore::PgEventStore::Open(url);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  ASSERT_TRUE(
      (*store)
          ->Append({"robot-p2",
                    eventstore::ExpectedVersion::Any(),
                    {testing::EventFromJson("FaultRaised", R"({"code":"E9","severity":"Error"})")}})
          .ok());
  testing::DoppelProcess gateway({"gateway", "--store", url, "--port", "0", "--twin-publish",
                                  "tcp://127.0.0.1:1", "--web", ""});
  auto ready = gateway.ReadLine(20'000);
  ASSERT_TRUE(ready.has_value()) << "the gateway did not start";
  const auto port = nlohmann::json::parse(*ready)["port"].get<uint16_t>();
  const auto [status, body] = testing::gateway_client::HttpGet(port, "/api/incidents?from=-15m");
  EXPECT_EQ(status, 200) << body;
  EXPECT_NE(body.find("E9"), std::string::npos) << body;
  EXPECT_NE(body.find("p2"), std::string::npos) << body;
}

}  // namespace
}  // namespace doppel
