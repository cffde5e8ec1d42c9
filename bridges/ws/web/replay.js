// The dashboard's replay timeline: when the page's URL has ?from= (and perhaps &to=, &t=,
// &robots=), the dashboard connects to the gateway's /replay instead of the live feed and this
// drives it with Foxglove's playbackControl: play/pause, speed, a scrubber over the window's
// data, and a tick per incident (GET /api/incidents) that seeks to a few seconds before it.
// The replay time goes back into the URL (&t=) as it moves, so the link can be pasted.
import { NS_PER_MS, NS_PER_S, clockOf, isoOf, nsOfStamp, parseMoment } from "./time.js";

const $ = (id) => document.getElementById(id);

// PlaybackState.status
export const PLAYING = 0, PAUSED = 1, BUFFERING = 2, ENDED = 3;
const STATUS_NAMES = ["playing", "paused", "buffering", "ended"];
const BEFORE_INCIDENT = 3n * NS_PER_S;  // a marker seeks this far ahead of its incident
const URL_EVERY_MS = 500;               // &t= is rewritten at most this often while playing
// Incidents of one robot and kind closer than this are one marker (a robot heading for a wall
// raises the same alert on every prediction).
const SAME_INCIDENT_NS = 2n * NS_PER_S;

export class Replay {
  // send(ArrayBuffer): a binary frame to the gateway; onSeek(timeNs): every subscribed
  // channel is about to be re-sent as it was at timeNs (trails and lists start over).
  constructor(params, token, { send, onSeek }) {
    this.params = params;
    this.token = token;
    this.send = send;
    this.onSeek = onSeek;
    this.start = null;  // the window's data, BigInt ns
    this.end = null;
    this.time = null;   // current replay time, BigInt ns
    this.status = PAUSED;
    this.speed = Number(params.get("speed")) || 1;
    this.seeks = 0;     // PlaybackStates with did_seek received
    this.incidents = [];
    this.markersError = null;
    this.dragging = false;
    this.urlTimer = null;
    this.requests = 0;
    this.initialSeek = params.get("t");
    this.buildControls();
  }

  // The /replay WebSocket URL for this page's window.
  url(scheme, host) {
    const q = new URLSearchParams();
    q.set("from", this.params.get("from"));
    q.set("to", this.params.get("to") || "now");
    if (this.params.get("robots")) q.set("robots", this.params.get("robots"));
    q.set("token", this.token);
    return `${scheme}://${host}/replay?${q}`;
  }

  buildControls() {
    document.body.classList.add("replay");
    $("timeline").hidden = false;
    const speed = $("speed");
    if (![...speed.options].some((o) => Number(o.value) === this.speed)) this.speed = 1;
    speed.value = String(this.speed);
    speed.onchange = () => {
      this.speed = Number(speed.value);
      this.control(this.playing() ? 0 : 1);
    };
    $("play").onclick = () => this.toggle();
    const scrubber = $("scrubber");
    scrubber.oninput = () => {
      this.dragging = true;
      $("replay-time").textContent = this.describe(this.scrubberTime());
    };
    scrubber.onchange = () => {
      this.dragging = false;
      this.seek(this.scrubberTime());
    };
    document.addEventListener("keydown", (e) => {
      if (e.code !== "Space" || /INPUT|SELECT|BUTTON|TEXTAREA/.test(e.target.tagName)) return;
      e.preventDefault();
      this.toggle();
    });
    $("live-link").href = `/?token=${encodeURIComponent(this.token)}`;
  }

  playing() { return this.status === PLAYING || this.status === BUFFERING; }

  toggle() {
    if (this.time === null) return;
    if (this.status === ENDED) this.control(0, this.start);  // from the top, as players do
    else this.control(this.playing() ? 1 : 0);
  }

  seek(t) {
    if (this.time === null) return;
    if (t < this.start) t = this.start;
    if (t > this.end) t = this.end;
    this.control(this.playing() ? 0 : 1, t);
  }

  // PlaybackControlRequest: u8 0x03 | u8 command | f32 speed | u8 had_seek | u64 seek_time |
  // u32 request_id_len | request_id (little-endian).
  control(command, seekNs = null) {
    const id = new TextEncoder().encode(`dashboard-${++this.requests}`);
    const frame = new ArrayBuffer(19 + id.length);
    const v = new DataView(frame);
    v.setUint8(0, 0x03);
    v.setUint8(1, command);
    v.setFloat32(2, this.speed, true);
    v.setUint8(6, seekNs === null ? 0 : 1);
    v.setBigUint64(7, seekNs === null ? 0n : seekNs, true);
    v.setUint32(15, id.length, true);
    new Uint8Array(frame, 19).set(id);
    this.send(frame);
  }

  // The connection is (re)opened: a new session starts paused at the window's start.
  onServerInfo(info) {
    this.start = nsOfStamp(info.dataStartTime);
    this.end = nsOfStamp(info.dataEndTime);
    this.status = PAUSED;
    this.setTime(this.start);
    $("replay-start").textContent = clockOf(this.start);
    $("replay-end").textContent = clockOf(this.end);
    $("scrubber").max = String(Number((this.end - this.start) / NS_PER_MS));
    // &t= in the URL (the page's own, kept current: a reconnect resumes where it was).
    const t = parseMoment(this.initialSeek);
    if (t !== null && t !== this.start) this.seek(t);
    else if (this.speed !== 1) this.control(1);
    this.showStatus();
    this.loadMarkers();
  }

  onTimeFrame(ns) { this.setTime(ns); }

