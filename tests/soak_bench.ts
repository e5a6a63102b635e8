/**
 * Soak of `ess mqtt` (`deno task soak`): the real CLI as a subprocess with the binary's flags, at
 * its shortest interval (1 s), against the simulator with a device that sends a new key every
 * poll, and a burst of commands every minute (200 alternating start/stop and winter mode
 * on/off, over MQTT). It reports the process's memory over time, the device writes each burst
 * caused, and whether the device ended in the state of the last command.
 *
 * `deno run -A tests/soak_bench.ts [MINUTES] [BURST]` (default 10 minutes, 200 commands). The
 * broker is mosquitto when installed (a process of its own, like a real one), else aedes.
 *
 * @module
 */
import mqtt from "mqtt";
import { STATE_PATHS } from "../lib/device/states.ts";
import { startSimulator } from "../lib/sim/simulator.ts";
import { mosquittoPath, startAedes, startMosquitto, watch } from "./_broker.ts";
import { spawnCli } from "./_cli.ts";
import { controlRequests, worldArgs } from "./_world.ts";

function write(text: string): void {
  Deno.stdout.writeSync(new TextEncoder().encode(text));
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Resident and peak memory of a process, in MB, from /proc. */
function memory(pid: number): { rssMb: number; peakMb: number } {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const kb = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(status)?.[1] ?? NaN);
  return { rssMb: kb("VmRSS") / 1024, peakMb: kb("VmHWM") / 1024 };
}

/** Every line a stream carries, kept in `lines` as they come. */
async function collectLines(stream: ReadableStream<Uint8Array>, lines: string[]): Promise<void> {
  let rest = "";
  for await (const text of stream.pipeThrough(new TextDecoderStream())) {
    const parts = (rest + text).split("\n");
    rest = parts.pop()!;
    lines.push(...parts);
  }
  if (rest !== "") lines.push(rest);
}

/** The burst of minute `k`: commands alternating between the two controls and their values. */
function burst(k: number, size: number): { topic: string; payload: string }[] {
  return Array.from({ length: size }, (_, i) => ({
    topic: i % 2 === 0 ? "ess/control/active" : "ess/control/winter_mode",
    payload: (k + (i >> 1)) % 2 === 0 ? "true" : "false",
  }));
}

