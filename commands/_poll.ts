/**
 * What the daemons `ess mqtt` and `ess serve` share: how often they poll, how far apart they
 * write controls, where they serve the dashboard and with which token, and how they run until a
 * signal. The server itself is in `_serve.ts`, which `ess mqtt` loads only when it serves.
 *
 * @module
 */
import type { ControlQueueOptions } from "../lib/device/control_queue.ts";
import type { PollerOptions } from "../lib/device/poller.ts";
import { MIN_POLL_SECONDS } from "../lib/device/states.ts";
import { WrongPasswordError } from "../lib/errors.ts";
import {
  type ListenAddress,
  MIN_TOKEN_LENGTH,
  parseListen,
  tokenProblem,
} from "../lib/serve/listen.ts";
import { parseAllowedHosts } from "../lib/serve/hosts.ts";
import { errorAt, type Io, type OptionSpec, type Parsed } from "./_cli.ts";
import type { Logger } from "../lib/log.ts";

/** Exit code for a wrong device password (EX_CONFIG): the systemd unit does not restart on it. */
export const EXIT_WRONG_PASSWORD = 78;

/** How often a daemon reads the device. */
const POLL_OPTIONS = [
  {
    name: "interval-seconds",
    perDevice: true,
    type: "string",
    arg: "SECONDS",
    help: `poll the device this often (at least ${MIN_POLL_SECONDS} s)`,
    default: "10",
    env: "ESS_INTERVAL_SECONDS",
    group: "Polling",
  },
  {
    name: "common-divisor",
    perDevice: true,
    type: "string",
    arg: "N",
    help: "read common (PV, BATT, GRID, LOAD, PCS) only every N-th poll; " +
      "batt (the settings) is read with it about once a minute",
    default: "1",
    env: "ESS_COMMON_DIVISOR",
    group: "Polling",
  },
] as const satisfies readonly OptionSpec[];

/** How far apart a daemon writes one control, however fast commands come. */
const CONTROL_OPTIONS = [
  {
    name: "control-spacing-seconds",
    perDevice: true,
    type: "string",
    arg: "SECONDS",
    help: "write one control at most this often; commands in between merge, the latest wins",
    default: "2",
    env: "ESS_CONTROL_SPACING_SECONDS",
    group: "Controls",
  },
  {
    name: "active-spacing-seconds",
    perDevice: true,
    type: "string",
    arg: "SECONDS",
    help: "the same for active (starting and stopping the system)",
    default: "30",
    env: "ESS_ACTIVE_SPACING_SECONDS",
    group: "Controls",
  },
] as const satisfies readonly OptionSpec[];

/** `--listen`: where to serve the dashboard, the API and the metrics. */
export const LISTEN_OPTION = {
  name: "listen",
  type: "string",
  arg: "ADDR:PORT",
  help: "serve the dashboard, the JSON/SSE API and /metrics on ADDR:PORT (as 'ess serve' " +
    "does), from this process and its one device session: 127.0.0.1:8080 for this machine " +
    "only, 0.0.0.0:8080 for every machine that can reach it",
  env: "ESS_LISTEN",
  group: "Dashboard and API",
} as const satisfies OptionSpec;

/** `--control-token`: the bearer token that allows controls over HTTP. */
export const CONTROL_TOKEN_OPTION = {
  name: "control-token",
  type: "string",
  arg: "TOKEN",
  help: "allow the dashboard's controls and POST /api/control with this bearer token (at " +
    `least ${MIN_TOKEN_LENGTH} characters, e.g. from 'openssl rand -hex 24'); without it, ` +
    "the page and the API are read-only; better from ESS_CONTROL_TOKEN or the config file, " +
    "which ps does not show",
  env: "ESS_CONTROL_TOKEN",
  group: "Dashboard and API",
} as const satisfies OptionSpec;

/** `--allowed-clients`: the only IP addresses the server takes requests from. */
export const ALLOWED_CLIENTS_OPTION = {
  name: "allowed-clients",
  type: "string",
  arg: "IP,...",
  help: "take requests only from these IP addresses, comma-separated (the Home Assistant " +
    "add-on: 172.30.32.2, the Supervisor's ingress proxy); others get 403, but for /healthz " +
    "(default: every client)",
  env: "ESS_ALLOWED_CLIENTS",
  group: "Dashboard and API",
} as const satisfies OptionSpec;

/** `--allowed-hosts`: the names a reverse proxy or an ingress reaches the server by. */
export const ALLOWED_HOSTS_OPTION = {
  name: "allowed-hosts",
  type: "string",
  arg: "NAMES",
  help: "answer requests for these host names too (comma-separated; '*' for any), besides " +
    "localhost, IP addresses, the --listen name and this machine's names: the names a " +
    "reverse proxy reaches ess by; a request for any other name gets 421 (against DNS " +
    "rebinding)",
  env: "ESS_ALLOWED_HOSTS",
  group: "Dashboard and API",
} as const satisfies OptionSpec;

/** What both daemons take about the device: polling, then control spacing. */
export const DAEMON_OPTIONS = [
  ...POLL_OPTIONS,
  ...CONTROL_OPTIONS,
] as const satisfies readonly OptionSpec[];

