// The built-in dashboard in a real browser: Debian's chromium, headless, driven by
// playwright-core, loading the page `doppel up` serves. It must list every simulated robot and
// keep updating; the screenshot is kept as a test artifact (and is the README's picture).
"use strict";
const { chromium } = require("playwright-core");
const fs = require("node:fs");
const path = require("node:path");
const { args, sleep, waitFor, startUp, check, run } = require("./lib");

const ROBOTS = 8;

run(async () => {
  const { doppel, out = "." } = args();
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
});
