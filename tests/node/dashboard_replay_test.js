// The dashboard's replay mode in a real browser (Debian's chromium, headless, playwright-core).
// A simulated fleet makes ten seconds of history (bases drive into walls: PredictionAlerts),
// while the live page offers a "replay this" link on its alerts; then `doppel up` is started
// again on the same data with no robots, and the page opened with ?from=&to= replays it: the
// timeline spans the window, play moves the time and the URL's &t=, an alert's marker seeks to
// 3 s before it and the scene shows each robot where `doppel state --at` says it was then, and
// a URL with &t= starts there. The screenshot is kept as a test artifact (docs/replay.png).
"use strict";
const { chromium } = require("playwright-core");
const { spawn, execFileSync } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");
const { args, domainFor, sleep, waitFor, startUp, check, run, track } = require("./lib");

const ROBOTS = 4;
const HISTORY_MS = 10000;
const NS_PER_MS = 1000000n;
const NS_PER_S = 1000000000n;

// As the page spells a moment in its URL (bridges/ws/web/time.js isoOf).
function isoOf(ns) {
  const iso = new Date(Number(ns / NS_PER_MS)).toISOString();
  const sub = ns % NS_PER_MS;
  return sub === 0n ? iso : `${iso.slice(0, -1)}${String(sub).padStart(6, "0")}Z`;
}
const clockOf = (ns) => new Date(Number(ns / NS_PER_MS)).toISOString().substring(11, 23);
const floorMs = (ns) => ns / NS_PER_MS * NS_PER_MS;

// `doppel up` again on an existing data directory (lib.js startUp makes a new one).
async function upAgain(doppel, data, salt) {
  const proc = track(spawn(doppel, ["up", "--data", data, "--port", "0", "--robots", "0",
                                    "--domain", String(domainFor(salt)), "--for", "300s"],
                           { stdio: ["ignore", "pipe", "pipe"] }));
  let stdout = "", stderr = "";
  proc.stdout.on("data", (d) => (stdout += d));
  proc.stderr.on("data", (d) => (stderr += d));
  const exited = new Promise((resolve) => proc.on("exit", (code, signal) => resolve({ code, signal })));
  await waitFor("doppel up (again) to print its URLs", () => /dashboard:\s+http/.test(stdout) || proc.exitCode !== null);
  if (proc.exitCode !== null) throw new Error(`doppel up exited: ${stderr}`);
  const port = Number(new URL(stdout.match(/dashboard:\s+(http:\/\/\S+)/)[1]).port);
  return {
    base: `127.0.0.1:${port}`,
    async stop() {
      if (proc.exitCode === null) proc.kill("SIGINT");
      const r = await exited;
      if (r.code !== 0) throw new Error(`doppel up exited with ${r.code} ${r.signal}: ${stderr.slice(-2000)}`);
    },
  };
}

function allEvents(doppel, data) {
  const out = execFileSync(doppel, ["read", "--data", path.join(data, "log")], { maxBuffer: 1 << 30 }).toString();
  // recorded_ns exactly: JSON numbers become doubles.
  return out.split("\n").filter((l) => l).map((l) => {
    const e = JSON.parse(l);
    e.recorded = BigInt(/"recorded_ns":(\d+)/.exec(l)[1]);
    return e;
  });
}

// The base's pose as `doppel state --at` folds it (the log's holder has stopped).
function stateAt(doppel, data, robot, atNs) {
  const s = JSON.parse(execFileSync(doppel, ["state", "--data", data, "--robot", robot, "--at", String(atNs)]).toString());
  return { position: s.base.position, orientation: s.base.orientation_xyzw };
}

function samePose(shown, state, what) {
  check(shown, `${what}: the page shows the robot`);
  const got = [shown.x, shown.y, shown.z, shown.qx, shown.qy, shown.qz, shown.qw];
  const want = [...state.position, ...state.orientation];
  const worst = Math.max(...got.map((g, i) => Math.abs(g - want[i])));
  check(worst <= 1e-6, `${what}: the scene's pose ${got} is doppel state's ${want} (off by ${worst})`);
}

