#include "doppel/archive/mcap_import.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <fnmatch.h>
#include <re2/re2.h>
#include <sodium.h>
#include <sys/stat.h>

#include <cctype>
#include <cstdio>
#include <deque>
#include <future>
#include <memory>
#include <vector>

#include "doppel/core/log.h"
#include "doppel/mcap/reader.h"
#include "doppel/ros2/observations.h"
#include "doppel/schemas/payload_rules.h"

namespace doppel::archive {
namespace {

constexpr char kComponent[] = "import";

enum class Kind { kJointState, kOdometry, kTwist, kDiagnostics };

struct ChannelRoute {
  bool known = false;  // a type doppel imports, with a robot
  Kind kind = Kind::kJointState;
  std::string robot;
  std::string topic;
};

// The file's content hash: BLAKE2b-128 of every byte.
Result<std::string> HashFile(const std::string& path) {
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) return Status::IOError(fmt::format("opening {}: {}", path, std::strerror(errno)));
  crypto_generichash_state state;
  crypto_generichash_init(&state, nullptr, 0, 16);
  std::vector<unsigned char> buffer(1 << 20);
  size_t n;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), f.get())) > 0) {
    crypto_generichash_update(&state, buffer.data(), n);
  }
  if (std::ferror(f.get())) return Status::IOError(fmt::format("reading {}", path));
  unsigned char out[16];
  crypto_generichash_final(&state, out, sizeof(out));
  return std::string(reinterpret_cast<const char*>(out), sizeof(out));
}

// The fields of a ros2msg text's own section as "Type name", package prefixes dropped
// ("std_msgs/Header" and "std_msgs/msg/Header" are "Header"), comments, constants and default
// values left out.
std::vector<std::string> OwnFields(std::string_view text) {
  std::vector<std::string> fields;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    start = end + 1;
    if (line.starts_with("=====")) break;  // the dependencies begin
    if (const auto hash = line.find('#'); hash != std::string_view::npos)
      line = line.substr(0, hash);
    std::vector<std::string_view> words;
    for (size_t i = 0; i < line.size();) {
      while (i < line.size() && std::isspace(static_cast<unsigned char>(line[i]))) ++i;
      const size_t w = i;
      while (i < line.size() && !std::isspace(static_cast<unsigned char>(line[i]))) ++i;
      if (i > w) words.push_back(line.substr(w, i - w));
    }
    if (words.size() < 2 || words[1].find('=') != std::string_view::npos ||
        (words.size() > 2 && words[2].starts_with("="))) {
      continue;  // blank, or a constant
    }
    std::string_view type = words[0];
    if (const auto slash = type.rfind('/'); slash != std::string_view::npos)
      type = type.substr(slash + 1);
    fields.push_back(fmt::format("{} {}", type, words[1]));
  }
  return fields;
}

// What doppel decodes each imported type as: a schema that says otherwise is refused rather
// than misread.
const std::vector<std::string>* ExpectedFields(std::string_view type) {
  static const std::map<std::string_view, std::vector<std::string>> fields = {
      {"sensor_msgs/msg/JointState",
       {"Header header", "string[] name", "float64[] position", "float64[] velocity",
        "float64[] effort"}},
      {"nav_msgs/msg/Odometry",
       {"Header header", "string child_frame_id", "PoseWithCovariance pose",
        "TwistWithCovariance twist"}},
      {"geometry_msgs/msg/Twist", {"Vector3 linear", "Vector3 angular"}},
      {"diagnostic_msgs/msg/DiagnosticArray", {"Header header", "DiagnosticStatus[] status"}},
  };
  auto it = fields.find(type);
  return it == fields.end() ? nullptr : &it->second;
}

std::string Hex(std::string_view bytes) {
  std::string out;
  for (unsigned char c : bytes) out += fmt::format("{:02x}", c);
  return out;
}

class Importer {
 public:
  Importer(eventstore::EventStore& store, const ImportOptions& options)
      : store_(store), options_(options) {}

