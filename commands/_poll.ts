/**
 * What the daemons `ess mqtt` and `ess serve` share: how often they poll, how far apart they
 * write controls, where they serve the dashboard and with which token, and how they run until a
 * signal. Everything a daemon does with the device goes through one poller and one control
 * queue over one session: the device lets one app session in at a time.
 *
 * @module
 */
import { sleep } from "../lib/backoff.ts";
import type { EssClient } from "../lib/device/client.ts";
import { ControlQueue, type ControlQueueOptions } from "../lib/device/control_queue.ts";
import { Poller, type PollerOptions } from "../lib/device/poller.ts";
import { MIN_POLL_SECONDS } from "../lib/device/states.ts";
import { WrongPasswordError } from "../lib/errors.ts";
import type { Logger } from "../lib/log.ts";
import { exposureNotice, type ListenAddress, parseListen } from "../lib/serve/listen.ts";
import { pollerSource } from "../lib/serve/poller_source.ts";
import { MIN_TOKEN_LENGTH, startServer } from "../lib/serve/server.ts";
import { errorAt, type Io, type OptionSpec, type Parsed } from "./_cli.ts";

/** Exit code for a wrong device password (EX_CONFIG): the systemd unit does not restart on it. */
export const EXIT_WRONG_PASSWORD = 78;

/** How often a daemon reads the device. */
export const POLL_OPTIONS = [
  {
    name: "interval-seconds",
    type: "string",
    arg: "SECONDS",
    help: `poll the device this often (at least ${MIN_POLL_SECONDS} s)`,
    default: "10",
    env: "ESS_INTERVAL_SECONDS",
    group: "Polling",
  },
  {
    name: "common-divisor",
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
export const CONTROL_OPTIONS = [
  {
    name: "control-spacing-seconds",
    type: "string",
    arg: "SECONDS",
    help: "write one control at most this often; commands in between merge, the latest wins",
    default: "2",
    env: "ESS_CONTROL_SPACING_SECONDS",
    group: "Controls",
  },
  {
    name: "active-spacing-seconds",
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
}

/**
 * {@link LISTEN_OPTION} and {@link CONTROL_TOKEN_OPTION}, checked; `undefined` when no listen
 * address is set. A bad address, or a token shorter than {@link MIN_TOKEN_LENGTH}, is a usage
 * error naming the option, or a config error naming the file and line.
 */
export function serveSettings(
  p: Parsed<"listen" | "control-token", never>,
): ServeSettings | undefined {
  const listen = p.get("listen");
  if (typeof listen?.value !== "string" || listen.value.trim() === "") return undefined;
  let address: ListenAddress;
  try {
    address = parseListen(listen.value);
  } catch (err) {
    throw errorAt(listen.origin, (err as Error).message);
  }
  const token = p.get("control-token");
  if (typeof token?.value !== "string" || token.value === "") {
    return { address, controlToken: undefined };
  }
  if (token.value.length < MIN_TOKEN_LENGTH) {
    throw errorAt(
      token.origin,
      `the control token has ${token.value.length} characters: use at least ` +
        `${MIN_TOKEN_LENGTH}, e.g. from 'openssl rand -hex 24'`,
    );
  }
  return { address, controlToken: token.value };
}

/** A daemon's device side: one poller and one control queue over one device session. */
export interface DeviceSide {
  poller: Poller;
  controls: ControlQueue;
}

/** The poller and the control queue over `client`, on the real clock. */
export function deviceSide(
  client: EssClient,
  settings: PollerOptions & ControlQueueOptions,
  logger: Logger,
): DeviceSide {
  const now = Date.now;
  const poller = new Poller({
    device: client,
    options: settings,
    logger,
    now,
    sleep,
    random: Math.random,
  });
  const controls = new ControlQueue({ poller, options: settings, logger, now, sleep });
  return { poller, controls };
}

/** What {@link startDashboard} serves, and for whom. */
export interface DashboardOptions {
  settings: ServeSettings;
  side: DeviceSide;
  /** The client the poller uses, for graphs. */
  client: EssClient;
  /** Passwords no answer may contain (the token is always one). */
  secrets: readonly (string | undefined)[];
  intervalMs: number;
  logger: Logger;
}

/** A server over a daemon's device side. */
export interface Dashboard {
  readonly url: string;
  /** Ends every event stream and stops serving; the device side runs on. */
  close(): Promise<void>;
}

/**
 * Serves the dashboard, the API and the metrics over a daemon's device side, and logs where,
 * with one more line saying who can reach it when that is not only this machine.
 */
export function startDashboard(options: DashboardOptions): Dashboard {
  const { settings, side, logger } = options;
  const source = pollerSource(side.poller, side.controls, options.client, { logger });
  let server: ReturnType<typeof startServer>;
  try {
    server = startServer(settings.address, {
      source,
      controlToken: settings.controlToken,
      secrets: options.secrets,
      intervalSeconds: options.intervalMs / 1000,
      logger,
    });
  } catch (err) {
    source.close();
    throw err;
  }
  logger.info(
    `serving the dashboard, the API and /metrics on ${server.url}` +
      (settings.controlToken === undefined ? " (read-only: no control token)" : ""),
  );
  const notice = exposureNotice(server.address, settings.controlToken !== undefined);
  if (notice !== undefined) logger.warning(notice);
  return {
    url: server.url,
    async close() {
      source.close();
      await server.close();
    },
  };
}

/**
 * Runs a daemon's `work` until SIGINT or SIGTERM aborts its signal; returns the exit code: 0
 * once stopped, {@link EXIT_WRONG_PASSWORD} (after one line on stderr) when the device refused
 * the password. However the device, the broker or an HTTP client hang, the signal ends it
 * within 2 s.
 */
export async function runDaemon(
  io: Io,
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
  return 0;
}