async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
           "--disable-background-networking", "--disable-component-update", "--no-first-run",
           "--use-angle=swiftshader", "--enable-unsafe-swiftshader"],
  });
}

function watchErrors(page, errors) {
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
}

const replayState = (page) => page.evaluate(() => window.__doppel.replay);
const urlT = (page) => new URL(page.url()).searchParams.get("t");

// Waits for the page to stand paused at `ns`, the twin of every base (registered by then)
// re-sent for that moment.
async function standingAt(page, ns, bases, seeksBefore) {
  return waitFor(`the replay at ${isoOf(ns)}`, async () => {
    const s = await page.evaluate(() => ({ replay: window.__doppel.replay, robots: window.__doppel.robots }));
    if (s.replay.timeNs !== String(ns) || s.replay.seeks <= seeksBefore || s.replay.status !== "paused") return null;
    if (!bases.every((b) => s.robots[b] && s.robots[b].stampNs === String(ns))) return null;
    return s;
  }, 15000);
}

run(async () => {
  const { doppel, out = "." } = args();
  fs.mkdirSync(out, { recursive: true });
  const browser = await launch();
  const checks = [];  // [robot, ns, pose shown, what]: compared with doppel state at the end
  let data;
  try {
    // ---- history, and the live page's "replay this" links --------------------------------------
    const up = await startUp(doppel, { robots: ROBOTS, rate: 20, salt: 5 });
    data = up.data;
    const token = up.tokens.operator;
    let replayHref = null;
    try {
      const live = await browser.newPage({ viewport: { width: 1600, height: 900 } });
      const liveErrors = [];
      watchErrors(live, liveErrors);
      await live.goto(up.dashboard);
      await live.waitForSelector("#connection.on", { timeout: 20000 });
      const started = Date.now();
      // A base heading for a wall raises a PredictionAlert: its line links to its replay.
      // The top line is the latest alert: its link is taken once the history is made.
      const topLink = () => live.evaluate(() => {
        const a = document.querySelector("#alerts li a.replay-link");
        return a ? a.getAttribute("href") : null;
      });
      await waitFor("an alert with a replay link", topLink, HISTORY_MS + 5000);
      await sleep(Math.max(0, HISTORY_MS - (Date.now() - started)));
      replayHref = await topLink();
      const q = new URL(replayHref, "http://x").searchParams;
      check(q.get("token") === token, "the replay link carries the page's token");
      const [from, to, t] = ["from", "to", "t"].map((k) => BigInt(Date.parse(q.get(k))) * NS_PER_MS);
      check(to - from === 30n * NS_PER_S && to - t === 18n * NS_PER_S,
            `the replay link spans 15 s either side and starts 3 s before: ${replayHref}`);
      check(live.url().indexOf("from=") < 0, "the live page stays live");
      check(liveErrors.length === 0, `no live page errors: ${liveErrors.join(" | ")}`);
      await live.close();
    } finally {
      await up.stop();
    }

    const events = allEvents(doppel, data);
    const first = events[0].recorded, last = events[events.length - 1].recorded;
    const registered = new Map(events.filter((e) => e.type === "RobotRegistered" && e.payload.model === "doppel_base")
                                      .map((e) => [e.payload.robot_id, e.recorded]));
    const bases = [...registered.keys()].sort();
    const basesAt = (ns) => bases.filter((b) => registered.get(b) <= ns);
    const alerts = events.filter((e) => e.type === "PredictionAlert");
    check(bases.length >= 1, `bases registered: ${bases}`);
    check(alerts.length > 0, "the simulated bases raised PredictionAlerts");
    console.log(`history: ${events.length} events over ${Number(last - first) / 1e9} s, ${alerts.length} alerts, bases ${bases}`);

    // ---- replay -------------------------------------------------------------------------------
    const again = await upAgain(doppel, data, 6);
    try {
      // From half a second in (the robots registered), to the end.
      const fromNs = floorMs(first) + 500n * NS_PER_MS, toNs = floorMs(last) + NS_PER_MS;
      const incidents = await (await fetch(`http://${again.base}/api/incidents?from=${fromNs}&to=${toNs}&token=${token}`)).json();
      check(incidents.incidents.some((i) => i.kind === "alert" && i.type === "PredictionAlert"),
            `/api/incidents lists the alerts: ${JSON.stringify(incidents).slice(0, 300)}`);

      const page = await browser.newPage({ viewport: { width: 1600, height: 900 } });
      const errors = [];
      watchErrors(page, errors);
      const windowQuery = `token=${token}&from=${isoOf(fromNs)}&to=${isoOf(toNs)}`;
      await page.goto(`http://${again.base}/?${windowQuery}`);
      await page.waitForSelector("#timeline", { state: "visible", timeout: 20000 });
      let s = await waitFor("the replay session", async () => {
        const r = await replayState(page);
        return r && r.startNs && r.markers.length > 0 ? r : null;
      });
      check(s.startNs === String(fromNs) && s.endNs === String(toNs),
            `the timeline spans the window: ${s.startNs}..${s.endNs} for ${fromNs}..${toNs}`);
      check((await page.textContent("#replay-start")) === clockOf(fromNs) &&
            (await page.textContent("#replay-end")) === clockOf(toNs), "start and end shown");
      check(s.status === "paused" && s.timeNs === String(fromNs), `starts paused at from: ${s.status} ${s.timeNs}`);

      // Play: the time text, the replay time and the URL's &t= move.
      const text0 = await page.textContent("#replay-time");
      await page.click("#play");
      await waitFor("playing", async () => (await replayState(page)).status === "playing");
      await sleep(1500);
      s = await replayState(page);
      check(BigInt(s.timeNs) > fromNs + 500n * NS_PER_MS, `replay time advances: ${s.timeNs}`);
      check((await page.textContent("#replay-time")) !== text0, "the time text moves");
      await waitFor("&t= in the URL following", async () => {
        const t = urlT(page);
        return t && Date.parse(t) * 1e6 > Number(fromNs) + 4e8;
      }, 5000);
      await waitFor("the fleet listed", async () => (await page.$$("#robots tr")).length >= ROBOTS);
      await page.click("#play");
      await waitFor("paused", async () => (await replayState(page)).status === "paused");
      for (const speed of ["10", "1"]) {
        await page.selectOption("#speed", speed);
        await waitFor(`speed ${speed}x`, async () => (await replayState(page)).speed === Number(speed), 5000);
      }

      // A marker per alert (runs of the same alert are one); clicking one seeks 3 s before it
      // (or to the window's start).
      const marker = s.markers.find((m) => m.kind === "alert" && bases.includes(m.robot));
      check(marker, `an alert marker of a base: ${JSON.stringify(s.markers)}`);
      check(alerts.some((a) => a.recorded === BigInt(marker.tNs) && a.stream === `robot-${marker.robot}`),
            `the marker is a PredictionAlert of the log: ${JSON.stringify(marker)}`);
      let target = floorMs(BigInt(marker.tNs) - 3n * NS_PER_S);
      if (target < fromNs) target = fromNs;
      const seeks = (await replayState(page)).seeks;
      await page.click(`#markers .marker[data-t-ns="${marker.tNs}"][data-robot="${marker.robot}"]`);
      let shown = await standingAt(page, target, basesAt(target), seeks);
      check((await page.textContent("#replay-time")).includes(clockOf(target).substring(0, 8)),
            `the time text shows ${clockOf(target)}: ${await page.textContent("#replay-time")}`);
      await waitFor("&t= at the seek", async () => urlT(page) === isoOf(target), 3000);
      for (const b of basesAt(target)) checks.push([b, target, shown.robots[b], `after the marker (${b} at ${isoOf(target)})`]);
      const trails = await page.evaluate(() => window.__doppel.trails);
      check(bases.every((b) => trails[b] <= 1), `the driven paths start over at the seek: ${JSON.stringify(trails)}`);

      // The alerting base's panel, at once while paused (from the twin the seek re-sent).
      await page.click(`#robots tr[data-robot="${marker.robot}"]`);
      await page.waitForSelector("#robot-facts div", { timeout: 5000 });
      await waitFor("the joint plot", async () => /wheel velocities/.test(await page.textContent("#joint-plot")));
      const at = shown.robots[marker.robot];
      const facts = await page.textContent("#robot-facts");
      check(facts.includes(`${at.x.toFixed(2)}, ${at.y.toFixed(2)}`), `the panel shows the base where it was: ${facts}`);

      // Played on from there: the driven path and the predicted path are both drawn.
      await page.click("#play");
      await waitFor("the driven and the predicted path of the alerting base", async () => {
        const d = await page.evaluate(() => ({ trails: window.__doppel.trails, paths: window.__doppel.paths }));
        return d.trails[marker.robot] > 20 && d.paths[marker.robot] > 1;
      }, 10000);
      // Past the marker the panels have its alert (no "replay this" link: this is a replay).
      await waitFor("the replay past the marker", async () =>
        BigInt((await replayState(page)).timeNs) > BigInt(marker.tNs) + 500n * NS_PER_MS, 10000);
      await page.click("#play");
      await waitFor("paused", async () => (await replayState(page)).status === "paused");
      await waitFor("the alert listed", async () => (await page.$$(`#alerts li[data-robot="${marker.robot}"]`)).length > 0, 5000);
      check((await page.$$("#alerts a.replay-link")).length === 0, "no replay links in a replay");
      const shot = path.join(out, "replay.png");
      await page.screenshot({ path: shot });
      check(fs.statSync(shot).size > 20000, "screenshot written");
      console.log(`screenshot: ${shot}`);
      check(errors.length === 0, `no page errors: ${errors.join(" | ")}`);

      // A pasted URL with &t= starts there: the live page's "replay this" link, and the URL
      // this page wrote.
      for (const href of [replayHref, page.url()]) {
        const u = new URL(href, `http://${again.base}`);
        const t = BigInt(Date.parse(u.searchParams.get("t"))) * NS_PER_MS +
                  BigInt((/\.\d{3}(\d*)Z$/.exec(u.searchParams.get("t")) || [0, ""])[1].padEnd(6, "0"));
        const other = await browser.newPage({ viewport: { width: 1280, height: 800 } });
        const otherErrors = [];
        watchErrors(other, otherErrors);
        await other.goto(`http://${again.base}${u.pathname}${u.search}`);
        const wStart = BigInt((await waitFor("the session", async () => (await replayState(other))?.startNs)));
        const expected = t < wStart ? wStart : t;
        shown = await standingAt(other, expected, basesAt(expected), 0);
        check(basesAt(expected).length > 0, `bases there at ${isoOf(expected)}`);
        for (const b of basesAt(expected)) checks.push([b, expected, shown.robots[b], `${u.search}: ${b}`]);
        check(urlT(other) === isoOf(expected), `the URL keeps t: ${urlT(other)}`);
        check(otherErrors.length === 0, `no page errors: ${otherErrors.join(" | ")}`);
        await other.close();
      }
    } finally {
      await again.stop();
    }
  } finally {
    await browser.close();
  }
  // Each robot where the page drew it is where the log says it was.
  for (const [robot, ns, pose, what] of checks) samePose(pose, stateAt(doppel, data, robot, ns), what);
  console.log(`${checks.length} poses as doppel state has them`);
});