  Status Run() {
    if (sodium_init() < 0) return Status::Unavailable("libsodium failed to initialise");
    DOPPEL_RETURN_IF_ERROR(CompileRobotPattern());
    auto hash = HashFile(options_.file);
    if (!hash.ok()) return hash.status();
    file_hash_ = *hash;
    report_.file_hash = Hex(file_hash_);
    struct stat st {};
    const uint64_t size = ::stat(options_.file.c_str(), &st) == 0 ? st.st_size : 0;
    log::Info(kComponent, "importing {} ({} bytes, content {})", options_.file, size,
              report_.file_hash);
    uint64_t last_progress = 0;
    Status scanned = mcap::ScanFile(options_.file, [&](const mcap::RecordRef& r) -> Status {
      if (options_.progress && r.offset - last_progress >= (1 << 20)) {
        options_.progress(r.offset, size);
        last_progress = r.offset;
      }
      return Visit(r);
    });
    if (!scanned.ok()) {
      // The batch of the records just before the damage is dropped: whatever lies around a
      // bad record is not trusted (a wrong chunk length shows only in the record after it).
      pending_.clear();
      (void)Drain(0);
      return scanned;
    }
    DOPPEL_RETURN_IF_ERROR(Flush());
    DOPPEL_RETURN_IF_ERROR(Drain(0));
    if (options_.progress) options_.progress(size, size);
    return Status::Ok();
  }

  const ImportReport& report() const { return report_; }

 private:
  Status Visit(const mcap::RecordRef& r) {
    using mcap::Opcode;
    // A batch is one chunk's events of one stream (or one run of unchunked messages): fixed
    // by the file, so a repeated import repeats exactly the same batches.
    // A batch is one chunk's events of one stream (or of a run of unchunked messages):
    // fixed by the file, so a repeated import repeats exactly the same batches. It is
    // appended once the record after it reads well (its framing held); a scan that fails
    // first drops it.
    const uint64_t key = r.in_chunk                     ? r.offset
                         : r.opcode == Opcode::kMessage ? kUnchunked - report_.messages / 1024
                                                        : kStructural;
    if (key != batch_key_) {
      DOPPEL_RETURN_IF_ERROR(Flush());
      batch_key_ = key;
    }
    switch (r.opcode) {
      case Opcode::kSchema: {
        auto s = mcap::DecodeSchema(r.body);
        if (!s.ok()) return s.status();
        const auto* expected = ExpectedFields(s->name);
        if (expected && s->encoding == "ros2msg" && OwnFields(s->data) != *expected) {
          return Status::InvalidArgument(fmt::format(
              "schema {} '{}' at offset {}{}: its ros2msg text does not define the fields {} "
              "reads ({})",
              s->id, s->name, r.offset, r.in_chunk ? " (in a chunk)" : "", s->name,
              fmt::join(*expected, ", ")));
        }
        schemas_[s->id] = s->name;
        return Status::Ok();
      }
      case Opcode::kChannel: {
        auto c = mcap::DecodeChannel(r.body);
        if (!c.ok()) return c.status();
        routes_[c->id] = Route(*c);
        return Status::Ok();
      }
      case Opcode::kMessage: {
        auto m = mcap::DecodeMessageView(r.body);
        if (!m.ok()) return m.status();
        return Message(*m);
      }
      default:
        return Status::Ok();
    }
  }

  ChannelRoute Route(const mcap::Channel& c) {
    ChannelRoute route;
    route.topic = c.topic;
    auto schema = schemas_.find(c.schema_id);
    const std::string type = schema == schemas_.end() ? "(no schema)" : schema->second;
    const auto slash = c.topic.rfind('/');
    const std::string leaf = slash == std::string::npos ? c.topic : c.topic.substr(slash + 1);
    if (c.message_encoding != "cdr") {
      route.robot = type;  // counted under its schema
      return route;
    }
    if (type == "sensor_msgs/msg/JointState") {
      route.kind = Kind::kJointState;
    } else if (type == "nav_msgs/msg/Odometry") {
      route.kind = Kind::kOdometry;
    } else if (type == "geometry_msgs/msg/Twist" && leaf == "cmd_vel") {
      route.kind = Kind::kTwist;
    } else if (type == "diagnostic_msgs/msg/DiagnosticArray") {
      route.kind = Kind::kDiagnostics;
    } else {
      route.robot = type;
      return route;
    }
    route.known = true;
    route.robot = RobotOf(c.topic);
    return route;
  }

  std::string RobotOf(const std::string& topic) const {
    if (!options_.robot.empty()) return options_.robot;
    std::string robot;
    return RE2::PartialMatch(topic, *robot_pattern_, &robot) ? robot : "";
  }

