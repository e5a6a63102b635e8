/**
 * The {@link ServeSource} over the device side the daemons already run: the poller's latest
 * answers and poll events, graph reads through the poller's one device queue, and commands
 * through the control queue. `ess serve` and `ess mqtt --listen` both serve through it, so that
 * the dashboard, the API and the MQTT bridge share one device session: the device lets one app
 * session in at a time, and a second login would knock the first one out.
 *
 * @module
 */
import type { GraphAnswer } from "../device/client.ts";
import type { ControlQueue } from "../device/control_queue.ts";
import type { Poller, PollEvent } from "../device/poller.ts";
import type { CalendarDate, GraphDevice, GraphSpan } from "../device/states.ts";
import { errorText } from "../errors.ts";
import { type Logger, silentLogger } from "../log.ts";
import type { ServeSnapshot, ServeSource } from "./source.ts";
import type { SurplusDocument } from "../surplus/report.ts";

/**
 * The states the server shows. Never `network`: it holds the device's Wi-Fi settings, and the
 * server has no use for them.
 */
const SERVED_STATES = ["home", "common", "batt", "systeminfo"] as const;

/** After a failed systeminfo read, polls wait this long before one tries again, in ms. */
const SYSTEMINFO_RETRY_MS = 60_000;

/** What the source needs of the poller. */
export type SourcePoller = Pick<
  Poller,
  "latest" | "listen" | "read" | "exclusive" | "up" | "lastError" | "lastSuccessAt" | "reading"
>;

/** What the source needs of the device besides the poller: its graphs. */
export interface GraphClient {
  graph(device: GraphDevice, span: GraphSpan, date: CalendarDate): Promise<GraphAnswer>;
}

/** Options of {@link pollerSource}. */
export interface PollerSourceOptions {
  /** Where a failed systeminfo read and a failing listener are logged. */
  logger?: Logger | undefined;
  /** The poller's clock, in ms. */
  now?: (() => number) | undefined;
  /** The surplus, where ess computes it (the same object until it changes). */
  surplus?: (() => SurplusDocument | undefined) | undefined;
}

/** A {@link ServeSource} that can stop listening to its poller. */
export interface PollerSource extends ServeSource {
  /** Stops listening to the poller; the poller and the queue run on. */
  close(): void;
}

/**
 * Serves what `poller` reads. `systeminfo` (model, serial number, versions) is not polled: the
 * source reads it through the poller's queue after the first successful poll, and again when
 * the device answers after it counted as offline (it may have been updated meanwhile), so that
 * the dashboard's header and the metrics' `serial` label stay right.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { ControlQueue } from "../device/control_queue.ts";
 * import { Poller } from "../device/poller.ts";
 * import { silentLogger } from "../log.ts";
 * const device = {
 *   read: (state: string) => Promise.resolve({ state: { name: state } }),
 *   setOperation: () => Promise.resolve(),
 *   setWinterMode: () => Promise.resolve(),
 *   setFastCharge: () => Promise.resolve(),
 *   setChargeStrategy: () => Promise.resolve(),
 *   setBackupMode: () => Promise.resolve(),
 * };
 * const sleep = () => Promise.resolve();
 * const poller = new Poller({
 *   device,
 *   options: { intervalMs: 10_000, commonDivisor: 1 },
 *   logger: silentLogger,
 *   now: Date.now,
 *   sleep,
 *   random: Math.random,
 * });
 * const controls = new ControlQueue({ poller, logger: silentLogger, now: Date.now, sleep });
 * const graphs = { graph: () => Promise.resolve({ loginfo: [] }) };
 * const source = pollerSource(poller, controls, graphs);
 * await poller.refresh(["home"]);
 * equal(source.snapshot().up, true);
 * equal(source.snapshot().states.home?.["state"] !== undefined, true);
 * equal((await source.graph("pv", "day", { year: 2026, month: 6, day: 21 })).loginfo.length, 0);
 * source.close();
 * ```
 */
export function pollerSource(
  poller: SourcePoller,
  controls: Pick<ControlQueue, "submit">,
  client: GraphClient,
  options: PollerSourceOptions = {},
): PollerSource {
  const log = options.logger ?? silentLogger;
  const now = options.now ?? Date.now;
  const listeners = new Set<() => void>();
  let cached: { snapshot: ServeSnapshot; parts: readonly unknown[] } | undefined;
  /** Whether systeminfo should be read (again) at the next chance. */
  let systeminfoDue = false;
  let readingSysteminfo = false;
  let systeminfoFailedAt = -Infinity;
  let lastFailureAt = -Infinity;

  const tell = () => {
    for (const listener of [...listeners]) {
      try {
        listener();
      } catch (err) {
        log.error(`a listener of the server failed: ${errorText(err)}`);
      }
    }
  };

  const readSysteminfo = () => {
    readingSysteminfo = true;
    // Not awaited: the poller waits for its listeners, and the read queues behind this poll.
    poller.read("systeminfo").then(
      () => {
        systeminfoDue = false;
        tell();
      },
      (err) => {
        systeminfoFailedAt = now();
        log.debug(`reading systeminfo failed: ${errorText(err)}; trying again later`);
      },
    ).finally(() => readingSysteminfo = false);
  };

  const onPoll = (event: PollEvent) => {
    if (!event.ok) lastFailureAt = event.at;
    else {
      const known = poller.latest("systeminfo");
      if (known === undefined || (event.upChanged && known.at <= lastFailureAt)) {
        systeminfoDue = true;
      }
      if (
        systeminfoDue && !readingSysteminfo && now() - systeminfoFailedAt >= SYSTEMINFO_RETRY_MS
      ) {
        readSysteminfo();
      }
    }
    tell();
  };
  const unlisten = poller.listen(onPoll);

  return {
    snapshot() {
      const states = SERVED_STATES.map((state) => poller.latest(state)?.answer);
      const surplus = options.surplus?.();
      const parts = [
        ...states,
        poller.up,
        poller.lastSuccessAt,
        poller.lastError,
        poller.reading,
        surplus,
      ];
      // The same object until something changes: the server caches per snapshot.
      if (cached && parts.every((part, i) => part === cached!.parts[i])) return cached.snapshot;
      const snapshot: ServeSnapshot = {
        states: {},
        lastSuccess: poller.lastSuccessAt,
        up: poller.up,
        error: poller.lastError,
        reading: poller.reading,
      };
      if (surplus !== undefined) snapshot.surplus = surplus;
      SERVED_STATES.forEach((state, i) => {
        const answer = states[i];
        if (answer !== undefined) snapshot.states[state] = answer;
      });
      cached = { snapshot, parts };
      return snapshot;
    },
    onPoll(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    graph(device, span, date) {
      return poller.exclusive(() => client.graph(device, span, date));
    },
    control(name, command, source) {
      return controls.submit(name, command, source);
    },
    close() {
      unlisten();
      listeners.clear();
    },
  };
}
