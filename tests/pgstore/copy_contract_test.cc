// The contract of a copy's destination (copied_batch.h), the same on every store that takes
// copies: events land verbatim (id, stream, version, times, causation, payload) in the batch's
// order at positions of the store's own; the checkpoint and the position map move in the same
// write; a resent page is answered as written; a stale checkpoint, a version that does not follow,
// or an id stored as another event refuse the whole batch and write nothing; events already there
// are not written again.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "contract_stores.h"
#include "doppel/eventstore/append_rules.h"
#include "test_support.h"

namespace doppel::eventstore {
namespace {

using testing::JointStateEvent;

// An event as a source store would have recorded it.
RecordedEvent SourceEvent(const std::string& stream, StreamVersion version, GlobalPosition position,
                          TimeNs recorded_ns, double value, EventId id = EventId::Random()) {
  NewEvent e = JointStateEvent(value, id);
  e.occurred_ns = recorded_ns - 1000;
  e.payload_schema_version = 2;
  e.causation_id = EventId(7, position);
  e.correlation_id = EventId(9, version);
  return testing::RecordedAt(stream, version, position, recorded_ns, e);
}

template <typename T>
class CopyContractTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Status opened = holder_.Open(clock_);
    ASSERT_TRUE(opened.ok()) << T::kName << ": " << opened.ToString();
    if constexpr (T::kNoCopies != nullptr) {
      CopiedBatch batch{"c", 0, {}, 1};
      EXPECT_EQ(store().AppendCopied(batch).status().code(), Status::Code::kUnavailable);
      GTEST_SKIP() << T::kNoCopies;
    }
  }
  EventStore& store() { return holder_.store(); }

  // Source positions 10.. : robot-a from version 0, robot-b from version 5 (its beginning
  // scavenged in the source), times that go back and forth as another store's clocks may.
  std::vector<RecordedEvent> Source() {
    return {SourceEvent("robot-a", 0, 10, 3'000, 1), SourceEvent("robot-b", 5, 11, 1'000, 2),
            SourceEvent("robot-a", 1, 13, 2'000, 3), SourceEvent("robot-b", 6, 14, 4'000, 4)};
  }
  std::vector<RecordedEvent> All() {
    auto page = store().ReadAll(0, 1000);
    EXPECT_TRUE(page.ok()) << page.status().ToString();
    return page.ok() ? std::move(page->events) : std::vector<RecordedEvent>{};
  }

  TestClock clock_;
  T holder_;
};

TYPED_TEST_SUITE(CopyContractTest, Stores, StoreNames);

TYPED_TEST(CopyContractTest, CopiedEventsKeepEverythingButTheirPositions) {
  auto& s = this->store();
  const std::vector<RecordedEvent> source = this->Source();
  auto copied = s.AppendCopied(CopiedBatch{"fleet", 0, source, 15});
  ASSERT_TRUE(copied.ok()) << copied.status().ToString();
  EXPECT_EQ(copied->written, 4u);
  EXPECT_EQ(copied->present, 0u);
  EXPECT_EQ(copied->checkpoint.source_next, 15u);
  EXPECT_EQ(copied->checkpoint.events, 4u);

  const std::vector<RecordedEvent> all = this->All();
  ASSERT_EQ(all.size(), source.size());
  for (size_t i = 0; i < all.size(); ++i) {
    SCOPED_TRACE(fmt::format("event {}", i));
    if (i > 0) {
      EXPECT_GT(all[i].position(), all[i - 1].position());
    }
    EXPECT_EQ(all[i].id(), source[i].id());
    EXPECT_EQ(all[i].stream(), source[i].stream());
    EXPECT_EQ(all[i].version(), source[i].version());
    EXPECT_EQ(all[i].recorded_ns(), source[i].recorded_ns());
    EXPECT_EQ(all[i].occurred_ns(), source[i].occurred_ns());
    EXPECT_EQ(all[i].type(), source[i].type());
    EXPECT_EQ(all[i].payload(), source[i].payload());
    EXPECT_EQ(all[i].envelope().payload_schema_version(), 2);
    EXPECT_EQ(schemas::FromFb(all[i].envelope().causation_id()),
              schemas::FromFb(source[i].envelope().causation_id()));
    EXPECT_EQ(schemas::FromFb(all[i].envelope().correlation_id()),
              schemas::FromFb(source[i].envelope().correlation_id()));
    auto mapped = s.CopiedPosition("fleet", source[i].position());
    ASSERT_TRUE(mapped.ok()) << mapped.status().ToString();
    EXPECT_EQ(*mapped, all[i].position());
  }
  // A source position with no event maps to the next copied one; past the end, to nothing.
  auto gap = s.CopiedPosition("fleet", 12);
  ASSERT_TRUE(gap.ok());
  EXPECT_EQ(*gap, all[2].position());
  EXPECT_EQ(s.CopiedPosition("fleet", 15).status().code(), Status::Code::kNotFound);
  EXPECT_EQ(s.CopiedPosition("other", 0).status().code(), Status::Code::kNotFound);

  auto head = s.StreamHead("robot-b");
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(*head, 6u);
  auto checkpoint = s.LoadCopyCheckpoint("fleet");
  ASSERT_TRUE(checkpoint.ok());
  EXPECT_EQ(checkpoint->source_next, 15u);
  EXPECT_EQ(checkpoint->events, 4u);
  auto fresh = s.LoadCopyCheckpoint("never-ran");
  ASSERT_TRUE(fresh.ok());
  EXPECT_EQ(fresh->source_next, 0u);

  // Writers carry on where the copy left each stream, at a time not before the copy's latest.
  auto appended =
      s.Append(AppendRequest{"robot-b", ExpectedVersion::Exact(6), {JointStateEvent(5)}});
  ASSERT_TRUE(appended.ok()) << appended.status().ToString();
  EXPECT_EQ(appended->first_version, 7u);
  EXPECT_GT(appended->first_position, all.back().position());
}

