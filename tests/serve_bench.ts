/**
 * Benchmark of serving from the bridge, run by `deno task bench` (it measures whole processes,
 * so it is a script rather than a `Deno.bench`). The simulator and an aedes broker run here;
 * `ess mqtt` runs as a subprocess with the flags of run-flags.txt (so under the binary's own V8
 * heap limits), and its memory is read from /proc:
 *
 * - peak RSS (VmHWM) and the highest RSS sampled of `ess mqtt` and of `ess mqtt --listen` with
 *   the dashboard open (page, scripts, style, state, info and a graph fetched, the event stream
 *   connected and read), both at a 1 s interval for 20 s, alternating, five runs each; the
 *   medians and their difference (goal: at most 5 MB more);
 * - `/metrics` latency from `ess mqtt --listen` on loopback over 2,000 requests after 200 to
 *   warm up, while it bridges: p50, p95 (goal under 5 ms), p99;
 * - for reference, `ess serve` alone with the dashboard open, one run.
 *
 * `deno run -A tests/serve_bench.ts [RUNS]` runs it alone; it takes about four minutes.
 *
 * @module
 */
import { type Simulator, startSimulator } from "../lib/sim/simulator.ts";
import { STATE_PATHS } from "../lib/device/states.ts";
import { startAedes, type TestBroker } from "./_broker.ts";
import {
  median,
  pause,
  percentile,
  sample,
  spawnEss,
  stopEss,
  write,
  writeTable,
} from "./_bench.ts";
import { deviceArgs, worldArgs } from "./_world.ts";

const RUNS = Number(Deno.args[0] ?? 5);
const PHASE_MS = 20_000;
const REQUESTS = 2_000;
const WARMUP = 200;
/** What the page loads besides its event stream. */
const PAGE = ["/", "/app.js", "/chart.js", "/app.css", "/icon.svg", "/api/info", "/api/state"];

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

function homePolls(sim: Simulator): number {
  return sim.requests.filter((r) => r.path === STATE_PATHS.home).length;
}

/** Waits until the device has seen `n` more polls of `home`, i.e. the process polls. */
async function polled(sim: Simulator, n: number): Promise<void> {
  const target = homePolls(sim) + n;
  const until = Date.now() + 30_000;
  while (homePolls(sim) < target) {
    if (Date.now() > until) throw new Error("ess did not poll the simulator within 30 s");
    await pause(50);
  }
}

/** Loads the page as a browser does and keeps its event stream open and read. */
async function openDashboard(url: string): Promise<{ close(): Promise<number> }> {
  for (const path of PAGE) await (await fetch(`${url}${path}`)).text();
  await (await fetch(`${url}/api/graph/pv/day`)).text();
  const events = await fetch(`${url}/api/events`);
  const stream = events.body!.getReader();
  let received = 0;
  const reading = (async () => {
    for (;;) {
      const { value, done } = await stream.read();
      if (done) break;
      received += value.byteLength;
    }
  })();
  return {
    async close() {
      await stream.cancel();
      await reading.catch(() => {});
      return received;
    },
  };
}

interface Run {
  /** VmHWM at the end of the run. */
  peakMb: number;
  /** The highest VmRSS sampled every 500 ms over the run. */
  highestMb: number;
  /** Event-stream bytes the open page received. */
  received: number;
}

/**
 * One process at a 1 s interval for {@link PHASE_MS}: `args` after the device's, with the
 * dashboard open when `listen` is given.
 */
async function memoryRun(args: readonly string[], listen: string | undefined): Promise<Run> {
  const child = spawnEss([...args, ...(listen ? ["--listen", listen] : [])]);
  let page: { close(): Promise<number> } | undefined;
  try {
    if (listen) {
      const url = `http://${listen}`;
      const until = Date.now() + 30_000;
      while (!await fetch(`${url}/api/state`).then((r) => r.json()).then((s) => s.up, () => 0)) {
        if (Date.now() > until) throw new Error(`${url} did not serve the device within 30 s`);
        await pause(100);
      }
      page = await openDashboard(url);
    }
    let highestMb = 0;
    const until = Date.now() + PHASE_MS;
    while (Date.now() < until) {
      await pause(500);
      highestMb = Math.max(highestMb, sample(child.pid).rssMb);
    }
    const { peakMb } = sample(child.pid);
    return { peakMb, highestMb, received: await page?.close() ?? 0 };
  } finally {
    await page?.close().catch(() => {});
    await stopEss(child);
  }
}

