// The built-in dashboard in a real browser: Debian's chromium, headless, driven by
// playwright-core, loading the page `doppel up` serves. It must list every simulated robot and
// keep updating; the screenshot is kept as a test artifact (and is the README's picture).
"use strict";
const { chromium } = require("playwright-core");
const { FoxgloveClient } = require("@foxglove/ws-protocol");
const WebSocket = require("ws");
const fs = require("node:fs");
const path = require("node:path");
const { args, sleep, waitFor, startUp, readStream, check, run } = require("./lib");

const ROBOTS = 8;

// A Foxglove client following one robot's twin: every base speed it reports, with the time it
// arrived here.
function watchTwin(url, robot) {
  const client = new FoxgloveClient({ ws: new WebSocket(url, [FoxgloveClient.SUPPORTED_SUBPROTOCOL]) });
  const state = { samples: [], latest: null, close: () => client.close() };
  const decoder = new TextDecoder();
  client.on("advertise", (channels) => {
    for (const c of channels) if (c.topic === `/${robot}/twin`) client.subscribe(c.id);
  });
  client.on("message", ({ data }) => {
    const t = JSON.parse(decoder.decode(data));
    if (!t.base_twist) return;
    state.latest = { at: Date.now(), v: t.base_twist.linear.x };
    state.samples.push(state.latest);
  });
  return state;
}

run(async () => {
  const { doppel, out = "." } = args();
  let stopClick = null;
  const up = await startUp(doppel, { robots: ROBOTS, salt: 2 });
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
           "--disable-background-networking", "--disable-component-update", "--no-first-run",
           "--use-angle=swiftshader", "--enable-unsafe-swiftshader"],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1600, height: 900 } });
    const errors = [];
    page.on("pageerror", (e) => errors.push(e.message));
    page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
    await page.goto(up.dashboard);
    await page.waitForSelector("#connection.on", { timeout: 20000 });
    const listed = await waitFor(`${ROBOTS} robots listed`, async () => {
      const ids = await page.$$eval("#robots tr", (trs) => trs.map((tr) => tr.dataset.robot));
      return ids.length >= ROBOTS ? ids : null;
    });
    check(listed.length === ROBOTS, `robots listed: ${listed}`);
    check(listed.every((id) => /^sim_(arm|base)_\d+$/.test(id)), `robot ids: ${listed}`);

    // It updates: the summary stamp and a base's staleness cell change over time.
    const stamp1 = await page.textContent("#summary-stamp");
    await sleep(2500);
    const stamp2 = await page.textContent("#summary-stamp");
    check(stamp1 !== stamp2, `summary stamp moves: ${stamp1} -> ${stamp2}`);
    const modes = await page.$$eval("#robots tr td:nth-child(2)", (tds) => tds.map((td) => td.textContent));
    check(modes.includes("arm6") && modes.includes("base"), `models shown: ${modes}`);
    // The simulated robots report their mode on rt/<robot>/mode (once "Unknown" for all).
    await waitFor("modes reported", async () => {
      const shown = await page.$$eval("#robots tr td:nth-child(3)", (tds) => tds.map((td) => td.textContent));
      return shown.filter((m) => m === "Autonomous").length >= ROBOTS - 1;
    });

    // Select a base: its panel fills in and its events and joints arrive; operator controls show.
    const base = listed.find((id) => id.includes("_base_"));
    await page.click(`#robots tr[data-robot="${base}"]`);
    await page.waitForSelector("#robot-facts div", { timeout: 10000 });
    check((await page.textContent("#robot-title")) === base, "panel title");
    check(await page.isVisible("#operator"), "operator controls visible with an operator token");
    // A base's wheels turn without bound: the plot shows their velocities, not their angles.
    await waitFor("the joint plot", async () => /wheel velocities/.test(await page.textContent("#joint-plot")));
    await page.click("#send-velocity");
    await waitFor("command acknowledged", async () => /recorded at position/.test(await page.textContent("#command-status")));
    await waitFor("recent events", async () => (await page.$$("#events li")).length > 0);

    // STOP reaches the robot: the dashboard's STOP is recorded, relayed by the DDS egress as
    // a zero twist on rt/<base>/cmd_vel, and the simulated base's odometry (seen here through
    // its twin, from a second client) shows it stopped within 500 ms.
    const watcher = watchTwin(`ws://${up.base}/?token=${up.tokens.viewer}`, base);
    await waitFor("the base moving", () => watcher.latest && Math.abs(watcher.latest.v) > 0.05, 15000);
    // The click's own time, taken in the page when the button gets it (playwright's click
    // waits for the element first; the browser and this process share the clock).
    await page.evaluate(() => document.getElementById("stop").addEventListener(
      "click", () => (window.stopClickedAt = Date.now()), true));
    await page.click("#stop");
    const clicked = await page.evaluate(() => window.stopClickedAt);
    stopClick = { at: clicked, base };
    const seen = await waitFor("the twin showing the base at rest", () => {
      const s = watcher.samples.find((x) => x.at > clicked && Math.abs(x.v) < 1e-9);
      return s ? s.at : null;
    }, 5000);
    console.log(`STOP -> base at rest as the dashboard's twin shows it: ${seen - clicked} ms`);
    await waitFor("STOP acknowledged", async () => /recorded at position/.test(await page.textContent("#command-status")));
    watcher.close();
    await sleep(1500);
    const canvas = await page.$("#scene canvas");
    check(canvas !== null, "3D scene canvas present");
    fs.mkdirSync(out, { recursive: true });
    const shot = path.join(out, "dashboard.png");
    await page.screenshot({ path: shot });
    check(fs.statSync(shot).size > 20000, "screenshot written");
    console.log(`screenshot: ${shot}`);
    check(errors.length === 0, `no page errors: ${errors.join(" | ")}`);

    // A viewer token gets no operator controls.
    const viewerPage = await browser.newPage();
    await viewerPage.goto(`http://${up.base}/?token=${up.tokens.viewer}`);
    await viewerPage.waitForSelector("#robots tr", { timeout: 20000 });
    await viewerPage.click("#robots tr");
    check(!(await viewerPage.isVisible("#operator")), "viewers get no operator controls");
  } finally {
    await browser.close();
    await up.stop();
  }
  // The robot's own odometry (PoseObserved, stamped by the robot) after the STOP click.
  check(stopClick, "STOP was clicked");
  const events = readStream(doppel, up.data, `robot-${stopClick.base}`);
  const stop = events.find((e) => e.type === "CommandIssued" && e.payload.kind === "Stop");
  check(stop && /^gateway:/.test(stop.payload.issued_by), "the STOP is recorded once, by the gateway");
  const rest = events.find((e) => e.position > stop.position && e.type === "PoseObserved" &&
                                  Math.abs(e.payload.twist.linear.x) < 1e-9);
  check(rest, "odometry at rest after the STOP");
  const ms = (rest.occurred_ns / 1e6) - stopClick.at;
  console.log(`STOP click -> robot odometry at rest: ${ms.toFixed(1)} ms`);
  check(ms <= 500, `the base stopped ${ms.toFixed(1)} ms after STOP (limit 500)`);
  const stops = events.filter((e) => e.type === "CommandIssued" && e.payload.kind === "Stop");
  check(stops.length === 1, `one STOP recorded, not ${stops.length} (the relayed twist is not recorded again)`);
});