if (import.meta.main) {
  const minutes = Number(Deno.args[0] ?? 10);
  const size = Number(Deno.args[1] ?? 200);
  let newKeys = 0;
  const sim = await startSimulator({
    // A device that sends a key it never sent before with every answer of home.
    extraKeys: (state) =>
      state === "home" ? { soak: { [`key_${newKeys++}`]: String(newKeys) } } : undefined,
  });
  const broker = mosquittoPath() ? await startMosquitto() : await startAedes();
  const watcher = await watch(broker.url);
  const commander = await mqtt.connectAsync(broker.url, { clientId: "soak-commander" });
  const stderr: string[] = [];
  // V8's trace of its collections comes on stdout (ess mqtt writes nothing else there): the
  // heap left after each full collection is what ess really holds.
  const child = spawnCli(["mqtt", ...worldArgs({ sim, broker }), "--interval-seconds", "1"], {
    v8Flags: ["--trace-gc"],
  });
  const stdout: string[] = [];
  const reading = Promise.all([
    collectLines(child.stderr, stderr),
    collectLines(child.stdout, stdout),
  ]);
  const started = performance.now();
  const elapsed = () => (performance.now() - started) / 1000;
  const samples: { at: number; rssMb: number }[] = [];
  const bursts: { minute: number; writes: string[]; expected: string; actual: string }[] = [];
  /** The control requests at the device from `from` on, each with its time since `since`. */
  const watchWrites = async (from: number, since: number, ms: number) => {
    const writes: string[] = [];
    for (let at = from, until = since + ms; performance.now() < until; await pause(50)) {
      const seconds = ((performance.now() - since) / 1000).toFixed(1);
      for (const request of controlRequests(sim, at)) writes.push(`+${seconds} s ${request}`);
      at = sim.requests.length;
    }
    return writes;
  };

  try {
    write(
      `ess mqtt soak: ${minutes} min at a 1 s interval, simulator with a new key every poll, ` +
        `${broker.name}, a burst of ${size} commands every minute\n`,
    );
    await watcher.until(
      () => watcher.last.get("ess/status")?.payload === "online",
      "online",
      30_000,
    );
    const sampler = setInterval(() => {
      samples.push({ at: elapsed(), ...memory(child.pid) });
    }, 10_000);
    try {
      for (let minute = 1; minute < minutes; minute++) {
        await pause(minute * 60_000 - elapsed() * 1000);
        const before = sim.requests.length;
        const commands = burst(minute, size);
        const sent = performance.now();
        // The active spacing is 30 s: the last write of the burst comes within about 35 s.
        const watching = watchWrites(before, sent, 45_000);
        await Promise.all(
          commands.map((c) => commander.publishAsync(c.topic, c.payload, { qos: 1 })),
        );
        const publishedMs = performance.now() - sent;
        const last = (topic: string) => commands.findLast((c) => c.topic === topic)!.payload;
        const expected = `operation ${last("ess/control/active") === "true" ? "start" : "stop"}, ` +
          `winter mode ${last("ess/control/winter_mode") === "true" ? "on" : "off"}`;
        const writes = await watching;
        const actual = `operation ${sim.device.operation}, ` +
          `winter mode ${sim.device.winterMode ? "on" : "off"}`;
        bursts.push({ minute, writes, expected, actual });
        write(
          `  minute ${minute}: ${size} commands published in ${publishedMs.toFixed(0)} ms, ` +
            `${writes.length} writes, ${actual}` +
            `${actual === expected ? "" : ` (last command: ${expected})`}, RSS ${
              samples.at(-1)?.rssMb.toFixed(1)
            } MB\n`,
        );
        for (const w of writes) write(`      ${w}\n`);
      }
      await pause(minutes * 60_000 - elapsed() * 1000);
    } finally {
      clearInterval(sampler);
    }
    const end = memory(child.pid);
    child.kill("SIGTERM");
    const signalled = performance.now();
    await child.status;
    const exitMs = performance.now() - signalled;
    await reading;
    await watcher.until(() => watcher.last.get("ess/status")?.payload === "offline", "offline");

    const polls = sim.requests.filter((r) => r.path === STATE_PATHS.home).length;
    const warmedUp = samples.filter((s) => s.at >= 120);
    const rss = warmedUp.map((s) => s.rssMb);
    const levels = (level: string) => stderr.filter((l) => l.startsWith(`ess: ${level}:`)).length;
    const fullCollections = stdout.filter((l) => /Mark-Compact/.test(l))
      .map((l) => /-> ([\d.]+) \(/.exec(l)?.[1] ?? "?");
    const rows: [string, string][] = [
      ["polls (home reads)", String(polls)],
      ["new device keys sent", String(newKeys)],
      [
        "RSS every minute (MB)",
        samples.filter((_, i) => i % 6 === 5).map((s) => s.rssMb.toFixed(1)).join(" / "),
      ],
      [
        "RSS after 2 min warm-up: min / max (MB)",
        rss.length === 0
          ? "(a run of 2 min or less)"
          : `${Math.min(...rss).toFixed(1)} / ${Math.max(...rss).toFixed(1)}`,
      ],
      ["peak RSS (MB)", end.peakMb.toFixed(1)],
      [
        "V8 heap after each full collection (MB)",
        fullCollections.length === 0 ? "no full collection" : fullCollections.join(" / "),
      ],
      ["device writes per burst", bursts.map((b) => b.writes.length).join(" / ")],
      [
        "state equal to the last command",
        `${bursts.filter((b) => b.actual === b.expected).length} of ${bursts.length} bursts`,
      ],
      [
        "log lines: info / warning / error",
        `${levels("info")} / ${levels("warning")} / ${levels("error")}`,
      ],
      ["exit after SIGTERM (ms)", exitMs.toFixed(0)],
    ];
    const w0 = Math.max(...rows.map((r) => r[0].length));
    write(`\n${"measure".padEnd(w0)}  result\n`);
    for (const [what, result] of rows) write(`${what.padEnd(w0)}  ${result}\n`);
    const summaries = stderr.filter((l) => / commands in \d+ s: /.test(l));
    write(`\nburst summaries in ess's log (${summaries.length}):\n`);
    for (const line of summaries.slice(0, 3)) write(`  ${line}\n`);
    const warnings = stderr.filter((l) => l.startsWith("ess: warning:"));
    if (warnings.length > 0) {
      write(`warnings in ess's log (first 5):\n`);
      for (const line of warnings.slice(0, 5)) write(`  ${line}\n`);
    }
  } finally {
    try {
      child.kill("SIGKILL");
    } catch {
      // Ended already.
    }
    await commander.endAsync();
    await watcher.close();
    await broker.close();
    await sim.close();
  }
}
