// doppel export, doppel import, doppel mcap-info: windows of history as MCAP files and
// robots' rosbag2 recordings into the store (archive/).
#include <fmt/format.h>

#include <iostream>
#include <nlohmann/json.hpp>

#include "command.h"
#include "doppel/archive/mcap_export.h"
#include "doppel/archive/mcap_import.h"
#include "doppel/core/json_text.h"
#include "doppel/core/log.h"
#include "doppel/mcap/doctor.h"
#include "doppel/mcap/reader.h"
#include "mcap_record_json.h"
#include "progress.h"
#include "store_access.h"

namespace doppel::tools {
namespace {

struct ExportFlags {
  StoreOptions store;
  std::string from, to = "now", robots = "*", out, compression = "zstd";
  std::vector<std::string> types;
  uint64_t chunk_size = 4 << 20;
  double twin_hz = 10;
  bool no_events_channel = false;
};

int RunExport(const ExportFlags& f) {
  auto window = replay::MakeWindow(f.from, f.to, f.robots, f.types);
  if (!window.ok()) return Fail(window.status());
  auto compression = mcap::ParseCompression(f.compression);
  if (!compression.ok()) return Fail(compression.status());
  if (!(f.twin_hz >= 0) || f.twin_hz > 1000) {
    return Fail(Status::InvalidArgument("--twin-hz must be in [0, 1000] (0: no twin channels)"));
  }
  if (f.chunk_size < 1024 || f.chunk_size > (1ull << 30)) {
    return Fail(Status::InvalidArgument("--chunk-size must be between 1 KiB and 1 GiB"));
  }
  auto store = OpenStore(f.store, Access::kReadOnly);
  if (!store.ok()) return Fail(store.status());
  archive::ExportOptions o;
  o.window = *window;
  o.out = f.out;
  o.compression = *compression;
  o.chunk_size = f.chunk_size;
  o.twin_period_ns = f.twin_hz == 0 ? 0 : static_cast<int64_t>(1e9 / f.twin_hz);
  o.events_channel = !f.no_events_channel;
  o.source = f.store.data_dir.empty() ? f.store.store : "data " + ResolveDataDir(f.store.data_dir);
  ProgressLine progress("export");
  o.progress = [&](uint64_t done, uint64_t total) { progress.Update(done, total); };
  const int64_t start = MonotonicNowNs();
  auto report = archive::ExportMcap(**store, o);
  progress.Finish();
  if (!report.ok()) return Fail(report.status());
  const double seconds = (MonotonicNowNs() - start) / 1e9;
  nlohmann::json j = {{"out", f.out},
                      {"events", report->events},
                      {"messages", report->messages},
                      {"latched", report->latched},
                      {"robots", report->robots},
                      {"incidents", report->incidents},
                      {"bytes", report->bytes},
                      {"first_position", report->first_position},
                      {"last_position", report->last_position},
                      {"seconds", seconds},
                      {"topics", report->topics}};
  std::cout << SafeJsonDump(j) << std::endl;
  return kExitOk;
}

struct ImportFlags {
  StoreOptions store;
  archive::ImportOptions options;
};

nlohmann::json ImportJson(const archive::ImportReport& r) {
  return {{"file_hash", r.file_hash},
          {"messages", r.messages},
          {"appended", r.appended},
          {"duplicates", r.duplicates},
          {"registered", r.registered},
          {"bad", r.bad},
          {"skipped_types", r.skipped_types},
          {"unmapped_topics", r.unmapped_topics},
          {"robots", r.robots}};
}

int RunImport(ImportFlags& f) {
  auto store = OpenStore(f.store, Access::kReadWrite);
  if (!store.ok()) return Fail(store.status());
  ProgressLine progress("import");
  f.options.progress = [&](uint64_t done, uint64_t total) { progress.Update(done, total); };
  archive::ImportReport partial;
  auto report = archive::ImportMcap(**store, f.options, &partial);
  progress.Finish();
  if (!report.ok()) {
    // What was appended before the damage stays (idempotent: a repaired file resumes).
    log::Warn("import", "stopped after {} messages: {} events appended, {} already present",
              partial.messages, partial.appended, partial.duplicates);
    return Fail(report.status());
  }
  std::cout << SafeJsonDump(ImportJson(*report)) << std::endl;
  return kExitOk;
}

struct InfoFlags {
  std::string file;
  bool doctor = false;
  bool strict = false;
  bool json = false;
  bool records = false;
};

// Every record the reader finds, in file order, one JSON object a line (chunks' records after
// their Chunk). Exit 1 at the first record that does not read, after the ones before it.
int PrintRecords(const std::string& file) {
  Status status = mcap::ScanFile(file, [](const mcap::RecordRef& ref) -> Status {
    auto record = RecordJson(ref);
    if (!record.ok()) return record.status();
    std::cout << SafeJsonDump(*record) << '\n';
    return Status::Ok();
  });
  std::cout.flush();
  return status.ok() ? kExitOk : Fail(status);
}

int RunInfo(const InfoFlags& f) {
  if (f.records) return PrintRecords(f.file);
  nlohmann::json j;
  j["file"] = f.file;
  auto summary = mcap::ReadSummary(f.file);
  if (summary.ok()) {
    j["profile"] = summary->header.profile;
    j["library"] = summary->header.library;
    if (summary->statistics) {
      const auto& s = *summary->statistics;
      j["messages"] = s.message_count;
      j["start_ns"] = s.message_start_time;
      j["end_ns"] = s.message_end_time;
      j["start"] = FormatTime(static_cast<TimeNs>(s.message_start_time));
      j["end"] = FormatTime(static_cast<TimeNs>(s.message_end_time));
      j["duration_s"] = (s.message_end_time - s.message_start_time) / 1e9;
      j["chunks"] = s.chunk_count;
      j["metadata"] = s.metadata_count;
      j["attachments"] = s.attachment_count;
    }
    std::map<std::string, uint32_t> compressions;
    for (const auto& c : summary->chunk_indexes) {
      ++compressions[c.compression.empty() ? "none" : c.compression];
    }
    j["compression"] = compressions;
    for (const auto& [id, c] : summary->channels) {
      nlohmann::json ch = {{"id", id}, {"topic", c.topic}, {"encoding", c.message_encoding}};
      if (auto s = summary->schemas.find(c.schema_id); s != summary->schemas.end()) {
        ch["schema"] = s->second.name;
        ch["schema_encoding"] = s->second.encoding;
      }
      if (summary->statistics) {
        auto n = summary->statistics->channel_message_counts.find(id);
        ch["messages"] = n == summary->statistics->channel_message_counts.end() ? 0 : n->second;
      }
      j["channels"].push_back(ch);
    }
  } else if (summary.status().code() == Status::Code::kNotFound) {
    j["indexed"] = false;
  } else if (!f.doctor) {
    return Fail(summary.status());
  }
  int code = kExitOk;
  if (f.doctor) {
    auto findings = mcap::Doctor(f.file, {.strict = f.strict});
    if (!findings.ok()) return Fail(findings.status());
    j["doctor"] = nlohmann::json::array();
    for (const auto& finding : *findings) {
      const bool error = finding.severity == mcap::Severity::kError;
      j["doctor"].push_back({{"offset", finding.offset},
                             {"severity", error ? "error" : "warning"},
                             {"problem", finding.what}});
    }
    // Warnings describe valid files: only errors fail the check.
    if (mcap::HasErrors(*findings)) code = kExitVerifyFailed;
  }
  if (f.json) {
    std::cout << SafeJsonDump(j) << std::endl;
  } else {
    std::cout << fmt::format("file:      {}\n", f.file);
    if (j.contains("profile")) {
      std::cout << fmt::format("profile:   {}  (library: {})\n", j["profile"].get<std::string>(),
                               j["library"].get<std::string>());
    }
    if (j.contains("messages")) {
      std::cout << fmt::format("messages:  {} in {} chunks, {} .. {} ({:.3f} s)\n",
                               j["messages"].get<uint64_t>(), j["chunks"].get<uint64_t>(),
                               j["start"].get<std::string>(), j["end"].get<std::string>(),
                               j["duration_s"].get<double>());
      std::cout << fmt::format("metadata:  {}   compression: {}\n", j["metadata"].get<uint64_t>(),
                               j["compression"].dump());
    }
    if (j.value("indexed", true) == false) std::cout << "summary:   none (unindexed file)\n";
    if (j.contains("channels")) {
      std::cout << "channels:\n";
      for (const auto& ch : j["channels"]) {
        std::cout << fmt::format("  {:>4}  {:<44} {:>9}  {} ({})\n", ch["id"].get<int>(),
                                 ch["topic"].get<std::string>(), ch.value("messages", 0),
                                 ch.value("schema", std::string("-")),
                                 ch["encoding"].get<std::string>());
      }
    }
    if (f.doctor) {
      if (j["doctor"].empty()) std::cout << "doctor:    no problems found\n";
      for (const auto& d : j["doctor"]) {
        std::cout << fmt::format("doctor:    {} at offset {}: {}\n",
                                 d["severity"].get<std::string>(), d["offset"].get<uint64_t>(),
                                 d["problem"].get<std::string>());
      }
    }
  }
  return code;
}

}  // namespace

void AddArchiveCommands(CLI::App& app) {
  auto export_flags = std::make_shared<ExportFlags>();
  auto* ex = app.add_subcommand(
      "export",
      "Export a window of history as an MCAP file (rosbag2's ros2 profile + doppel's channels)");
  AddStoreOptions(*ex, export_flags->store);
  ex->add_option("--from", export_flags->from,
                 "Window start: ISO 8601, ns since the epoch, or relative (-15m)")
      ->required();
  ex->add_option("--to", export_flags->to, "Window end (default: now)");
  ex->add_option("--robots", export_flags->robots, "Robot ids to export (glob)");
  ex->add_option("--types", export_flags->types, "Event types to export (default: all)")
      ->delimiter(',');
  ex->add_option("--out", export_flags->out,
                 "The .mcap file to write (a new path or a regular file, replaced when complete; a "
                 "link, device, FIFO or directory is refused)")
      ->required();
  ex->add_option("--compression", export_flags->compression, "zstd, lz4 or none");
  ex->add_option("--chunk-size", export_flags->chunk_size, "Uncompressed bytes per chunk");
  ex->add_option("--twin-hz", export_flags->twin_hz,
                 "Twin channels (/tf, /twin/.., TwinState) per robot at most this often (0: none)");
  ex->add_flag("--no-events-channel", export_flags->no_events_channel,
               "Leave out /doppel/events (the JSON of every event): ROS topics only");
  ex->callback([export_flags] { ExitCode() = RunExport(*export_flags); });

  auto import_flags = std::make_shared<ImportFlags>();
  auto* im = app.add_subcommand("import",
                                "Import a robot's rosbag2 MCAP recording as events (idempotent: a "
                                "second import appends nothing)");
  im->add_option("file", import_flags->options.file, "The .mcap file")->required();
  AddStoreOptions(*im, import_flags->store);
  im->add_option("--robots", import_flags->options.robots, "Robots to import (glob)");
  im->add_option("--robot-from-topic", import_flags->options.robot_from_topic,
                 "Regex (RE2 syntax, searched in the topic) whose first group names the robot "
                 "(default: /<robot>/<leaf>)");
  im->add_option("--robot", import_flags->options.robot,
                 "File every topic under this robot (a single robot's recording)");
  im->callback([import_flags] { ExitCode() = RunImport(*import_flags); });

  auto info_flags = std::make_shared<InfoFlags>();
  auto* info = app.add_subcommand("mcap-info", "Summarise an MCAP file; --doctor checks it");
  info->add_option("file", info_flags->file, "The .mcap file")->required();
  info->add_flag(
      "--doctor", info_flags->doctor,
      "Check CRCs, indexes, statistics and ordering as `mcap doctor` does (exit 5 on an error; "
      "warnings, for what valid files may do, do not fail)");
  info->add_flag("--strict", info_flags->strict,
                 "With --doctor: messages whose log times go back and MessageIndex records not "
                 "sorted by log time are errors, not warnings");
  info->add_flag("--json", info_flags->json, "One JSON object");
  info->add_flag("--records", info_flags->records,
                 "Print every record as read, one JSON object a line (JSON Lines), and nothing "
                 "else");
  info->callback([info_flags] { ExitCode() = RunInfo(*info_flags); });
}

}  // namespace doppel::tools
