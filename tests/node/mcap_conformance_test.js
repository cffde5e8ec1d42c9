// doppel's MCAP reader and `mcap-info --doctor` against the official MCAP conformance suite
// (tests/mcap/conformance: the JSON descriptions of foxglove/mcap's tests/conformance/data, see
// its README). The suite's .mcap files are Git LFS objects, so each one is written again here
// from its description with @mcap/core, the way the suite's generator lays them out. Then, for
// each of the 416 files:
//   (a) `doppel mcap-info --records` lists the records the description lists (which also shows
//       the file written here is the suite's: offsets, lengths and CRCs are in the description);
//   (b) `doppel mcap-info --doctor` passes exactly the files the official `mcap doctor` passes,
//       its verdict derived below from the official doctor's rules (expectedDoctorErrors);
//   and, with --strict, files whose log times go back fail (upstream's --strict-message-order).
"use strict";
const fs = require("node:fs");
const path = require("node:path");
const { McapRecordBuilder, McapChunkBuilder, Opcode } = require("@mcap/core");
// @mcap/core's own CRC-32: the conformance files' chunk, data and summary CRCs.
const { crc32, crc32Init, crc32Update, crc32Final } = require("@foxglove/crc");
const { args, check, run, tempDir } = require("./lib");
const { runDoppel } = require("./mcap_bags");

const SUITE = path.join(__dirname, "..", "mcap", "conformance", "data");

// ---- Descriptions ------------------------------------------------------------------------------
// A description lists every record a streamed reader yields (Chunk and MessageIndex records left
// out, a chunk's records in its place), each as {type, fields: [[snake_case name, value]]} with
// integers as decimal strings, bytes as arrays of them and maps as objects; meta.variant.features
// names the layout.

function descriptions() {
  const out = [];
  for (const group of fs.readdirSync(SUITE).sort()) {
    for (const file of fs.readdirSync(path.join(SUITE, group)).sort()) {
      if (!file.endsWith(".json")) continue;
      const json = JSON.parse(fs.readFileSync(path.join(SUITE, group, file), "utf8"));
      out.push({ name: file.slice(0, -".json".length), group, records: json.records,
                 features: new Set(json.meta.variant.features) });
    }
  }
  return out;
}

const fieldsOf = (record) => Object.fromEntries(record.fields);
const bytes = (list) => Uint8Array.from(list.map(Number));
const stringMap = (object) => new Map(Object.entries(object));

// The records the writer was given: the data section's own records, before DataEnd.
function inputRecords(d) {
  const end = d.records.findIndex((r) => r.type === "DataEnd");
  const out = [];
  for (const r of d.records.slice(0, end)) {
    const f = fieldsOf(r);
    switch (r.type) {
      case "Schema":
        out.push({ type: r.type, id: Number(f.id), name: f.name, encoding: f.encoding,
                   data: bytes(f.data) });
        break;
      case "Channel":
        out.push({ type: r.type, id: Number(f.id), schemaId: Number(f.schema_id), topic: f.topic,
                   messageEncoding: f.message_encoding, metadata: stringMap(f.metadata) });
        break;
      case "Message":
        out.push({ type: r.type, channelId: Number(f.channel_id), sequence: Number(f.sequence),
                   logTime: BigInt(f.log_time), publishTime: BigInt(f.publish_time),
                   data: bytes(f.data) });
        break;
      case "Attachment":
        out.push({ type: r.type, name: f.name, mediaType: f.media_type, logTime: BigInt(f.log_time),
                   createTime: BigInt(f.create_time), data: bytes(f.data) });
        break;
      case "Metadata":
        out.push({ type: r.type, name: f.name, metadata: stringMap(f.metadata) });
        break;
      default:
        break;  // the Header
    }
  }
  return out;
}