TYPED_TEST(CopyContractTest, AResumedCopyWritesNothingTwiceAndAStaleOneIsRefused) {
  auto& s = this->store();
  std::vector<RecordedEvent> source = this->Source();
  std::vector<RecordedEvent> first(source.begin(), source.begin() + 2);
  std::vector<RecordedEvent> rest(source.begin() + 2, source.end());
  ASSERT_TRUE(s.AppendCopied(CopiedBatch{"fleet", 0, first, 12}).ok());
  // The same page again (a copier whose answer was lost): answered as written, nothing twice.
  auto resent = s.AppendCopied(CopiedBatch{"fleet", 0, first, 12});
  ASSERT_TRUE(resent.ok()) << resent.status().ToString();
  EXPECT_EQ(resent->written, 0u);
  EXPECT_EQ(resent->present, 2u);
  EXPECT_EQ(resent->checkpoint.source_next, 12u);
  // Another page from where the copy no longer stands is refused: another copier is running.
  auto stale = s.AppendCopied(CopiedBatch{"fleet", 0, {first[0]}, 11});
  EXPECT_EQ(stale.status().code(), Status::Code::kWrongExpectedVersion)
      << stale.status().ToString();
  auto next = s.AppendCopied(CopiedBatch{"fleet", 12, rest, 15});
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  EXPECT_EQ(next->checkpoint.events, 4u);
  // A second copy of the same source under another name finds every event there.
  auto again = s.AppendCopied(CopiedBatch{"second", 0, source, 15});
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->written, 0u);
  EXPECT_EQ(again->present, 4u);
  const std::vector<RecordedEvent> all = this->All();
  EXPECT_EQ(all.size(), 4u);
  for (size_t i = 0; i < all.size(); ++i) {
    auto mapped = s.CopiedPosition("second", source[i].position());
    ASSERT_TRUE(mapped.ok());
    EXPECT_EQ(*mapped, all[i].position());
  }
  // A page with no events (positions the source has none at) moves the checkpoint only.
  auto empty = s.AppendCopied(CopiedBatch{"fleet", 15, {}, 40});
  ASSERT_TRUE(empty.ok()) << empty.status().ToString();
  EXPECT_EQ(empty->written, 0u);
  EXPECT_EQ(s.LoadCopyCheckpoint("fleet")->source_next, 40u);
  EXPECT_EQ(this->All().size(), 4u);
}

TYPED_TEST(CopyContractTest, ABatchThatDoesNotFitWritesNothing) {
  auto& s = this->store();
  ASSERT_TRUE(
      s.Append(AppendRequest{"robot-a", ExpectedVersion::Any(), {JointStateEvent(0)}}).ok());
  const size_t before = this->All().size();
  // robot-a is at version 0 here: a copied version 0 of another event does not follow it.
  auto clash = s.AppendCopied(CopiedBatch{"fleet", 0, this->Source(), 15});
  EXPECT_EQ(clash.status().code(), Status::Code::kWrongExpectedVersion)
      << clash.status().ToString();
  // An id stored here as another event.
  auto other = s.Append(AppendRequest{"robot-z", ExpectedVersion::Any(), {JointStateEvent(8)}});
  ASSERT_TRUE(other.ok());
  const RecordedEvent reused = SourceEvent("robot-q", 1, 3, 100, 1, other->ids[0]);
  auto conflict =
      s.AppendCopied(CopiedBatch{"fleet", 0, {SourceEvent("robot-q", 0, 1, 100, 1), reused}, 4});
  EXPECT_EQ(conflict.status().code(), Status::Code::kIdempotencyConflict)
      << conflict.status().ToString();
  // Bad batches: out of order, outside their range, no name.
  std::vector<RecordedEvent> source = this->Source();
  EXPECT_EQ(s.AppendCopied(CopiedBatch{"fleet", 0, {source[1], source[0]}, 15}).status().code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(s.AppendCopied(CopiedBatch{"fleet", 0, source, 12}).status().code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(s.AppendCopied(CopiedBatch{"", 0, source, 15}).status().code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(this->All().size(), before + 1);
  EXPECT_EQ(s.LoadCopyCheckpoint("fleet")->source_next, 0u);
  EXPECT_EQ(s.StreamHead("robot-q").status().code(), Status::Code::kNotFound);
}

}  // namespace
}  // namespace doppel::eventstore
