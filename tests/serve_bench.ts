/**
 * Benchmark of the `ess serve` HTTP server, run by `deno task bench` (it measures a whole
 * process, so it is a script rather than a `Deno.bench`). The simulator runs here; the server,
 * with a source polling the simulator every second, runs in a subprocess with the flags of
 * run-flags.txt (so under ess's own V8 heap limits), and its memory is read from /proc:
 *
 * - `/metrics` latency on loopback over 2,000 requests after 200 to warm up: p50, p95, p99;
 * - RSS and peak RSS of the serving process over 20 s with no client, then over 20 s with the
 *   dashboard open (page and scripts loaded, a graph read, the event stream connected).
 *
 * `deno run -A tests/serve_bench.ts` runs it alone; it takes about a minute.
 *
 * @module
 */
import { startSimulator } from "../lib/sim/simulator.ts";
import { PERMISSIONS } from "./_cli.ts";

const REQUESTS = 2_000;
const WARMUP = 200;
const PHASE_MS = 20_000;

function write(text: string): void {
  Deno.stdout.writeSync(new TextEncoder().encode(text));
}

/** Resident and peak resident memory of a process, in MB. */
function memory(pid: number): { rssMb: number; peakMb: number } {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const kb = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(status)?.[1] ?? NaN);
  return { rssMb: kb("VmRSS") / 1024, peakMb: kb("VmHWM") / 1024 };
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/** Samples the process's memory every 500 ms for `ms`; the highest RSS and the last peak. */
async function watchMemory(pid: number, ms: number): Promise<{ rssMb: number; peakMb: number }> {
  let rssMb = 0;
  let peakMb = 0;
  const until = Date.now() + ms;
  while (Date.now() < until) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    const m = memory(pid);
    rssMb = Math.max(rssMb, m.rssMb);
    peakMb = m.peakMb;
  }
  return { rssMb, peakMb };
}

async function main(): Promise<void> {
  const sim = await startSimulator();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--no-prompt",
      ...PERMISSIONS,
      new URL("./_serve_child.ts", import.meta.url).pathname,
      sim.host,
      sim.password,
      sim.fingerprint,
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  try {
    write("ess serve benchmark: the server in a subprocess over the simulator\n");
    let url = "";
    while (!url.includes("\n")) url += (await reader.read()).value ?? "";
    url = url.trim();

    write(`  /metrics: ${REQUESTS} requests after ${WARMUP} to warm up ...\n`);
    const times: number[] = [];
    for (let i = 0; i < WARMUP + REQUESTS; i++) {
      const started = performance.now();
      const res = await fetch(`${url}/metrics`);
      await res.text();
      if (i >= WARMUP) times.push(performance.now() - started);
    }

    write(`  ${PHASE_MS / 1000} s with no client ...\n`);
    const idle = await watchMemory(child.pid, PHASE_MS);

    write(`  ${PHASE_MS / 1000} s with the dashboard open ...\n`);
    for (const path of ["/", "/app.js", "/chart.js", "/app.css", "/icon.svg", "/api/info"]) {
      await (await fetch(`${url}${path}`)).text();
    }
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
    const open = await watchMemory(child.pid, PHASE_MS);
    await stream.cancel();
    await reading.catch(() => {});

    const rows: [string, string, string][] = [
      ["/metrics latency p50", `${percentile(times, 50).toFixed(2)} ms`, ""],
      ["/metrics latency p95", `${percentile(times, 95).toFixed(2)} ms`, "< 5"],
      ["/metrics latency p99", `${percentile(times, 99).toFixed(2)} ms`, ""],
      ["highest RSS, no client", `${idle.rssMb.toFixed(1)} MB`, ""],
      ["highest RSS, dashboard open", `${open.rssMb.toFixed(1)} MB`, ""],
      [
        "RSS added by the open dashboard",
        `${(open.rssMb - idle.rssMb).toFixed(1)} MB`,
        "<= 5",
      ],
      ["peak RSS (VmHWM) at the end", `${open.peakMb.toFixed(1)} MB`, ""],
      ["event-stream bytes received", `${received}`, ""],
    ];
    write("\n");
    for (const [what, result, goal] of rows) {
      write(`${`${what} `.padEnd(36, ".")} ${result}${goal ? `  (goal ${goal})` : ""}\n`);
    }
  } finally {
    child.kill("SIGTERM");
    await reader.cancel().catch(() => {});
    await child.status;
    await sim.close();
  }
}

if (import.meta.main) await main();