/** `/metrics` latencies from `ess mqtt --listen` while it bridges, in ms, ascending. */
async function metricsLatency(sim: Simulator, mqttArgs: readonly string[]): Promise<number[]> {
  const listen = `127.0.0.1:${freePort()}`;
  const child = spawnEss([...mqttArgs, "--listen", listen]);
  try {
    await polled(sim, 2);
    const times: number[] = [];
    for (let i = 0; i < WARMUP + REQUESTS; i++) {
      const started = performance.now();
      const res = await fetch(`http://${listen}/metrics`);
      await res.text();
      if (i >= WARMUP) times.push(performance.now() - started);
    }
    return times.sort((a, b) => a - b);
  } finally {
    await stopEss(child);
  }
}

async function main(): Promise<void> {
  const sim = await startSimulator();
  const broker: TestBroker = await startAedes();
  const device = worldArgs({ sim, broker });
  const quiet = ["--log-level", "warning", "--interval-seconds", "1"];
  const mqtt = ["mqtt", ...device, ...quiet];
  try {
    write("ess mqtt --listen benchmark: simulator + in-process aedes, ess as a subprocess\n");
    write("  warming Deno's caches with one ess mqtt --once ...\n");
    const once = await spawnEss(["mqtt", ...device, "--log-level", "warning", "--once"]).status;
    if (!once.success) throw new Error(`ess mqtt --once failed with exit code ${once.code}`);
    const plain: Run[] = [];
    const listening: Run[] = [];
    for (let run = 1; run <= RUNS; run++) {
      write(`  ${PHASE_MS / 1000} s of ess mqtt, run ${run} of ${RUNS} ...\n`);
      plain.push(await memoryRun(mqtt, undefined));
      write(`  ${PHASE_MS / 1000} s of ess mqtt --listen, dashboard open, run ${run} ...\n`);
      listening.push(await memoryRun(mqtt, `127.0.0.1:${freePort()}`));
    }
    write(`  /metrics from ess mqtt --listen: ${REQUESTS} requests after ${WARMUP} ...\n`);
    const times = await metricsLatency(sim, mqtt);
    write(`  ${PHASE_MS / 1000} s of ess serve, dashboard open ...\n`);
    const serve = await memoryRun(
      ["serve", ...deviceArgs(sim), ...quiet],
      `127.0.0.1:${freePort()}`,
    );

    const peak = (runs: Run[]) => median(runs.map((r) => r.peakMb));
    const highest = (runs: Run[]) => median(runs.map((r) => r.highestMb));
    const mb = (n: number) => `${n.toFixed(1)} MB`;
    const signed = (n: number) => `${n >= 0 ? "+" : ""}${n.toFixed(1)} MB`;
    const list = (runs: Run[]) => runs.map((r) => r.peakMb.toFixed(1)).join(" / ");
    writeTable([
      [`ess mqtt: peak RSS (VmHWM), median of ${RUNS}`, mb(peak(plain)), ""],
      ["  the runs", `${list(plain)} MB`, ""],
      [`ess mqtt --listen, dashboard open: peak RSS, median`, mb(peak(listening)), ""],
      ["  the runs", `${list(listening)} MB`, ""],
      ["peak RSS added by --listen", signed(peak(listening) - peak(plain)), "<= 5 MB"],
      [`ess mqtt: highest RSS sampled, median`, mb(highest(plain)), ""],
      [`ess mqtt --listen: highest RSS sampled, median`, mb(highest(listening)), ""],
      [
        "highest RSS added by --listen",
        signed(highest(listening) - highest(plain)),
        "<= 5 MB",
      ],
      [
        "event-stream bytes the page received (median)",
        `${median(listening.map((r) => r.received))}`,
        "",
      ],
      ["/metrics from ess mqtt --listen: p50", `${percentile(times, 50).toFixed(2)} ms`, ""],
      ["/metrics p95", `${percentile(times, 95).toFixed(2)} ms`, "< 5 ms"],
      ["/metrics p99", `${percentile(times, 99).toFixed(2)} ms`, ""],
      ["ess serve, dashboard open: peak RSS (one run)", mb(serve.peakMb), ""],
    ]);
  } finally {
    await broker.close();
    await sim.close();
  }
}

if (import.meta.main) await main();