// ---- Writing a description's file ----------------------------------------------------------------
// The suite's layout (foxglove/mcap tests/conformance/scripts/generate-inputs.ts), by feature:
//   pad  every record that may be padded carries extra bytes after its fields
//   ch   schemas, channels and messages go into one uncompressed chunk written after the other
//        data records; mx: a MessageIndex per channel after it; chx: a ChunkIndex in the summary
//   ax / mdx  an AttachmentIndex / MetadataIndex per attachment / metadata record
//   rsh / rch  the schemas / channels repeated in the summary;  st: a Statistics record
//   sum  a SummaryOffset per non-empty summary group
// The summary groups come in the order schemas, channels, statistics, metadata indexes,
// attachment indexes, chunk indexes; the Footer's summary_start is 0 when there is no group.
function writeFile(d) {
  const has = (feature) => d.features.has(feature);
  const records = inputRecords(d);
  const header = fieldsOf(d.records[0]);
  const b = new McapRecordBuilder({ padRecords: has("pad") });
  b.writeMagic();
  b.writeHeader({ profile: header.profile, library: header.library });
  const chunk = has("ch") ? new McapChunkBuilder({ useMessageIndex: has("mx") }) : undefined;

  const stats = { messageCount: 0n, schemaCount: 0, channelCount: 0, attachmentCount: 0,
                  metadataCount: 0, chunkCount: chunk ? 1 : 0, messageStartTime: undefined,
                  messageEndTime: undefined, channelMessageCounts: new Map() };
  const attachmentIndexes = [];
  const metadataIndexes = [];
  const chunkIndexes = [];
  for (const r of records) {
    if (r.type === "Schema") {
      ++stats.schemaCount;
      chunk ? chunk.addSchema(r) : b.writeSchema(r);
    } else if (r.type === "Channel") {
      ++stats.channelCount;
      chunk ? chunk.addChannel(r) : b.writeChannel(r);
    } else if (r.type === "Message") {
      ++stats.messageCount;
      stats.channelMessageCounts.set(r.channelId,
                                     (stats.channelMessageCounts.get(r.channelId) ?? 0n) + 1n);
      if (stats.messageStartTime === undefined || r.logTime < stats.messageStartTime) {
        stats.messageStartTime = r.logTime;
      }
      if (stats.messageEndTime === undefined || r.logTime > stats.messageEndTime) {
        stats.messageEndTime = r.logTime;
      }
      chunk ? chunk.addMessage(r) : b.writeMessage(r);
    } else if (r.type === "Attachment") {
      ++stats.attachmentCount;
      const offset = BigInt(b.length);
      const length = b.writeAttachment(r);
      if (has("ax")) {
        attachmentIndexes.push({ offset, length, logTime: r.logTime, createTime: r.createTime,
                                 dataSize: BigInt(r.data.byteLength), name: r.name,
                                 mediaType: r.mediaType });
      }
    } else if (r.type === "Metadata") {
      ++stats.metadataCount;
      const offset = BigInt(b.length);
      const length = b.writeMetadata(r);
      if (has("mdx")) metadataIndexes.push({ offset, length, name: r.name });
    }
  }
  if (chunk) {
    const chunkStartOffset = BigInt(b.length);
    const size = BigInt(chunk.buffer.byteLength);
    const chunkLength = b.writeChunk({
      messageStartTime: chunk.messageStartTime, messageEndTime: chunk.messageEndTime,
      uncompressedSize: size, uncompressedCrc: crc32(chunk.buffer), compression: "",
      records: chunk.buffer });
    const messageIndexOffsets = new Map();
    let messageIndexLength = 0n;
    for (const index of chunk.indices) {
      messageIndexOffsets.set(index.channelId, BigInt(b.length));
      messageIndexLength += b.writeMessageIndex(index);
    }
    if (has("chx")) {
      chunkIndexes.push({ messageStartTime: chunk.messageStartTime,
                          messageEndTime: chunk.messageEndTime, chunkStartOffset, chunkLength,
                          messageIndexOffsets, messageIndexLength, compression: "",
                          compressedSize: size, uncompressedSize: size });
    }
  }
  b.writeDataEnd({ dataSectionCrc: crc32(b.buffer) });

  const summaryStart = BigInt(b.length);
  const groups = [];  // [opcode, start, length]
  const group = (opcode, write) => {
    const start = BigInt(b.length);
    write();
    if (BigInt(b.length) > start) groups.push([opcode, start, BigInt(b.length) - start]);
  };
  group(Opcode.SCHEMA, () => {
    if (has("rsh")) for (const r of records) if (r.type === "Schema") b.writeSchema(r);
  });
  group(Opcode.CHANNEL, () => {
    if (has("rch")) for (const r of records) if (r.type === "Channel") b.writeChannel(r);
  });
  group(Opcode.STATISTICS, () => {
    if (has("st")) {
      b.writeStatistics({ ...stats, messageStartTime: stats.messageStartTime ?? 0n,
                          messageEndTime: stats.messageEndTime ?? 0n });
    }
  });
  group(Opcode.METADATA_INDEX, () => metadataIndexes.forEach((r) => b.writeMetadataIndex(r)));
  group(Opcode.ATTACHMENT_INDEX,
        () => attachmentIndexes.forEach((r) => b.writeAttachmentIndex(r)));
  group(Opcode.CHUNK_INDEX, () => chunkIndexes.forEach((r) => b.writeChunkIndex(r)));
  const hasSummary = groups.length > 0;
  let summaryOffsetStart = 0n;
  if (has("sum")) {
    summaryOffsetStart = BigInt(b.length);
    for (const [groupOpcode, groupStart, groupLength] of groups) {
      b.writeSummaryOffset({ groupOpcode, groupStart, groupLength });
    }
  }
  // The summary CRC runs from summary_start through the Footer's summary_offset_start field;
  // the Footer is never padded, so its first 25 bytes are known before it is written.
  const summaryStartField = hasSummary ? summaryStart : 0n;
  const footerHead = new DataView(new ArrayBuffer(1 + 8 + 8 + 8));
  footerHead.setUint8(0, Opcode.FOOTER);
  footerHead.setBigUint64(1, 8n + 8n + 4n, true);
  footerHead.setBigUint64(9, summaryStartField, true);
  footerHead.setBigUint64(17, summaryOffsetStart, true);
  let crc = crc32Init();
  crc = crc32Update(crc, b.buffer.subarray(Number(summaryStart)));
  crc = crc32Update(crc, new Uint8Array(footerHead.buffer));
  b.writeFooter({ summaryStart: summaryStartField, summaryOffsetStart,
                  summaryCrc: crc32Final(crc) });
  b.writeMagic();
  return b.buffer;
}

