// Metrics end to end: the platform as separate processes (store, twin, DDS bridge both ways,
// simulated fleet, gateway) each serving /metrics, scraped every second by a real Prometheus
// (Debian's `prometheus`) with deploy/prometheus/doppel_rules.yml loaded. Checks through its
// HTTP API that PromQL over every process's families returns data, that the alert rules load
// and evaluate, that every metric deploy/grafana/doppel.json queries exists, that promtool
// accepts deploy/prometheus, and that `doppel up` serves the store, twin and bridge families
// on its gateway port.
"use strict";
const { spawn, execFileSync } = require("node:child_process");
const fs = require("node:fs");
const net = require("node:net");
const path = require("node:path");
const { args, domainFor, sleep, waitFor, startUp, check, run, tempDir, onCleanup } = require("./lib");

const DEPLOY = path.join(__dirname, "..", "..", "deploy");
const children = [];

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function start(name, cmd, argv) {
  const proc = spawn(cmd, argv, { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  proc.stderr.on("data", (d) => {
    stderr += d;
    if (stderr.length > 100000) stderr = stderr.slice(-50000);
  });
  const child = { name, proc, stderr: () => stderr };
  children.push(child);
  return child;
}

function stopAll() {
  for (const c of children) if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill("SIGINT");
}
// Before lib.js removes the directory they write into.
onCleanup(() => {
  for (const c of children) if (c.proc.exitCode === null) c.proc.kill("SIGKILL");
});

async function get(url) {
  try {
    const r = await fetch(url);
    return { status: r.status, text: await r.text() };
  } catch (e) {
    return { status: 0, text: String(e) };
  }
}

// An instant query: the result vector, or null if Prometheus refused the query.
async function query(prom, expr) {
  const r = await get(`http://127.0.0.1:${prom}/api/v1/query?query=${encodeURIComponent(expr)}`);
  if (r.status !== 200) return null;
  const body = JSON.parse(r.text);
  return body.status === "success" ? body.data.result : null;
}

// The metric names an expression queries (doppel's own; PromQL functions are not doppel_).
function metricNames(expr) {
  return [...new Set(expr.match(/\bdoppel_[a-z0-9_]+/g) || [])];
}

function alive(children) {
  for (const c of children) {
    if (c.proc.exitCode !== null || c.proc.signalCode !== null) {
      throw new Error(`${c.name} exited (${c.proc.exitCode} ${c.proc.signalCode}): ${c.stderr().slice(-2000)}`);
    }
  }
}

async function main() {
  const { doppel } = args();
  const dir = tempDir();
  const domain = domainFor(41);

  // 1. The deployment files as shipped.
  execFileSync("promtool", ["check", "config", path.join(DEPLOY, "prometheus", "prometheus.yml")]);
  execFileSync("promtool", ["check", "rules", path.join(DEPLOY, "prometheus", "doppel_rules.yml")]);
  const dashboard = JSON.parse(fs.readFileSync(path.join(DEPLOY, "grafana", "doppel.json"), "utf8"));
  const exprs = dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr));
  check(exprs.length > 10, `dashboard has ${exprs.length} queries`);

  // 2. The platform as separate processes, each with its own metrics port.
  const ports = {};
  for (const k of ["store", "pub", "twin", "storeM", "twinM", "bridgeM", "gateway", "prom"]) {
    ports[k] = await freePort();
  }
  const ep = (p) => `tcp://127.0.0.1:${p}`;
  const procs = [
    start("store", doppel, ["store", "--data", path.join(dir, "log"), "--listen", ep(ports.store),
                            "--publish", ep(ports.pub), "--metrics-port", String(ports.storeM)]),
  ];
  await waitFor("store /healthz", async () => (await get(`http://127.0.0.1:${ports.storeM}/healthz`)).status === 200);
  procs.push(
    start("twin", doppel, ["twin", "--store", ep(ports.store), "--publish", ep(ports.pub),
                           "--twin-publish", ep(ports.twin), "--metrics-port", String(ports.twinM)]),
    start("bridge", doppel, ["bridge-dds", "--store", ep(ports.store), "--publish", ep(ports.pub),
                             "--domain", String(domain), "--twin-publish", ep(ports.twin),
                             "--model", "sim_arm_*=doppel_arm6", "--model", "sim_base_*=doppel_base",
                             "--metrics-port", String(ports.bridgeM)]),
    start("gateway", doppel, ["gateway", "--port", String(ports.gateway), "--twin-publish",
                              ep(ports.twin), "--store", ep(ports.store), "--publish", ep(ports.pub)]),
    start("sim", doppel, ["sim-fleet", "--robots", "4", "--rate", "20", "--domain", String(domain)]));
  for (const [name, port] of [["twin", ports.twinM], ["bridge", ports.bridgeM], ["gateway", ports.gateway]]) {
    await waitFor(`${name} /healthz`, async () => (await get(`http://127.0.0.1:${port}/healthz`)).status === 200);
  }
  const health = await get(`http://127.0.0.1:${ports.twinM}/healthz`);
  check(JSON.parse(health.text).status === "ok", `twin /healthz: ${health.text}`);
  check((await get(`http://127.0.0.1:${ports.twinM}/nothing`)).status === 404, "unknown path is 404");
  const page = (await get(`http://127.0.0.1:${ports.storeM}/metrics`)).text;
  check(page.includes("# TYPE doppel_store_fsync_seconds histogram"), "store page has # TYPE");
  check(page.includes("# HELP doppel_store_appended_events_total "), "store page has # HELP");

  // 3. A real Prometheus scraping them every second, with doppel's alert rules.
  const config = path.join(dir, "prometheus.yml");
  const job = (name, port) =>
    `  - job_name: ${name}\n    static_configs:\n      - targets: ["127.0.0.1:${port}"]\n`;
  fs.writeFileSync(config,
                   "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n" +
                   `rule_files:\n  - ${path.join(DEPLOY, "prometheus", "doppel_rules.yml")}\n` +
                   "scrape_configs:\n" + job("doppel-store", ports.storeM) + job("doppel-twin", ports.twinM) +
                   job("doppel-bridge", ports.bridgeM) + job("doppel-gateway", ports.gateway));
  execFileSync("promtool", ["check", "config", config]);
  const prom = start("prometheus", "prometheus",
                     [`--config.file=${config}`, `--storage.tsdb.path=${path.join(dir, "tsdb")}`,
                      `--web.listen-address=127.0.0.1:${ports.prom}`]);
  procs.push(prom);
  // Prometheus replays its WAL and loads its TSDB before it is ready: on a 2-core machine
  // running the power-cut test beside it that took more than 30 s once.
  await waitFor("prometheus to be ready",
                async () => (await get(`http://127.0.0.1:${ports.prom}/-/ready`)).status === 200, 90000);

  // 4. PromQL over every process's families returns data.
  const wanted = [
    ['up{job="doppel-store"} == 1', "store scraped"],
    ['up{job="doppel-twin"} == 1', "twin scraped"],
    ['up{job="doppel-bridge"} == 1', "bridge scraped"],
    ['up{job="doppel-gateway"} == 1', "gateway scraped"],
    ["rate(doppel_store_appended_events_total[30s]) > 0", "store appends"],
    ["rate(doppel_store_commit_groups_total[30s]) > 0", "store commit groups"],
    ["histogram_quantile(0.99, rate(doppel_store_fsync_seconds_bucket[30s])) > 0", "fsync p99"],
    ["histogram_quantile(0.5, rate(doppel_store_commit_group_events_bucket[30s])) > 0", "group size"],
    ["doppel_store_next_position > 0", "store next position"],
    ["doppel_twin_events_applied_total > 0", "twin applied"],
    ["doppel_twin_robots == 4", "twin robots"],
    ["doppel_twin_lag_events >= 0", "twin lag"],
    ["doppel_twin_predictions_total > 0", "twin predictions"],
    ["doppel_twin_prediction_seconds_count > 0", "prediction time histogram"],
    ["doppel_twin_silent_robots >= 0", "silent robots gauge"],
    ['doppel_bridge_samples_total{kind="joint_states"} > 0', "bridge joint_states in"],
    ['rate(doppel_bridge_samples_appended_total{kind="odom"}[30s]) > 0', "bridge odom appended"],
    ['doppel_bridge_samples_total{kind="mode"} > 0', "bridge mode in"],
    ["doppel_bridge_robots == 4", "bridge robots"],
    ["doppel_bridge_egress_states_total > 0", "egress states"],
    ["doppel_gateway_robots > 0", "gateway robots"],
    ["doppel_gateway_connections >= 0", "gateway connections"],
  ];
  const missing = new Map(wanted);
  await waitFor("PromQL data", async () => {
    alive(procs);
    for (const [expr, what] of [...missing]) {
      const r = await query(ports.prom, expr);
      if (r && r.length > 0) missing.delete(expr);
      else missing.set(expr, what);
    }
    return missing.size === 0;
  }, 90000).catch((e) => {
    throw new Error(`${e.message}; still missing: ${[...missing.values()].join(", ")}`);
  });

  // 5. The alert rules load and evaluate.
  await waitFor("alert rules evaluated", async () => {
    const r = await get(`http://127.0.0.1:${ports.prom}/api/v1/rules`);
    if (r.status !== 200) return false;
    const rules = JSON.parse(r.text).data.groups.flatMap((g) => g.rules);
    const names = rules.map((x) => x.name).sort().join(",");
    check(names === "DoppelFsyncSlow,DoppelRobotsSilent,DoppelStoreDown,DoppelTwinLagGrowing",
          `rules: ${names}`);
    return rules.every((x) => x.health === "ok" && x.lastEvaluation && !x.lastEvaluation.startsWith("0001"));
  }, 20000);

  // 6. Every metric the Grafana dashboard queries exists, and every query parses.
  const names = JSON.parse((await get(`http://127.0.0.1:${ports.prom}/api/v1/label/__name__/values`)).text).data;
  const known = new Set(names);
  for (const expr of exprs) {
    for (const name of metricNames(expr)) check(known.has(name), `dashboard queries ${name}, which no process exposes`);
    check((await query(ports.prom, expr)) !== null, `dashboard query does not parse: ${expr}`);
  }
  console.log(`prometheus: ${wanted.length} queries answered, ${exprs.length} dashboard queries over ${known.size} metric names`);

  stopAll();
  await sleep(500);

  // 7. doppel up: every family on the gateway's port.
  const up = await startUp(doppel, { robots: 4, salt: 43 });
  try {
    let text = "";
    await waitFor("doppel up /metrics with store, twin and bridge data", async () => {
      text = (await get(`http://${up.base}/metrics`)).text;
      return /\ndoppel_twin_events_applied_total [1-9]/.test(text) &&
             /\ndoppel_bridge_samples_total\{kind="joint_states"\} [1-9]/.test(text) &&
             /\ndoppel_store_appended_events_total [1-9]/.test(text);
    }, 30000);
    for (const family of ["doppel_gateway_connections", "doppel_store_fsync_seconds", "doppel_twin_lag_events",
                          "doppel_bridge_commands_relayed_total"]) {
      check(text.includes(`# TYPE ${family} `), `doppel up /metrics has ${family}`);
    }
    for (const expr of exprs) {
      for (const name of metricNames(expr)) check(new RegExp(`\\n${name}[ {]`).test(text), `doppel up /metrics lacks ${name}`);
    }
  } finally {
    await up.stop();
  }
}

run(main);
