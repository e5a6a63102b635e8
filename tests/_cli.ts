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
