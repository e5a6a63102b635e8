/**
 * Feeding Graphite (carbon's plaintext protocol, `<path> <value> <unix-seconds>\n`) with the
 * device's `home` and `common` states under pyess's metric names (`home.statistics.load_power`,
 * `common.BATT.soc`). The metric building is pure; the senders (graphite_senders.ts) keep one TCP
 * connection or send UDP datagrams; the loop survives both an unreachable device and an unreachable server, with
 * capped, jittered back-off, logging once per change of state.
 *
 * @module
 */
import { Backoff, DEVICE_MAX_BACKOFF_MS, sleep as realSleep, unlessAborted } from "../backoff.ts";
import {
  EssError,
  LoginPathNotFoundError,
  PinMismatchError,
  WrongPasswordError,
} from "../errors.ts";
import { flattenInstalled, type JsonObject } from "../device/flatten.ts";
import { reportedWordValue } from "../device/vocabulary.ts";
import { type Logger, silentLogger } from "../log.ts";
import { type MetricSender, reason, TcpSender, UdpSender } from "./graphite_senders.ts";
import type { StateName } from "../device/states.ts";

/** The states sent to Graphite: pyess's `home.*` and `common.*` metrics. */
export const METRIC_STATES = ["home", "common"] as const;
/** Carbon's plaintext port, for TCP and UDP alike. */
export const DEFAULT_GRAPHITE_PORT = 2003;
/** The transports carbon's plaintext protocol runs on. */
export const GRAPHITE_PROTOCOLS = ["tcp", "udp"] as const;
/** One of {@link GRAPHITE_PROTOCOLS}. */
export type GraphiteProtocol = typeof GRAPHITE_PROTOCOLS[number];

/**
 * A metric path node made of safe characters only: anything outside `[A-Za-z0-9_-]` (dots,
 * spaces, slashes) becomes `_`, so a key can never add a level or break a line.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * equal(metricNode("pv1 voltage/V"), "pv1_voltage_V");
 * ```
 */
export function metricNode(text: string): string {
  return text.replace(/[^A-Za-z0-9_-]/g, "_") || "_";
}

const NUMBER = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/;

/**
 * The longest metric path taken from the device (`home.statistics.load_power`, the prefix not
 * counted). Its own names are under 60 characters; carbon cannot store a much longer one (each
 * level is a file name of at most 255 bytes), drops a TCP connection over a line of 16 kB, and
 * a line has to fit one datagram.
 */
export const MAX_METRIC_PATH = 200;

/**
 * The number a device value stands for: numbers as they are (`"26.500000"` -> 26.5), `on`,
 * `start`, `true` -> 1 and `off`, `stop`, `false` -> 0; anything else (`""`, `pcs_ok`, a brand
 * name) is `undefined` and not sent.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * deepEqual(["229.600000", "on", "pcs_ok"].map(metricValue), [229.6, 1, undefined]);
 * ```
 */
export function metricValue(text: string): number | undefined {
  const t = text.trim();
  if (NUMBER.test(t)) {
    const n = Number(t);
    return Number.isFinite(n) ? n : undefined;
  }
  return reportedWordValue(t);
}

/**
 * One plaintext line per numeric leaf of each state: `[<prefix>.]<state>.<group>.<key> <value>
 * <timestamp>\n`. The prefix may have several dot-separated levels; each is made safe. A leaf
 * whose path passes {@link MAX_METRIC_PATH} characters is left out, so that one odd key cannot
 * cost the others their batch.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * deepEqual(metricLines({ home: { statistics: { load_power: "376" } } }, 1700000000, "house"), [
 *   "house.home.statistics.load_power 376 1700000000\n",
 * ]);
 * ```
 */
export function metricLines(
  states: Readonly<Record<string, JsonObject>>,
  timestamp: number,
  prefix?: string,
): string[] {
  const head = (prefix ?? "").split(".").filter((n) => n !== "").map(metricNode);
  const lines: string[] = [];
  for (const [state, answer] of Object.entries(states)) {
    for (const { path, value } of flattenInstalled(answer, [state])) {
      const number = metricValue(value);
      if (number === undefined) continue;
      const name = path.map(metricNode).join(".");
      if (name.length > MAX_METRIC_PATH) continue;
      lines.push(`${[...head, name].join(".")} ${number} ${timestamp}\n`);
    }
  }
  return lines;
}

/** The sender for `protocol`. */
export function createSender(
  protocol: GraphiteProtocol,
  hostname: string,
  port: number,
): MetricSender {
  return protocol === "udp" ? new UdpSender({ hostname, port }) : new TcpSender({ hostname, port });
}

/** What the loop needs of the device: {@link EssClient} has it. */
export interface StateReader {
  readonly host: string;
  read(state: StateName): Promise<JsonObject>;
}

/**
 * Whether the Graphite server takes metrics, as the loops that send to it learn: one warning
 * when batches start being dropped, one line when it takes them again, however many loops (one
 * per device) send through the same connection.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { createLogger } from "../log.ts";
 * const lines: string[] = [];
 * const health = new SenderHealth(createLogger("info", (line) => lines.push(line)));
 * health.failed(new Error("Connection refused"));
 * health.failed(new Error("Connection refused"));
 * health.delivered(true, "tcp://graphite.lan:2003");
 * deepEqual(lines, [
 *   "warning: Connection refused; dropping metrics until it is back",
 *   "info: Graphite tcp://graphite.lan:2003 takes metrics again (2 batches dropped)",
 * ]);
 * ```
 */