  // The topic -> robot pattern: --robot-from-topic, else "/<robot>/<leaf>" (exactly two
  // segments). RE2, not std::regex: topics come from the file, and std::regex recurses once per
  // character (a 200,000-character topic overflowed the stack); RE2 runs in time linear in the
  // text and constant stack. Latin-1 keeps std::regex's byte-wise matching: a topic need not be
  // valid UTF-8, and `.` or `[^/]` should match any byte of it.
  Status CompileRobotPattern() {
    RE2::Options o;
    o.set_encoding(RE2::Options::EncodingLatin1);
    o.set_log_errors(false);  // the error goes back in the status, once
    const bool given = !options_.robot_from_topic.empty();
    robot_pattern_ =
        std::make_unique<RE2>(given ? options_.robot_from_topic : "^/?([^/]+)/[^/]+$", o);
    if (!robot_pattern_->ok()) {
      return Status::InvalidArgument(fmt::format("--robot-from-topic '{}' (RE2 syntax): {}",
                                                 options_.robot_from_topic,
                                                 robot_pattern_->error()));
    }
    if (robot_pattern_->NumberOfCapturingGroups() < 1) {
      return Status::InvalidArgument("--robot-from-topic needs a group naming the robot");
    }
    return Status::Ok();
  }

  Status Message(const mcap::MessageView& m) {
    const uint64_t ordinal = report_.messages++;
    auto it = routes_.find(m.channel_id);
    if (it == routes_.end()) {
      return Status::Corruption(
          fmt::format("message {} on channel {} which no Channel record "
                      "defines before it",
                      ordinal, m.channel_id));
    }
    const ChannelRoute& route = it->second;
    if (!route.known) {
      ++report_.skipped_types[route.robot];
      return Status::Ok();
    }
    if (route.robot.empty() || !eventstore::ValidateStreamName("robot-" + route.robot).ok()) {
      ++report_.unmapped_topics[route.topic];
      return Status::Ok();
    }
    if (options_.robots != "*" && fnmatch(options_.robots.c_str(), route.robot.c_str(), 0) != 0) {
      return Status::Ok();
    }
    const TimeNs fallback = static_cast<TimeNs>(m.publish_time ? m.publish_time : m.log_time);
    std::vector<eventstore::NewEvent> events;
    Status decoded = Convert(route, m.data, fallback, events);
    if (!decoded.ok()) {
      ++report_.bad;
      warning_.Warn("{} message {}: {}", route.topic, ordinal, decoded.message());
      return Status::Ok();
    }
    for (size_t k = 0; k < events.size(); ++k) {
      auto& e = events[k];
      if (Status rules = schemas::CheckPayloadValues(e.type, e.payload); !rules.ok()) {
        ++report_.bad;
        warning_.Warn("{} message {}: {}", route.topic, ordinal, rules.message());
        continue;
      }
      e.id = IdFor(route.topic, ordinal, k);
      DOPPEL_RETURN_IF_ERROR(Register(route.robot));
      pending_["robot-" + route.robot].push_back(std::move(e));
    }
    return Status::Ok();
  }

  Status Convert(const ChannelRoute& route, std::string_view data, TimeNs fallback,
                 std::vector<eventstore::NewEvent>& out) {
    auto stamp = [&](const ros2::Time& t) {
      const TimeNs ns = ros2::FromRosTime(t);
      return ns != 0 ? ns : fallback;
    };
    eventstore::NewEvent e;
    switch (route.kind) {
      case Kind::kJointState: {
        ros2::JointState js;
        DOPPEL_RETURN_IF_ERROR(ros2::Decode(data, js));
        e.type = "JointStateObserved";
        e.payload = ros2::JointStateObservedPayload(js);
        e.occurred_ns = stamp(js.header.stamp);
        break;
      }
      case Kind::kOdometry: {
        ros2::Odometry o;
        DOPPEL_RETURN_IF_ERROR(ros2::Decode(data, o));
        e.type = "PoseObserved";
        e.payload = ros2::PoseObservedPayload(o);
        e.occurred_ns = stamp(o.header.stamp);
        break;
      }
      case Kind::kTwist: {
        ros2::Twist t;
        DOPPEL_RETURN_IF_ERROR(ros2::Decode(data, t));
        e.type = "CommandIssued";
        e.payload = ros2::CommandIssuedPayload(t, "import");
        e.occurred_ns = fallback;
        break;
      }
      case Kind::kDiagnostics: {
        ros2::DiagnosticArray d;
        DOPPEL_RETURN_IF_ERROR(ros2::Decode(data, d));
        auto events = faults_[route.robot].Apply(d, stamp(d.header.stamp));
        if (!events.ok()) return events.status();
        out = std::move(events).value();
        return Status::Ok();
      }
    }
    out.push_back(std::move(e));
    return Status::Ok();
  }

