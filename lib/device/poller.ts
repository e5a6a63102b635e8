/**
 * The device side of every daemon: one poll loop over one device session, with back-off while
 * the device fails, a grace period before it counts as down, the latest answer of every state,
 * and one queue that serialises all device work (polls, reads for others, control writes), so
 * that requests never overlap on the inverter. It knows nothing of MQTT: the MQTT bridge and an
 * HTTP server listen to the same poller.
 *
 * @module
 */
import { Backoff, DEVICE_MAX_BACKOFF_MS, unlessAborted } from "../backoff.ts";
import { errorText, WrongPasswordError } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { Device } from "./controls.ts";
import type { JsonObject } from "./flatten.ts";
import type { StateName } from "./states.ts";
import { EnergyIntegrator } from "../model/energy.ts";
import { fieldsText, normalise } from "../model/normalise.ts";
import type { Reading } from "../model/reading.ts";

/**
 * The states the poller reads: `home` (live flows) every poll, `common` every N-th poll, and the
 * `batt` settings about once a minute.
 */
export const POLLED_STATES = ["home", "common", "batt"] as const;
/** One of {@link POLLED_STATES}. */
export type PolledState = typeof POLLED_STATES[number];

/** Unknown fields remembered as warned about, at most (the device's answers are untrusted). */
const MAX_WARNED_FIELDS = 1_000;

/** The grace rule's defaults: the device is down after this many failed polls in a row... */
export const OFFLINE_AFTER_FAILURES = 3;
/** ...and when its last answer is at least this old, in ms. */
export const OFFLINE_AFTER_MS = 30_000;

/** How the poller polls. */
export interface PollerOptions {
  /** Time between polls, in ms. */
  intervalMs: number;
  /** `common` is read every N-th poll. */
  commonDivisor: number;
  /**
   * `batt` (the settings) is read with `common`, but at most about this often, in ms (default
   * 60 s): settings change only by a command, which is read back at once, or in LG's app.
   */
  settingsEveryMs?: number | undefined;
  /** The longest wait between tries while the device fails, in ms (default 1 min). */
  maxBackoffMs?: number | undefined;
  /** The device counts as down after this many failed polls in a row (default 3)... */
  offlineAfterFailures?: number | undefined;
  /** ...once its last answer (or the start) is at least this old, in ms (default 30 s). */
  offlineAfterMs?: number | undefined;
}

/** Everything the poller depends on. */
export interface PollerDeps {
  /** The one device session everything shares. */
  device: Device;
  /** How to poll. */
  options: PollerOptions;
  /** Where failures and recoveries are logged. */
  logger: Logger;
  /** Milliseconds since some epoch. */
  now(): number;
  /** Waits `ms`, or less if `signal` aborts. */
  sleep(ms: number, signal: AbortSignal): Promise<void>;
  /** Uniform in [0, 1), for back-off jitter. */
  random(): number;
}

/** One state as the device answered it. */
export interface PolledAnswer {
  /** Which state. */
  state: PolledState;
  /** The device's answer, as it sent it. */
  answer: JsonObject;
}

/** What listeners hear after every poll (and after every read-back of a command). */
export type PollEvent =
  | {
    ok: true;
    /** When the poll ended. */
    at: number;
    /** The states read, in the order read. */
    answers: readonly PolledAnswer[];
    /**
     * What the latest answers of every state mean ({@link Poller.reading}), made once per poll
     * so that every output reads the same object.
     */
    reading: Reading;
    up: true;
    /** Whether the device was not counted as up before this poll. */
    upChanged: boolean;
  }
  | {
    ok: false;
    at: number;
    /** Why the poll failed, as one line. */
    error: string;
    /** Failed polls in a row, this one included. */
    failures: number;
    /** `undefined` while the device has never answered and the grace period still runs. */
    up: boolean | undefined;
    /** Whether this failure made the device count as down. */
    upChanged: boolean;
  };

/** Hears every {@link PollEvent}; the poller waits for it before the next device request. */
export type PollListener = (event: PollEvent) => void | Promise<void>;

/**
 * Polls one device and tells its listeners. All device work goes through one queue
 * ({@link Poller.exclusive}), so a poll never overlaps a command and nothing publishes stale
 * data. A wrong password, met by anyone, ends {@link Poller.run}.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { silentLogger } from "../log.ts";
 * const device = {
 *   read: (state: string) => Promise.resolve({ statistics: { state } }),
 *   setOperation: () => Promise.resolve(),
 *   setWinterMode: () => Promise.resolve(),
 *   setFastCharge: () => Promise.resolve(),
 *   setChargeStrategy: () => Promise.resolve(),
 *   setBackupMode: () => Promise.resolve(),
 * };
 * const poller = new Poller({
 *   device,
 *   options: { intervalMs: 10_000, commonDivisor: 1 },
 *   logger: silentLogger,
 *   now: Date.now,
 *   sleep: () => Promise.resolve(),
 *   random: Math.random,
 * });
 * const heard: string[] = [];
 * poller.listen((event) => void heard.push(event.ok ? "ok" : "failed"));
 * equal(await poller.refresh(["home"]), true);
 * equal(heard.join(), "ok");
 * equal(poller.up, true);
 * equal(poller.latest("home")?.answer.statistics !== undefined, true);
 * ```
 */