/** `ess mqtt`'s serving options: off unless `--listen` is given. */
export const SERVE_OPTIONS = [
  LISTEN_OPTION,
  CONTROL_TOKEN_OPTION,
  ALLOWED_CLIENTS_OPTION,
  ALLOWED_HOSTS_OPTION,
] as const satisfies readonly OptionSpec[];

/** How a daemon polls and spaces its writes. */
export interface PollSettings extends PollerOptions, ControlQueueOptions {
  intervalMs: number;
  commonDivisor: number;
  controlSpacingMs: number;
  activeSpacingMs: number;
}

/** {@link POLL_OPTIONS} and {@link CONTROL_OPTIONS}, checked. */
export function pollSettings(
  p: Parsed<
    "interval-seconds" | "common-divisor" | "control-spacing-seconds" | "active-spacing-seconds",
    never
  >,
): PollSettings {
  return {
    intervalMs: (p.seconds("interval-seconds", MIN_POLL_SECONDS) ?? 10) * 1000,
    commonDivisor: p.integer("common-divisor", 1, 10_000) ?? 1,
    controlSpacingMs: (p.seconds("control-spacing-seconds") ?? 2) * 1000,
    activeSpacingMs: (p.seconds("active-spacing-seconds") ?? 30) * 1000,
  };
}

/** Where to serve, and the token controls need. */
export interface ServeSettings {
  address: ListenAddress;
  /** `undefined`: controls are off. */
  controlToken: string | undefined;
  /** The only clients served; `undefined`: every client. */
  allowedClients: readonly string[] | undefined;
  /** Host names answered besides the server's own (`--allowed-hosts`). */
  allowedHosts: string[];
}

/** Whether `text` is an IPv4 address (four numbers to 255) or an IPv6 one (hex and colons). */
function isIpAddress(text: string): boolean {
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (v4) return v4.slice(1).every((n) => Number(n) <= 255);
  return text.includes(":") && /^[0-9A-Fa-f:.]{2,45}$/.test(text);
}

/** {@link ALLOWED_CLIENTS_OPTION}, checked: a list of IP addresses, or `undefined`. */
function allowedClients(p: Parsed<"allowed-clients", never>): string[] | undefined {
  const option = p.get("allowed-clients");
  if (typeof option?.value !== "string" || option.value.trim() === "") return undefined;
  const list = option.value.split(",").map((ip) => ip.trim()).filter((ip) => ip !== "");
  const bad = list.find((ip) => !isIpAddress(ip));
  if (bad !== undefined) {
    throw errorAt(
      option.origin,
      `allowed-clients takes IP addresses, comma-separated (e.g. 172.30.32.2,127.0.0.1), ` +
        `not ${JSON.stringify(bad.slice(0, 50))}`,
    );
  }
  return list;
}

/**
 * {@link LISTEN_OPTION} and {@link CONTROL_TOKEN_OPTION}, checked; `undefined` when no listen
 * address is set. A bad address, or a token shorter than {@link MIN_TOKEN_LENGTH}, is a usage
 * error naming the option, or a config error naming the file and line.
 */
export function serveSettings(
  p: Parsed<"listen" | "control-token" | "allowed-clients" | "allowed-hosts", never>,
): ServeSettings | undefined {
  const listen = p.get("listen");
  if (typeof listen?.value !== "string" || listen.value.trim() === "") return undefined;
  let address: ListenAddress;
  try {
    address = parseListen(listen.value);
  } catch (err) {
    throw errorAt(listen.origin, (err as Error).message);
  }
  const allowed = allowedClients(p);
  const hosts = p.get("allowed-hosts");
  let allowedHosts: string[] = [];
  try {
    if (typeof hosts?.value === "string") allowedHosts = parseAllowedHosts(hosts.value);
  } catch (err) {
    throw errorAt(hosts!.origin, (err as Error).message);
  }
  const token = p.get("control-token");
  if (typeof token?.value !== "string" || token.value === "") {
    return { address, controlToken: undefined, allowedClients: allowed, allowedHosts };
  }
  const problem = tokenProblem(token.value);
  if (problem !== undefined) throw errorAt(token.origin, problem);
  return { address, controlToken: token.value, allowedClients: allowed, allowedHosts };
}

/**
 * Runs a daemon's `work` until SIGINT or SIGTERM aborts its signal; returns the exit code: 0
 * once stopped (and `log` says so), {@link EXIT_WRONG_PASSWORD} (after one line on stderr) when the device refused
 * the password. However the device, the broker or an HTTP client hang, the signal ends it
 * within 2 s.
 */
export async function runDaemon(
  io: Io,
  log: Logger,
  work: (signal: AbortSignal) => Promise<void>,
): Promise<number> {
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  const signals = ["SIGINT", "SIGTERM"] as const;
  for (const signal of signals) Deno.addSignalListener(signal, onSignal);
  let deadline: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      work(stop.signal),
      new Promise<void>((resolve) => {
        stop.signal.addEventListener("abort", () => deadline = setTimeout(resolve, 1500), {
          once: true,
        });
      }),
    ]);
  } catch (err) {
    if (!(err instanceof WrongPasswordError)) throw err;
    io.err(`ess: ${err.message}\n`);
    return EXIT_WRONG_PASSWORD;
  } finally {
    clearTimeout(deadline);
    for (const signal of signals) Deno.removeSignalListener(signal, onSignal);
  }
  if (stop.signal.aborted) log.info("stopped");
  return 0;
}
