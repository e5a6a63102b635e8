/**
 * What the process benchmarks share: `ess` as a subprocess with the flags of run-flags.txt (so
 * under the binary's own V8 heap limits), its CPU time and memory from /proc, and the statistics
 * they report.
 *
 * @module
 */
import { PERMISSIONS } from "./_cli.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;

/** Clock ticks per second of /proc's CPU times (`getconf CLK_TCK`). */
export async function clockTicks(): Promise<number> {
  const getconf = await new Deno.Command("getconf", { args: ["CLK_TCK"] }).output();
  return Number(new TextDecoder().decode(getconf.stdout).trim()) || 100;
}

/** CPU seconds (user + system, all threads), resident and peak resident memory in MB. */
export function sample(
  pid: number,
  ticksPerSecond = 100,
): { cpu: number; rssMb: number; peakMb: number } {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const cpu = (Number(fields[11]) + Number(fields[12])) / ticksPerSecond;
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const kb = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(status)?.[1] ?? NaN);
  return { cpu, rssMb: kb("VmRSS") / 1024, peakMb: kb("VmHWM") / 1024 };
}

/** Starts `ess <args>` from source with the binary's flags; stdout dropped, stderr shown. */
export function spawnEss(args: readonly string[]): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-prompt", ...PERMISSIONS, MAIN, ...args],
    stdin: "null",
    stdout: "null",
    stderr: "inherit",
  }).spawn();
}

/** Stops an `ess` subprocess as systemd would, and waits for it. */
export async function stopEss(child: Deno.ChildProcess): Promise<void> {
  child.kill("SIGTERM");
  await child.status;
}

/** The value at percentile `p` of ascending `sorted` values. */
export function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

/** The median (the upper one of an even count). */
export function median(values: readonly number[]): number {
  return [...values].sort((a, b) => a - b)[values.length >> 1]!;
}

/** Waits `ms`. */
export const pause = (ms: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, ms));

/** Writes to stdout at once (no buffering, no newline added). */
export function write(text: string): void {
  Deno.stdout.writeSync(new TextEncoder().encode(text));
}

/** Prints a result table: measure, result, goal. */
export function writeTable(rows: readonly (readonly [string, string, string])[]): void {
  const w0 = Math.max(...rows.map((r) => r[0].length));
  const w1 = Math.max(...rows.map((r) => r[1].length));
  write(`\n${"measure".padEnd(w0)}  ${"result".padStart(w1)}  goal\n`);
  for (const [what, result, goal] of rows) {
    write(`${what.padEnd(w0)}  ${result.padStart(w1)}  ${goal}\n`);
  }
}