  // BLAKE2b-128(file hash | topic | ordinal | k): the same message of the same file always
  // becomes the same event.
  EventId IdFor(std::string_view what, uint64_t ordinal, uint64_t k) {
    crypto_generichash_state state;
    crypto_generichash_init(&state, nullptr, 0, 16);
    crypto_generichash_update(&state, reinterpret_cast<const unsigned char*>(file_hash_.data()),
                              file_hash_.size());
    const uint64_t size = what.size();
    crypto_generichash_update(&state, reinterpret_cast<const unsigned char*>(&size), sizeof(size));
    crypto_generichash_update(&state, reinterpret_cast<const unsigned char*>(what.data()),
                              what.size());
    crypto_generichash_update(&state, reinterpret_cast<const unsigned char*>(&ordinal),
                              sizeof(ordinal));
    crypto_generichash_update(&state, reinterpret_cast<const unsigned char*>(&k), sizeof(k));
    unsigned char out[16];
    crypto_generichash_final(&state, out, sizeof(out));
    return EventId::FromBytes(std::string_view(reinterpret_cast<const char*>(out), sizeof(out)));
  }

  // A robot new to the store is registered on its own (not inside a batch of observations:
  // a resumed import then repeats exactly the batches of the first).
  Status Register(const std::string& robot) {
    if (!report_.robots.insert(robot).second) return Status::Ok();
    const std::string stream = "robot-" + robot;
    auto head = store_.StreamHead(stream);
    if (head.ok()) return Status::Ok();
    if (head.status().code() != Status::Code::kNotFound) return head.status();
    eventstore::NewEvent e;
    e.id = IdFor("register " + robot, 0, 0);
    e.type = "RobotRegistered";
    e.payload = ros2::RobotRegisteredPayload(robot, "");
    e.occurred_ns = WallNowNs();
    auto r = store_.Append({stream, eventstore::ExpectedVersion::NoStream(), {std::move(e)}});
    if (!r.ok() && r.status().code() != Status::Code::kWrongExpectedVersion) return r.status();
    if (r.ok() && !r->duplicate) ++report_.registered, ++report_.appended;
    return Status::Ok();
  }

  // Hands the current batch of every stream to the store without waiting: the store commits
  // appends in the order they arrive, so a stream's batches keep the file's order. At most
  // kInFlight batches are outstanding.
  Status Flush() {
    for (auto& [stream, events] : pending_) {
      if (events.empty()) continue;
      auto done = std::make_shared<std::promise<Outcome>>();
      inflight_.push_back(done->get_future());
      const size_t n = events.size();
      store_.AppendAsync({stream, eventstore::ExpectedVersion::Any(), std::move(events)},
                         [done, n](Result<eventstore::AppendResult> r) {
                           done->set_value(Outcome{n, std::move(r)});
                         });
    }
    pending_.clear();
    return Drain(kInFlight);
  }

  // Waits until at most `left` appends are outstanding; the first failure is returned.
  Status Drain(size_t left) {
    Status first = Status::Ok();
    while (inflight_.size() > left) {
      Outcome o = inflight_.front().get();
      inflight_.pop_front();
      if (!o.result.ok()) {
        if (first.ok()) first = o.result.status();
        continue;
      }
      (o.result->duplicate ? report_.duplicates : report_.appended) += o.events;
    }
    return first;
  }

  struct Outcome {
    size_t events = 0;
    Result<eventstore::AppendResult> result = Status::Unavailable("pending");
  };
  static constexpr size_t kInFlight = 64;
  std::deque<std::future<Outcome>> inflight_;

  static constexpr uint64_t kStructural = UINT64_MAX;
  static constexpr uint64_t kUnchunked = UINT64_MAX - 1;
  eventstore::EventStore& store_;
  const ImportOptions& options_;
  std::unique_ptr<RE2> robot_pattern_;  // set by Run()
  std::string file_hash_;
  std::map<uint16_t, std::string> schemas_;
  std::map<uint16_t, ChannelRoute> routes_;
  std::map<std::string, ros2::DiagnosticsFaults> faults_;             // by robot
  std::map<std::string, std::vector<eventstore::NewEvent>> pending_;  // by stream
  uint64_t batch_key_ = kStructural;
  log::RateLimitedWarning warning_{kComponent};
  ImportReport report_;
};

}  // namespace

Result<ImportReport> ImportMcap(eventstore::EventStore& store, const ImportOptions& options,
                                ImportReport* partial) {
  Importer importer(store, options);
  Status st = importer.Run();
  if (partial) *partial = importer.report();
  if (!st.ok()) return st;
  return importer.report();
}

}  // namespace doppel::archive
