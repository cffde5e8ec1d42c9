// Moments as the dashboard and its URLs spell them. Replay time is nanoseconds since the epoch,
// which a JS number cannot hold exactly (2^53 ns is about 104 days): it is a BigInt here, and
// a URL spells it in ISO 8601 with as many fraction digits as it needs (milliseconds, or all
// nine), which the gateway's /replay and /api/incidents parse as well (core/clock.h ParseTime).

export const NS_PER_MS = 1000000n;
export const NS_PER_S = 1000000000n;

// "2026-11-23T20:19:14.551Z" (or .551783897Z when the moment is not a whole millisecond).
export function isoOf(ns) {
  const ms = ns / NS_PER_MS;
  const sub = ns % NS_PER_MS;
  const iso = new Date(Number(ms)).toISOString();
  if (sub === 0n) return iso;
  return `${iso.slice(0, -1)}${String(sub).padStart(6, "0")}Z`;
}

// "20:19:14.551", the moment's time of day (UTC) as the header shows it.
export function clockOf(ns) {
  return new Date(Number(ns / NS_PER_MS)).toISOString().substring(11, 23);
}

// A moment as /replay takes it: ns since the epoch, ISO 8601 (fraction up to nine digits, zone
// Z or +hh:mm), "now", or relative to now ("-15m", "+30s", "-2h", "-500ms"). null when it does
// not parse.
export function parseMoment(text, nowNs = BigInt(Date.now()) * NS_PER_MS) {
  if (text === null || text === undefined) return null;
  text = String(text).trim();
  if (/^-?\d+$/.test(text)) return BigInt(text);
  if (text === "now") return nowNs;
  const rel = /^([+-])(\d+(?:\.\d+)?)(ns|us|ms|s|m|h|d)$/.exec(text);
  if (rel) {
    const unit = { ns: 1, us: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9, d: 86400e9 }[rel[3]];
    const delta = BigInt(Math.round(Number(rel[2]) * unit));
    return rel[1] === "-" ? nowNs - delta : nowNs + delta;
  }
  const iso = /^(\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d)(?:\.(\d+))?([Zz]|[+-]\d\d:?\d\d)$/.exec(text);
  if (!iso) return null;
  const ms = Date.parse(`${iso[1].replace(/[t ]/, "T")}${iso[3].toUpperCase()}`);
  if (Number.isNaN(ms)) return null;
  const fraction = BigInt((iso[2] || "").slice(0, 9).padEnd(9, "0"));
  return BigInt(ms) * NS_PER_MS + fraction;
}

// {sec, nsec} as the Foxglove messages carry a stamp.
export function nsOfStamp(stamp) {
  return BigInt(stamp.sec) * NS_PER_S + BigInt(stamp.nsec || 0);
}