export class Poller {
  #device: Device;
  #options: PollerOptions;
  #log: Logger;
  #now: () => number;
  #sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  #backoff: Backoff;
  #maxBackoffMs: number;
  #listeners = new Set<PollListener>();
  #latest = new Map<StateName, { answer: JsonObject; at: number }>();
  #energy = new EnergyIntegrator();
  #warnedUnknown = new Set<string>();
  #lastReading: Reading | undefined;
  /** The reads {@link Poller.read} has queued or runs, by state. */
  #reading = new Map<StateName, Promise<JsonObject>>();
  #queue: Promise<void> = Promise.resolve();
  #up: boolean | undefined;
  #failures = 0;
  #lastError: string | undefined;
  #lastSuccessAt: number | undefined;
  #startedAt: number | undefined;
  #stop = new AbortController();
  #running = false;
  #fatal: Error | undefined;

  /** A poller over `deps.device`; it polls once `run()` is called. */
  constructor(deps: PollerDeps) {
    this.#device = deps.device;
    this.#options = deps.options;
    this.#log = deps.logger;
    this.#now = deps.now;
    this.#sleep = deps.sleep;
    this.#maxBackoffMs = Math.max(
      deps.options.intervalMs,
      deps.options.maxBackoffMs ?? DEVICE_MAX_BACKOFF_MS,
    );
    this.#backoff = new Backoff({
      baseMs: deps.options.intervalMs,
      maxMs: this.#maxBackoffMs,
      random: deps.random,
    });
  }

  /** Whether the device counts as up (the grace rule applied); `undefined` until known. */
  get up(): boolean | undefined {
    return this.#up;
  }

  /** Failed polls in a row (0 after a success). */
  get failures(): number {
    return this.#failures;
  }

  /** Why the last failed poll failed, as one line; `undefined` once a poll succeeds. */
  get lastError(): string | undefined {
    return this.#lastError;
  }

  /** When the device last answered a poll (`now()` time), if it ever did. */
  get lastSuccessAt(): number | undefined {
    return this.#lastSuccessAt;
  }

  /** The latest answer of a state and when it came, from a poll or {@link Poller.read}. */
  latest(state: StateName): { answer: JsonObject; at: number } | undefined {
    return this.#latest.get(state);
  }

  /**
   * The normalised reading of the latest answers (`home`, `common`, `batt`, `systeminfo`), with
   * energy integrated from the polled power where the model reports none; `undefined` before
   * the first answer.
   */
  get reading(): Reading | undefined {
    return this.#lastReading;
  }

  /** The reading of the latest answers; with `at`, after integrating this poll's power. */
  #read(at?: number): Reading {
    const answer = (state: StateName) => this.#latest.get(state)?.answer;
    const reading = normalise({
      home: answer("home"),
      common: answer("common"),
      batt: answer("batt"),
      systeminfo: answer("systeminfo"),
    });
    if (at !== undefined) {
      this.#energy.add(reading, at);
      this.#warnUnknown(reading);
    }
    this.#lastReading = this.#energy.apply(reading);
    return this.#lastReading;
  }

  /**
   * One warning, the first time, naming the fields ess does not understand; fields first met
   * later are logged at debug level (a device that invents keys must not fill the log).
   */
  #warnUnknown(reading: Reading): void {
    if (this.#warnedUnknown.size >= MAX_WARNED_FIELDS) return;
    const fresh = reading.unknownFields.filter((f) => !this.#warnedUnknown.has(f));
    if (fresh.length === 0) return;
    const first = this.#warnedUnknown.size === 0;
    for (const field of fresh.slice(0, MAX_WARNED_FIELDS)) this.#warnedUnknown.add(field);
    const what = reading.family === "unknown"
      ? "the device answers in a shape ess does not know; its values are published raw only, " +
        "without units"
      : "the device sent fields ess does not understand; they are published raw only, " +
        "without units";
    this.#log[first ? "warning" : "debug"](`${what}: ${fieldsText(fresh)}`);
  }

  /** Adds a listener for every poll from now on; returns a function that removes it. */
  listen(listener: PollListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Polls until `signal` aborts (at once, even while a device request hangs). Rejects only with
   * a wrong password, met by a poll or by anyone else's device work. Runs once at a time.
   */
  async run(signal: AbortSignal): Promise<void> {
    if (this.#running) throw new Error("Poller.run() is running already");
    this.#running = true;
    const onAbort = () => this.#stop.abort();
    signal.addEventListener("abort", onAbort);
    if (signal.aborted) onAbort();
    try {
      await this.#loop();
    } finally {
      signal.removeEventListener("abort", onAbort);
      this.#running = false;
    }
    if (this.#fatal) throw this.#fatal;
  }

  async #loop(): Promise<void> {
    const { commonDivisor, intervalMs } = this.#options;
    const settingsEveryMs = this.#options.settingsEveryMs ?? 60_000;
    const battDivisor = commonDivisor *
      Math.max(1, Math.round(settingsEveryMs / (intervalMs * commonDivisor)));
    const stop = this.#stop.signal;
    let cycle = 0;
    while (!stop.aborted) {
      const started = this.#now();
      const recovering = this.#failures > 0 || this.#lastSuccessAt === undefined;
      const states: PolledState[] = ["home"];
      if (cycle % commonDivisor === 0 || recovering) states.push("common");
      if (cycle % battDivisor === 0 || recovering) states.push("batt");
      const ok = await unlessAborted(this.#poll(states), stop, false);
      if (stop.aborted) break;
      let wait: number;
      if (ok) {
        cycle++;
        this.#backoff.reset();
        wait = Math.max(0, started + intervalMs - this.#now());
      } else wait = this.#backoff.next();
      await this.#sleep(wait, stop);
    }
  }

  /**
   * Reads `states` now, through the queue, and tells the listeners as after any poll; `true` if
   * the device answered. Commands use it to read back what they changed. Never rejects.
   */
  refresh(states: readonly PolledState[] = POLLED_STATES): Promise<boolean> {
    return this.#poll(states);
  }

  /**
   * Reads one state through the queue (for systeminfo and the like); rejects on failure. Callers
   * that ask for a state while a read of it waits or runs share that read: the dashboard and Home
   * Assistant discovery both want systeminfo at start, and the device need not answer twice.
   */
  read(state: StateName): Promise<JsonObject> {
    let reading = this.#reading.get(state);
    if (!reading) {
      reading = this.exclusive(async (device) => {
        const answer = await device.read(state);
        this.#latest.set(state, { answer, at: this.#now() });
        if (state !== "network") this.#read();
        return answer;
      }).finally(() => this.#reading.delete(state));
      this.#reading.set(state, reading);
    }
    return reading;
  }

  /**
   * Runs `work` on the device once no other device work runs (first come, first served, so a
   * poll waits for at most the work queued before it). A wrong password ends {@link Poller.run}.
   */
  exclusive<T>(work: (device: Device) => Promise<T>): Promise<T> {
    const run = this.#queue.then(async () => {
      try {
        return await work(this.#device);
      } catch (err) {
        if (err instanceof WrongPasswordError) this.#die(err);
        throw err;
      }
    });
    this.#queue = run.then(() => {}, () => {});
    return run;
  }

  #poll(states: readonly PolledState[]): Promise<boolean> {
    return this.exclusive(async (device) => {
      // A read-back queued behind a command need not reach the device once polling stopped.
      if (this.#stop.signal.aborted) return false;
      this.#startedAt ??= this.#now();
      const answers: PolledAnswer[] = [];
      try {
        for (const state of states) answers.push({ state, answer: await device.read(state) });
      } catch (err) {
        if (err instanceof WrongPasswordError) throw err;
        if (!this.#stop.signal.aborted) await this.#tell(this.#failed(err));
        return false;
      }
      if (!this.#stop.signal.aborted) await this.#tell(this.#succeeded(answers));
      return true;
    }).catch(() => false);
  }

  #succeeded(answers: PolledAnswer[]): PollEvent {
    const at = this.#now();
    for (const { state, answer } of answers) this.#latest.set(state, { answer, at });
    const wasUp = this.#up;
    if (this.#failures > 0) {
      this.#log.info(`the device answers again (after ${this.#failures} failed tries)`);
    }
    this.#up = true;
    this.#failures = 0;
    this.#lastError = undefined;
    this.#lastSuccessAt = at;
    const reading = this.#read(at);
    return { ok: true, at, answers, reading, up: true, upChanged: wasUp !== true };
  }

  #failed(err: unknown): PollEvent {
    const at = this.#now();
    const error = errorText(err);
    this.#failures++;
    this.#lastError = error;
    const since = this.#lastSuccessAt ?? this.#startedAt ?? at;
    const failures = this.#options.offlineAfterFailures ?? OFFLINE_AFTER_FAILURES;
    const graceMs = this.#options.offlineAfterMs ?? OFFLINE_AFTER_MS;
    const down = this.#failures >= failures && at - since >= graceMs;
    const upChanged = down && this.#up !== false;
    if (upChanged) {
      this.#up = false;
      this.#log.warning(
        `the device has not answered for ${Math.round((at - since) / 1000)} s ` +
          `(${this.#failures} tries): ${error}; counting it as offline and retrying with ` +
          `back-off (at most every ${Math.round(this.#maxBackoffMs / 1000)} s)`,
      );
    } else if (this.#failures === 1) {
      this.#log.info(
        `cannot read the device: ${error}; trying again (it counts as offline after ` +
          `${failures} failed tries over ${Math.round(graceMs / 1000)} s)`,
      );
    } else this.#log.debug(`the device still does not answer: ${error}`);
    return { ok: false, at, error, failures: this.#failures, up: this.#up, upChanged };
  }

  async #tell(event: PollEvent): Promise<void> {
    for (const listener of this.#listeners) {
      try {
        await listener(event);
      } catch (err) {
        this.#log.error(`a poll listener failed: ${errorText(err)}`);
      }
    }
  }

  #die(err: Error): void {
    this.#fatal ??= err;
    this.#stop.abort();
  }
}