// ---- (a) The records doppel reads ------------------------------------------------------------

// A record of `mcap-info --records` in the description's form: integers as decimal strings,
// bytes (hex there) as arrays of them, fields sorted by name. The Attachment's crc is left out,
// as the description does (the doctor checks it).
function asDescribed(record) {
  const value = (name, v) => {
    if (name === "data") return (v.match(/../g) ?? []).map((h) => String(parseInt(h, 16)));
    if (typeof v === "number") return String(v);
    if (v !== null && typeof v === "object") {
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, value(k, x)]));
    }
    return v;
  };
  const fields = Object.entries(record.fields)
    .filter(([name]) => !(record.type === "Attachment" && name === "crc"))
    .map(([name, v]) => [name, value(name, v)])
    .sort(([x], [y]) => (x < y ? -1 : 1));
  return { type: record.type, fields };
}

function checkRecords(doppel, d, file) {
  const r = runDoppel(doppel, ["mcap-info", file, "--records"]);
  if (r.status !== 0) return `mcap-info --records exit ${r.status}: ${r.stderr.trim()}`;
  const read = r.stdout.split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l))
    .filter((x) => x.type !== "Chunk" && x.type !== "MessageIndex").map(asDescribed);
  const want = JSON.stringify(d.records);
  const got = JSON.stringify(read);
  if (got === want) return undefined;
  for (let i = 0; i < Math.max(read.length, d.records.length); ++i) {
    if (JSON.stringify(read[i]) !== JSON.stringify(d.records[i])) {
      return `record ${i}: read ${JSON.stringify(read[i])}, described ${JSON.stringify(d.records[i])}`;
    }
  }
  return "records differ";
}

