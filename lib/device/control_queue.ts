/**
 * Commands on their way to the device, kind to the inverter however fast they come: per control
 * the latest command wins (at most one write in flight and one waiting), a control is not written
 * again within a minimum spacing, every write goes through the poller's queue (so polls keep their
 * turn) and is read back, and a burst of merged commands is summed up in one log line. It knows
 * nothing of MQTT: the bridge and an HTTP endpoint submit the same parsed commands.
 *
 * @module
 */
import { errorText, WrongPasswordError } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { ControlCommand, ControlName } from "./controls.ts";
import type { Poller } from "./poller.ts";

/** The least time between two writes of one control, in ms, unless told otherwise. */
export const DEFAULT_CONTROL_SPACING_MS = 2_000;
/** The same for `active`: starting and stopping the inverter deserves a longer rest. */
export const DEFAULT_ACTIVE_SPACING_MS = 30_000;

/** How far apart writes of one control are. */
export interface ControlQueueOptions {
  /** Least time between two writes of one control, in ms (default 2 s). */
  controlSpacingMs?: number | undefined;
  /** Least time between two writes of `active` (start/stop), in ms (default 30 s). */
  activeSpacingMs?: number | undefined;
}

/** Everything the queue depends on. */
export interface ControlQueueDeps {
  /** Whose queue the writes go through, and who reads the device back after them. */
  poller: Pick<Poller, "exclusive" | "refresh">;
  /** The spacing; the defaults without. */
  options?: ControlQueueOptions | undefined;
  /** Where writes, failures and burst summaries are logged. */
  logger: Logger;
  /** Milliseconds since some epoch. */
  now(): number;
  /** Waits `ms`, or less if `signal` aborts. */
  sleep(ms: number, signal: AbortSignal): Promise<void>;
}

/**
 * What became of a command: `written` (and read back), `merged` (a later command for the same
 * control replaced it before it was written), `unchanged` (the control had just been written
 * with this very value), `failed` (the device did not take it), `stopped` (the queue closed
 * first).
 */
export type ControlOutcome = "written" | "merged" | "unchanged" | "failed" | "stopped";

/** The outcome of one submitted command. */
export interface ControlResult {
  /** What became of it. */
  outcome: ControlOutcome;
  /** Why it failed, as one line, for `failed`. */
  error?: string;
}

interface Pending {
  command: ControlCommand;
  source: string;
  receivedAt: number;
  resolve(result: ControlResult): void;
}

/** One control's (or one device setting's) place in the queue: the write under way, one waiting. */
interface Slot {
  spacingMs: number;
  writing: Pending | undefined;
  waiting: Pending | undefined;
  /** When the last write ended. */
  lastWriteAt: number;
  /** What the last successful write did (its description). */
  lastWritten: string | undefined;
  /** Whether a timer waits for the spacing to pass. */
  resting: boolean;
}

/** What happened since the queue was last idle. */
interface Burst {
  startedAt: number;
  received: number;
  written: number;
  merged: number;
  unchanged: number;
  failed: number;
}

/**
 * Fast charge and the charge strategy both write `alg_setting`: they share one slot, so the
 * latest of either wins, as it would on the device.
 */
const SLOT_OF: Partial<Record<ControlName, string>> = {
  fastcharge: "alg_setting",
  charge_strategy: "alg_setting",
};

/** `1 command`, `2 commands`. */
const commands = (n: number) => `${n} command${n === 1 ? "" : "s"}`;

/**
 * The queue between those who command the device and the device.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { silentLogger } from "../log.ts";
 * const written: string[] = [];
 * const queue = new ControlQueue({
 *   poller: { exclusive: (work) => work({} as never), refresh: () => Promise.resolve(true) },
 *   options: { controlSpacingMs: 50 },
 *   logger: silentLogger,
 *   now: Date.now,
 *   sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
 * });
 * const command = (on: boolean) => ({
 *   description: `winter mode ${on ? "on" : "off"}`,
 *   run: () => Promise.resolve(void written.push(on ? "on" : "off")),
 * });
 * const first = queue.submit("winter_mode", command(true), "example");
 * const second = queue.submit("winter_mode", command(false), "example");
 * const third = queue.submit("winter_mode", command(true), "example");
 * equal((await first).outcome, "written");
 * equal((await second).outcome, "merged");
 * equal((await third).outcome, "unchanged");
 * equal(written.join(), "on");
 * queue.close();
 * ```
 */
export class ControlQueue {
  #poller: ControlQueueDeps["poller"];
  #log: Logger;
  #now: () => number;
  #sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  #controlSpacingMs: number;
  #activeSpacingMs: number;
  #slots = new Map<string, Slot>();
  #burst: Burst | undefined;
  /** Whether a write (with its read-back) is under way. */
  #writing = false;
  #stop = new AbortController();

  /** A queue that writes through `deps.poller`; it needs no start and ends with `close()`. */
  constructor(deps: ControlQueueDeps) {
    this.#poller = deps.poller;
    this.#log = deps.logger;
    this.#now = deps.now;
    this.#sleep = deps.sleep;
    this.#controlSpacingMs = deps.options?.controlSpacingMs ?? DEFAULT_CONTROL_SPACING_MS;
    this.#activeSpacingMs = deps.options?.activeSpacingMs ?? DEFAULT_ACTIVE_SPACING_MS;
  }