export class SenderHealth {
  #log: Logger;
  #down = false;
  #dropped = 0;

  constructor(log: Logger) {
    this.#log = log;
  }

  /** A batch was dropped: the first of an outage is reported. */
  failed(err: unknown): void {
    this.#dropped++;
    if (this.#down) return;
    this.#log.warning(
      `${err instanceof EssError ? err.message : reason(err)}; dropping metrics until it is back`,
    );
    this.#down = true;
  }

  /**
   * A batch went out; `taking` says whether the server is known to take metrics (see
   * {@link MetricSender.send}), which alone ends an outage.
   */
  delivered(taking: boolean, target: string): void {
    if (!this.#down || !taking) return;
    this.#log.info(`Graphite ${target} takes metrics again (${this.#dropped} batches dropped)`);
    this.#down = false;
    this.#dropped = 0;
  }
}

/** Options of {@link runGraphite}. */
export interface GraphiteLoopOptions {
  device: StateReader;
  sender: MetricSender;
  /** Metric path prefix (`house1` -> `house1.home.statistics.load_power`). */
  prefix?: string | undefined;
  /** One cycle every this many ms. */
  intervalMs: number;
  /**
   * One cycle, then return once the server confirmed it read the batch
   * ({@link MetricSender.finish}); any failure is thrown instead of retried.
   */
  once?: boolean | undefined;
  logger?: Logger | undefined;
  /** Clock in ms (timestamps and cycle timing). */
  now?: (() => number) | undefined;
  sleep?: ((ms: number, signal: AbortSignal) => Promise<void>) | undefined;
  random?: (() => number) | undefined;
  /** Stops the loop (between cycles, or while it waits). */
  signal?: AbortSignal | undefined;
  /** Longest wait between device retries, in ms (default 1 min). */
  maxBackoffMs?: number | undefined;
  /**
   * Where the server's outages are reported, for loops that share one sender (default: this
   * loop's own, on its logger).
   */
  senderHealth?: SenderHealth | undefined;
}

/** Errors that retrying cannot fix: they end the loop if the very first cycle meets them. */
const isFatal = (err: unknown) =>
  err instanceof WrongPasswordError || err instanceof LoginPathNotFoundError ||
  err instanceof PinMismatchError;

/**
 * Reads `home` and `common` every `intervalMs` and sends one batch of metrics per cycle. An
 * unreachable device is retried with capped, jittered back-off (the client logs in again by
 * itself); a batch the server does not take is dropped. Each logs one line when it starts
 * failing and one when it recovers, never one per cycle. Returns when `signal` aborts.
 *
 * @example
 * ```ts ignore
 * await runGraphite({ device: client, sender: new TcpSender({ hostname: "graphite", port: 2003 }), intervalMs: 10_000 });
 * ```
 */
export async function runGraphite(options: GraphiteLoopOptions): Promise<void> {
  const log = options.logger ?? silentLogger;
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? realSleep;
  const signal = options.signal ?? new AbortController().signal;
  const { device, sender } = options;
  const backoff = new Backoff({
    baseMs: options.intervalMs,
    maxMs: Math.max(options.intervalMs, options.maxBackoffMs ?? DEVICE_MAX_BACKOFF_MS),
    random: options.random,
  });
  const senderHealth = options.senderHealth ?? new SenderHealth(log);
  let cycles = 0;
  let deviceDown = false;

  while (!signal.aborted) {
    const started = now();
    const states: Record<string, JsonObject> = {};
    try {
      for (const state of METRIC_STATES) {
        const answer = await unlessAborted(device.read(state), signal, undefined);
        if (answer === undefined || signal.aborted) return;
        states[state] = answer;
      }
    } catch (err) {
      if (signal.aborted) return;
      if (options.once || (cycles === 0 && isFatal(err))) throw err;
      const wait = backoff.next();
      const why = err instanceof EssError ? err.message : `unexpected: ${reason(err)}`;
      if (!deviceDown) {
        log.warning(`${why}; retrying with back-off (at most every ${backoffCap(options)})`);
        deviceDown = true;
      } else log.debug(`device still failing (${why}); next try in ${Math.round(wait / 1000)} s`);
      await sleep(wait, signal);
      continue;
    }
    cycles++;
    backoff.reset();
    if (deviceDown) {
      log.info(`device ${device.host} answers again`);
      deviceDown = false;
    }

    const lines = metricLines(states, Math.floor(now() / 1000), options.prefix);
    try {
      const taking = await sender.send(lines);
      if (options.once) {
        await sender.finish();
        log.debug(`delivered ${lines.length} metrics to ${sender.target}`);
        return;
      }
      log.debug(`sent ${lines.length} metrics to ${sender.target}`);
      // Only a connection that has carried a batch and is still open counts as a recovery: a
      // server that takes connections and drops them is one outage, not one per connection.
      senderHealth.delivered(taking, sender.target);
    } catch (err) {
      if (options.once) throw err;
      senderHealth.failed(err);
    }
    if (options.once) return;
    await sleep(Math.max(0, options.intervalMs - (now() - started)), signal);
  }
}

function backoffCap(options: GraphiteLoopOptions): string {
  const ms = Math.max(options.intervalMs, options.maxBackoffMs ?? DEVICE_MAX_BACKOFF_MS);
  return ms % 60_000 === 0 ? `${ms / 60_000} min` : `${Math.round(ms / 1000)} s`;
}