// ---- (b) The official doctor's verdict -------------------------------------------------------
// `mcap doctor` of foxglove/mcap: the Rust CLI (rust/cli/src/commands/doctor.rs), which replaced
// the Go one (go/cli/mcap/cmd/doctor.go, removed in #1721). A file fails when any rule below
// reports an error; warnings (an empty Header.library, an unknown profile, log times going back
// without --strict-message-order, messages outside chunks next to indexes) do not fail it. The
// rules are evaluated on the description: it lists every record of the file but Chunk and
// MessageIndex records, whose fields the layout above fixes. Errors of the official doctor that no
// description can trigger (bad magic or CRC, undecodable records, compression, records inside a
// chunk other than Schema / Channel / Message, a ChunkIndex pointing at no chunk or disagreeing
// with it, a Chunk's start/end times; see the ChunkIndex rule) are left out.
function expectedDoctorErrors(d, { strictMessageOrder = false } = {}) {
  const errors = [];
  const has = (feature) => d.features.has(feature);
  const schemas = new Map();   // data section, by id
  const channels = new Map();  // data section, by id
  const summarySchemas = new Set();
  const summaryChannels = new Set();
  let inSummary = false;
  let statistics;
  let dataEnd = false;
  let footer = false;
  let lastTopLevel;  // log time of the previous message outside chunks
  let latest;        // latest log time so far
  const times = [];
  const chunkChannels = new Set();  // channels of the messages in the (single) chunk
  for (const r of d.records) {
    const f = fieldsOf(r);
    switch (r.type) {
      case "Schema": {
        // examine_schema: id 0 is reserved; empty encoding with data; same id, same record;
        // a summary copy needs the data-section record.
        if (f.id === "0") errors.push("Schema.ID 0 is reserved");
        if (f.encoding === "" && f.data.length > 0) errors.push("Schema with empty Encoding has Data");
        const previous = schemas.get(f.id);
        if (previous && JSON.stringify(previous) !== JSON.stringify(f)) {
          errors.push(`Two schema records with same ID ${f.id} differ`);
        }
        if (inSummary) {
          if (!previous) errors.push(`Schema ${f.id} in summary section not in data section`);
          summarySchemas.add(f.id);
        } else {
          schemas.set(f.id, f);
        }
        break;
      }
      case "Channel": {
        // examine_channel: same id, same record; summary copy needs the data-section record;
        // a non-zero schema id must name a known schema.
        const previous = channels.get(f.id);
        if (previous && JSON.stringify(previous) !== JSON.stringify(f)) {
          errors.push(`Two channel records with same ID ${f.id} differ`);
        }
        if (inSummary) {
          if (!previous) errors.push(`Channel ${f.id} in summary section not in data section`);
          summaryChannels.add(f.id);
        } else {
          channels.set(f.id, f);
        }
        if (f.schema_id !== "0" && !schemas.has(f.schema_id)) {
          errors.push(`Channel ${f.id} with unknown Schema ${f.schema_id}`);
        }
        break;
      }
      case "Message": {
        // examine_top_level_message / examine_chunk: a message needs its channel first; log
        // times going back (outside chunks: against the previous message outside chunks; in a
        // chunk: against the latest so far) are errors only with --strict-message-order.
        const t = BigInt(f.log_time);
        if (!channels.has(f.channel_id)) errors.push(`Message before channel ${f.channel_id}`);
        const reference = has("ch") ? latest : lastTopLevel;
        if (strictMessageOrder && reference !== undefined && t < reference) {
          errors.push(`Message.log_time ${t} is less than ${reference}`);
        }
        if (!has("ch")) lastTopLevel = t;
        if (has("ch")) chunkChannels.add(f.channel_id);
        if (latest === undefined || t > latest) latest = t;
        times.push(t);
        break;
      }
      case "Statistics":
        // handle_top_level_record: one Statistics record at most; in the summary, a non-empty
        // channel_message_counts needs every channel (of the data section and of the map)
        // repeated in the summary before it (the spec's MUST).
        if (statistics) errors.push("File contains multiple Statistics records");
        statistics = f;
        if (inSummary && Object.keys(f.channel_message_counts).length > 0) {
          const required = new Set([...channels.keys(), ...Object.keys(f.channel_message_counts)]);
          for (const id of required) {
            if (!summaryChannels.has(id)) {
              errors.push(`Statistics.channel_message_counts: Channel ${id} missing from summary`);
            }
          }
        }
        break;
      case "ChunkIndex":
        // validate_chunk_indexes: an indexed chunk's channels, and their schemas (but schema 0),
        // must be repeated in the summary section. The index's own fields agree with the chunk
        // by construction (check (a) compares them with the description).
        for (const id of chunkChannels) {
          if (!summaryChannels.has(id)) errors.push(`indexed chunk: channel ${id} not in summary`);
          const schemaId = channels.get(id)?.schema_id;
          if (schemaId !== undefined && schemaId !== "0" && !summarySchemas.has(schemaId)) {
            errors.push(`indexed chunk: schema ${schemaId} not in summary`);
          }
        }
        break;
      case "DataEnd":
        dataEnd = true;
        inSummary = true;
        break;
      case "Footer":
        footer = true;
        break;
      default:
        break;  // Header, Attachment, Metadata and the indexes: warnings or UTF-8 checks only
    }
  }
  // finalize_record_presence: DataEnd and Footer.
  if (!dataEnd) errors.push("File does not contain a DataEnd record");
  if (!footer) errors.push("File does not contain a Footer record");
  // validate_statistics: count always; start and end times when there are messages.
  if (statistics) {
    if (BigInt(statistics.message_count) !== BigInt(times.length)) {
      errors.push("Statistics message count differs");
    }
    if (times.length > 0) {
      const min = times.reduce((a, b) => (b < a ? b : a));
      const max = times.reduce((a, b) => (b > a ? b : a));
      if (BigInt(statistics.message_start_time) !== min) errors.push("Statistics start differs");
      if (BigInt(statistics.message_end_time) !== max) errors.push("Statistics end differs");
    }
  }
  return errors;
}