  /**
   * Queues a parsed command for control `name`; `source` says where it came from, for the log
   * (a topic, an HTTP client). Resolves once the command is written and read back, or known to
   * be merged, unchanged, failed or stopped; never rejects.
   */
  submit(name: ControlName, command: ControlCommand, source: string): Promise<ControlResult> {
    const { promise, resolve } = Promise.withResolvers<ControlResult>();
    if (this.#stop.signal.aborted) {
      resolve({ outcome: "stopped" });
      return promise;
    }
    const burst = this.#burst ??= {
      startedAt: this.#now(),
      received: 0,
      written: 0,
      merged: 0,
      unchanged: 0,
      failed: 0,
    };
    burst.received++;
    const slot = this.#slot(name);
    if (slot.waiting) {
      this.#log.debug(
        `${slot.waiting.source}: ${slot.waiting.command.description}: replaced by ${command.description}`,
      );
      slot.waiting.resolve({ outcome: "merged" });
      burst.merged++;
    }
    slot.waiting = { command, source, receivedAt: this.#now(), resolve };
    this.#pump();
    return promise;
  }

  /** Drops every command not yet written and stops the timers; a write under way ends as it will. */
  close(): void {
    if (this.#stop.signal.aborted) return;
    this.#stop.abort();
    let dropped = 0;
    for (const slot of this.#slots.values()) {
      if (!slot.waiting) continue;
      slot.waiting.resolve({ outcome: "stopped" });
      slot.waiting = undefined;
      dropped++;
    }
    if (dropped > 0) {
      this.#log.info(`dropped ${commands(dropped)} not yet written: stopping`);
    }
  }

  #slot(name: ControlName): Slot {
    const key = SLOT_OF[name] ?? name;
    let slot = this.#slots.get(key);
    if (!slot) {
      slot = {
        spacingMs: name === "active" ? this.#activeSpacingMs : this.#controlSpacingMs,
        writing: undefined,
        waiting: undefined,
        lastWriteAt: -Infinity,
        lastWritten: undefined,
        resting: false,
      };
      this.#slots.set(key, slot);
    }
    return slot;
  }

  /**
   * Starts the oldest waiting command whose control has rested long enough, unless a write is
   * under way: one write at a time, so that a poll that comes due meanwhile goes before the
   * next one.
   */
  #pump(): void {
    if (this.#stop.signal.aborted || this.#writing) return;
    const now = this.#now();
    let next: Slot | undefined;
    for (const slot of this.#slots.values()) {
      if (!slot.waiting || slot.resting) continue;
      const dueAt = slot.lastWriteAt + slot.spacingMs;
      if (now < dueAt) this.#rest(slot, dueAt - now);
      else if (!next || slot.waiting.receivedAt < next.waiting!.receivedAt) next = slot;
    }
    if (!next) return this.#idleCheck();
    const pending = next.waiting!;
    next.waiting = undefined;
    if (
      pending.command.description === next.lastWritten &&
      pending.receivedAt < next.lastWriteAt + next.spacingMs
    ) {
      // The burst ended where it began: the device already has this value.
      pending.resolve({ outcome: "unchanged" });
      this.#burst!.unchanged++;
      return this.#pump();
    }
    next.writing = pending;
    this.#writing = true;
    void this.#write(next, pending);
  }

  #rest(slot: Slot, ms: number): void {
    slot.resting = true;
    void this.#sleep(ms, this.#stop.signal).then(() => {
      slot.resting = false;
      this.#pump();
    });
  }

  async #write(slot: Slot, pending: Pending): Promise<void> {
    const burst = this.#burst!;
    const { command, source } = pending;
    this.#log.info(`${source}: ${command.description}`);
    let result: ControlResult;
    try {
      await this.#poller.exclusive((device) => command.run(device));
      slot.lastWritten = command.description;
      burst.written++;
      result = { outcome: "written" };
    } catch (err) {
      slot.lastWritten = undefined;
      burst.failed++;
      // A wrong password ends the poller, which says so; anything else is this command's.
      if (!(err instanceof WrongPasswordError)) {
        this.#log.warning(`${source}: ${command.description} failed: ${errorText(err)}`);
      }
      result = { outcome: "failed", error: errorText(err) };
    }
    slot.lastWriteAt = this.#now();
    if (result.outcome === "written") await this.#poller.refresh();
    slot.writing = undefined;
    this.#writing = false;
    pending.resolve(result);
    this.#pump();
  }

  /** Once nothing is written or waiting any more, sums up a burst that merged commands. */
  #idleCheck(): void {
    const burst = this.#burst;
    if (!burst) return;
    for (const slot of this.#slots.values()) {
      if (slot.writing || slot.waiting || slot.resting) return;
    }
    this.#burst = undefined;
    if (burst.merged + burst.unchanged === 0) return;
    const parts = [`${burst.written} written`];
    if (burst.merged > 0) {
      parts.push(`${burst.merged} replaced by a later one for the same control`);
    }
    if (burst.unchanged > 0) parts.push(`${burst.unchanged} dropped as already in effect`);
    if (burst.failed > 0) parts.push(`${burst.failed} failed`);
    const seconds = Math.round((this.#now() - burst.startedAt) / 1000);
    this.#log.info(
      `${commands(burst.received)} in ${seconds} s: ${parts.join(", ")} (the latest command for ` +
        `a control wins; a control is written at most every ${this.#controlSpacingMs / 1000} s, ` +
        `active every ${this.#activeSpacingMs / 1000} s)`,
    );
  }
}