  // PlaybackState: u8 0x05 | u8 status | u64 current_time | f32 speed | u8 did_seek | u32 len | id.
  onPlaybackState(view) {
    this.status = view.getUint8(1);
    const time = view.getBigUint64(2, true);
    this.speed = Math.round(view.getFloat32(10, true) * 1000) / 1000;
    const didSeek = view.getUint8(14) === 1;
    if (didSeek) {
      this.seeks++;
      this.onSeek(time);
    }
    this.setTime(time);
    this.showStatus();
    this.writeUrl(true);
  }

  setTime(ns) {
    this.time = ns;
    if (!this.dragging) {
      $("scrubber").value = String(Number((ns - this.start) / NS_PER_MS));
      $("replay-time").textContent = this.describe(ns);
    }
    this.writeUrl(false);
  }

  scrubberTime() { return this.start + BigInt($("scrubber").value) * NS_PER_MS; }

  describe(ns) {
    const offset = Number(ns - this.start) / 1e9, length = Number(this.end - this.start) / 1e9;
    return `${isoOf(ns / NS_PER_MS * NS_PER_MS).replace("T", " ").replace("Z", "")}  ` +
           `(${offset.toFixed(1)} / ${length.toFixed(1)} s)`;
  }

  showStatus() {
    const play = $("play");
    play.textContent = this.playing() ? "\u275a\u275a pause" : "\u25b6 play";
    play.classList.toggle("on", this.playing());
    const status = $("replay-status");
    status.textContent = STATUS_NAMES[this.status] || `status ${this.status}`;
    status.className = `pill ${this.status === PLAYING ? "on" : ""}`;
    const speed = $("speed");
    if ([...speed.options].some((o) => Number(o.value) === this.speed)) speed.value = String(this.speed);
  }

  // &t= follows replay time, to the millisecond; at once after a seek or a pause, otherwise at
  // most every URL_EVERY_MS.
  writeUrl(now) {
    if (this.time === null) return;
    const write = () => {
      this.urlTimer = null;
      const q = new URLSearchParams(location.search);
      const t = this.time / NS_PER_MS * NS_PER_MS;
      q.set("t", isoOf(t));
      this.initialSeek = q.get("t");
      history.replaceState(null, "", `${location.pathname}?${q}`);
    };
    if (now) {
      if (this.urlTimer) clearTimeout(this.urlTimer);
      write();
    } else if (!this.urlTimer) {
      this.urlTimer = setTimeout(write, URL_EVERY_MS);
    }
  }

  async loadMarkers() {
    const q = new URLSearchParams({ from: String(this.start), to: String(this.end), token: this.token });
    if (this.params.get("robots")) q.set("robots", this.params.get("robots"));
    try {
      const response = await fetch(`/api/incidents?${q}`);
      if (!response.ok) throw new Error(`${response.status} ${(await response.text()).trim()}`);
      // Keep the nanoseconds exact: JSON numbers become doubles.
      const text = (await response.text()).replace(/"(t_ns|from_ns|to_ns)"\s*:\s*(\d+)/g, "\"$1\":\"$2\"");
      this.incidents = JSON.parse(text).incidents.map((i) => ({ ...i, t_ns: BigInt(i.t_ns) }));
      this.markersError = null;
    } catch (e) {
      this.incidents = [];
      this.markersError = String(e.message || e);
      console.warn("incidents:", this.markersError);
    }
    this.drawMarkers();
  }

  drawMarkers() {
    const layer = $("markers");
    layer.innerHTML = "";
    const last = new Map();  // robot|kind -> the marker its next incident may join
    const span = Number(this.end - this.start) || 1;
    for (const incident of this.incidents) {
      if (incident.t_ns < this.start || incident.t_ns > this.end) continue;
      const key = `${incident.robot}|${incident.kind}|${incident.type}`;
      const run = last.get(key);
      if (run && incident.t_ns - run.until <= SAME_INCIDENT_NS) {
        run.until = incident.t_ns;
        run.count++;
        run.el.title = `${run.title} (\u00d7${run.count})`;
        continue;
      }
      const el = document.createElement("button");
      el.className = `marker ${incident.kind}`;
      el.dataset.robot = incident.robot;
      el.dataset.kind = incident.kind;
      el.dataset.type = incident.type;
      el.dataset.tNs = String(incident.t_ns);
      el.style.left = `calc(8px + (100% - 16px) * ${Number(incident.t_ns - this.start) / span})`;
      const title = `${clockOf(incident.t_ns)} ${incident.robot}: ${incident.summary || incident.type}`;
      el.title = title;
      el.onclick = () => this.seek((incident.t_ns - BEFORE_INCIDENT) / NS_PER_MS * NS_PER_MS);
      layer.append(el);
      last.set(key, { el, title, until: incident.t_ns, count: 1 });
    }
    $("markers-note").textContent = this.markersError ? `no incident markers: ${this.markersError}`
      : `${layer.children.length} incidents`;
  }

  // For tests and the console: window.__doppel.replay.
  debug() {
    return {
      status: STATUS_NAMES[this.status], speed: this.speed, seeks: this.seeks,
      timeNs: this.time === null ? null : String(this.time),
      startNs: this.start === null ? null : String(this.start),
      endNs: this.end === null ? null : String(this.end),
      markers: [...document.querySelectorAll("#markers .marker")].map((m) => ({
        robot: m.dataset.robot, kind: m.dataset.kind, type: m.dataset.type, tNs: m.dataset.tNs })),
      markersError: this.markersError,
    };
  }
}