function doctor(doppel, file, extra = []) {
  const r = runDoppel(doppel, ["mcap-info", file, "--doctor", "--json", ...extra]);
  check(r.status === 0 || r.status === 5,
        `mcap-info --doctor ${extra.join(" ")} on ${file}: exit ${r.status}: ${r.stderr}`);
  const findings = JSON.parse(r.stdout).doctor;
  return { pass: r.status === 0, errors: findings.filter((x) => x.severity === "error"),
           warnings: findings.filter((x) => x.severity === "warning") };
}

async function main() {
  const { doppel } = args();
  const all = descriptions();
  check(all.length === 416, `the suite has 416 descriptions, found ${all.length}`);
  const dir = tempDir();
  const readFailures = [];
  const verdictFailures = [];
  const strictFailures = [];
  let officialPasses = 0;
  let warned = 0;
  for (const d of all) {
    const file = path.join(dir, `${d.name}.mcap`);
    fs.writeFileSync(file, writeFile(d));
    const read = checkRecords(doppel, d, file);
    if (read) readFailures.push(`${d.name}: ${read}`);

    const expected = expectedDoctorErrors(d);
    if (expected.length === 0) ++officialPasses;
    const got = doctor(doppel, file);
    if (got.pass !== (expected.length === 0)) {
      verdictFailures.push(`${d.name}: official doctor ${expected.length ? "fails" : "passes"} it ` +
                           `(${expected.join("; ") || "no error"}), doppel ${got.pass ? "passes" : "fails"} ` +
                           `it (${got.errors.map((x) => x.problem).join("; ") || "no error"})`);
    }
    if (got.warnings.length > 0) ++warned;

    // --strict fails whatever --strict-message-order fails upstream (and more).
    if (expectedDoctorErrors(d, { strictMessageOrder: true }).length > expected.length) {
      if (doctor(doppel, file, ["--strict"]).pass) {
        strictFailures.push(`${d.name}: log times go back, yet --strict passes it`);
      }
    }
    fs.rmSync(file);
  }
  console.log(`(a) records as described: ${all.length - readFailures.length} of ${all.length}`);
  console.log(`(b) doctor verdicts as the official doctor's: ` +
              `${all.length - verdictFailures.length} of ${all.length} ` +
              `(official: ${officialPasses} pass, ${all.length - officialPasses} fail; ` +
              `${warned} files with warnings)`);
  check(readFailures.length === 0, `records differ:\n  ${readFailures.slice(0, 20).join("\n  ")}`);
  check(verdictFailures.length === 0,
        `doctor verdicts differ:\n  ${verdictFailures.slice(0, 20).join("\n  ")}`);
  check(strictFailures.length === 0, strictFailures.slice(0, 20).join("\n"));
  // The suite holds both verdicts: the rules above are not vacuous.
  check(officialPasses > 0 && officialPasses < all.length, `official passes: ${officialPasses}`);
}

run(main);
