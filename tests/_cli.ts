/**
 * Runs the `ess` CLI as its own process, from source, with exactly the flags of the compiled
 * binary (run-flags.txt), so that CLI tests exercise what users run.
 *
 * @module
 */
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../", import.meta.url));

/** The flags of the binary (permissions, V8 heap), read from run-flags.txt. */
export const PERMISSIONS: readonly string[] = (
  await Deno.readTextFile(new URL("../run-flags.txt", import.meta.url))
).trim().split(/\s+/);

/** What a CLI run left behind. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Options of {@link runCli} and {@link spawnCli}. */
export interface CliOptions {
  /** Extra environment variables. */
  env?: Record<string, string>;
  /** Run inside this network namespace (`ip netns exec`; needs root). */
  netns?: string;
  /** V8 flags added to the binary's (`--trace-gc`, for a benchmark that watches the heap). */
  v8Flags?: readonly string[];
}

const DENO_DIR = Deno.env.get("DENO_DIR") ?? `${Deno.env.get("HOME")}/.cache/deno`;
const PATH = Deno.env.get("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin";

function command(args: readonly string[], options: CliOptions): Deno.Command {
  const extra = options.v8Flags?.join(",");
  const flags = extra
    ? PERMISSIONS.map((f) => f.startsWith("--v8-flags=") ? `${f},${extra}` : f)
    : PERMISSIONS;
  const deno = [Deno.execPath(), "run", "--no-prompt", ...flags, "main.ts", ...args];
  const [program, ...rest] = options.netns ? ["ip", "netns", "exec", options.netns, ...deno] : deno;
  return new Deno.Command(program!, {
    args: rest,
    cwd: ROOT,
    // Nothing of the caller's (ESS_* variables, ~/.essmqtt.conf) may leak into a test.
    clearEnv: true,
    env: { HOME: "/nonexistent", DENO_DIR, PATH, TZ: "UTC", NO_COLOR: "1", ...options.env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
}

/**
 * Runs `ess <args>` to the end and returns its exit code and output.
 *
 * @example
 * ```ts ignore
 * const { code, stdout } = await runCli(["data", "--host", sim.host, "--password", sim.password]);
 * ```
 */
export async function runCli(
  args: readonly string[],
  options: CliOptions = {},
): Promise<CliResult> {
  const output = await command(args, options).output();
  const text = new TextDecoder();
  return {
    code: output.code,
    stdout: text.decode(output.stdout),
    stderr: text.decode(output.stderr),
  };
}

/** Starts `ess <args>` without waiting, for long-running commands; stdout and stderr piped. */
export function spawnCli(args: readonly string[], options: CliOptions = {}): Deno.ChildProcess {
  return command(args, options).spawn();
}

/** A long-running `ess` whose stderr is collected as it comes. */
export interface Daemon {
  readonly child: Deno.ChildProcess;
  /** Everything it wrote to stderr so far. */
  readonly stderr: string;
  /** Waits for stderr to match `pattern`; throws with what it wrote after `timeoutMs`. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
  /**
   * Sends `signal` (once) and waits for the exit: its code, the ms from the signal to the exit,
   * and all of stderr.
   */
  stop(signal?: Deno.Signal): Promise<{ code: number; ms: number; stderr: string }>;
}

/**
 * Starts `ess <args>` like {@link spawnCli}, reading its stderr all along (so that it never
 * blocks on a full pipe) and discarding its stdout.
 *
 * @example
 * ```ts ignore
 * const ess = spawnDaemon(["serve", "--listen", "127.0.0.1:0", ...]);
 * const [, url] = await ess.waitFor(/ on (http:\S+)/);
 * const { code } = await ess.stop();
 * ```
 */
export function spawnDaemon(args: readonly string[], options: CliOptions = {}): Daemon {
  const child = spawnCli(args, options);
  let stderr = "";
  void child.stdout.cancel();
  const reading = child.stderr.pipeThrough(new TextDecoderStream()).pipeTo(
    new WritableStream({ write: (text) => void (stderr += text) }),
  );
  let stopped: Promise<{ code: number; ms: number; stderr: string }> | undefined;
  return {
    child,
    get stderr() {
      return stderr;
    },
    async waitFor(pattern, timeoutMs = 20_000) {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const match = pattern.exec(stderr);
        if (match) return match;
        if (Date.now() > until) {
          throw new Error(`ess wrote nothing matching ${pattern} in ${timeoutMs} ms:\n${stderr}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    },
    stop(signal = "SIGTERM") {
      stopped ??= (async () => {
        const started = performance.now();
        try {
          child.kill(signal);
        } catch {
          // It has exited already.
        }
        const { code } = await child.status;
        const ms = performance.now() - started;
        await reading;
        return { code, ms, stderr };
      })();
      return stopped;
    },
  };
}
