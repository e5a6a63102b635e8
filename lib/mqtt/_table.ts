/**
 * The bridge's table of state topics: the last value of every leaf the device sent, which of
 * them have been published, and the rules that keep the table safe and small whatever the device
 * sends: keys that cannot be topics are skipped, two values for one topic resolve to the first,
 * topics the device stopped sending leave, and the table has a cap. Each oddity is warned about
 * once, and the memory of what was warned about is bounded too.
 *
 * @module
 */
import { flattenInstalled, type JsonObject } from "../device/flatten.ts";
import type { Logger } from "../log.ts";
import { quote } from "./_quote.ts";
import { stateTopic, topicProblem } from "./topics.ts";

/** A topic the device has not sent for this many polls of its state leaves the table. */
export const STALE_AFTER_POLLS = 5;
/** The most topics the table holds: some twelve times what an ESS sends. */
export const MAX_TOPICS = 2_000;
/** The most oddities remembered as warned about; after that they are skipped silently. */
const MAX_WARNED = 256;

/** Options of {@link TopicTable}. */
export interface TopicTableOptions {
  /** The first level of every topic (`ess`). */
  prefix: string;
  /** Default {@link STALE_AFTER_POLLS}. */
  staleAfterPolls?: number | undefined;
  /** Default {@link MAX_TOPICS}. */
  maxTopics?: number | undefined;
}

interface Entry {
  value: string;
  state: string;
  /** The poll of its state that last sent it. */
  seen: number;
}

/** Why a leaf cannot be published, or `undefined`. */
function leafProblem(path: readonly string[], topic: string): string | undefined {
  if (path.length > 0 && path.join("/").split("/").includes("")) {
    return "an empty key makes an empty topic level";
  }
  return topicProblem(topic);
}

/**
 * The state topics and their last values, in the device's order.
 *
 * @example
 * ```ts
 * import { deepEqual, equal } from "node:assert/strict";
 * import { silentLogger } from "../log.ts";
 * const table = new TopicTable({ prefix: "ess" }, silentLogger);
 * const first = table.update("home", { statistics: { load_power: "376", "a\nb": "1" } });
 * deepEqual(first.changed, ["ess/home/statistics/load_power"]);
 * const second = table.update("home", { statistics: { load_power: "376" } });
 * deepEqual(second, { sent: ["ess/home/statistics/load_power"], changed: [] });
 * equal(table.value("ess/home/statistics/load_power"), "376");
 * ```
 */
export class TopicTable {
  #prefix: string;
  #staleAfterPolls: number;
  #maxTopics: number;
  #log: Logger;
  #entries = new Map<string, Entry>();
  #published = new Set<string>();
  #polls = new Map<string, number>();
  #warned = new Set<string>();

  /** An empty table; `logger` hears each oddity once. */
  constructor(options: TopicTableOptions, logger: Logger) {
    this.#prefix = options.prefix;
    this.#staleAfterPolls = options.staleAfterPolls ?? STALE_AFTER_POLLS;
    this.#maxTopics = options.maxTopics ?? MAX_TOPICS;
    this.#log = logger;
  }

  /** The topics published so far that the device still sends. */
  get published(): ReadonlySet<string> {
    return this.#published;
  }

  /**
   * Takes one answer of `state`; returns the topics it sent (that can be published) and those
   * among them whose value is new or changed.
   */
  update(state: string, answer: JsonObject): { sent: string[]; changed: string[] } {
    const poll = (this.#polls.get(state) ?? 0) + 1;
    this.#polls.set(state, poll);
    const changed: string[] = [];
    const sent = new Set<string>();
    for (const { path, value } of flattenInstalled(answer)) {
      const topic = stateTopic(this.#prefix, state, path);
      const problem = leafProblem(path, topic);
      if (problem !== undefined) {
        const key = path.join("/");
        this.#warnOnce(
          `key ${state} ${key}`,
          `skipping the device's ${state} value at ${quote(key)}: it cannot be an MQTT topic ` +
            `(${problem}); the other values are published as usual`,
        );
        continue;
      }
      if (sent.has(topic)) {
        this.#warnOnce(
          `twice ${topic}`,
          `the device's ${state} answer has two values for ${quote(topic)} (a key with a "/" ` +
            `next to nested keys); publishing the first, ${quote(this.#entries.get(topic)!.value)}`,
        );
        continue;
      }
      let entry = this.#entries.get(topic);
      if (entry === undefined) {
        if (this.#entries.size >= this.#maxTopics) {
          this.#warnOnce(
            "cap",
            `the device sent more than ${this.#maxTopics} different values; new ones are not ` +
              `published until others go stale (not sent for ${this.#staleAfterPolls} polls)`,
          );
          continue;
        }
        entry = { value, state, seen: poll };
        this.#entries.set(topic, entry);
        changed.push(topic);
      } else if (entry.value !== value) {
        entry.value = value;
        changed.push(topic);
      }
      entry.seen = poll;
      sent.add(topic);
    }
    this.#dropStale(state, poll);
    return { sent: [...sent], changed };
  }

  /** The last value of a topic, if the table holds it. */
  value(topic: string): string | undefined {
    return this.#entries.get(topic)?.value;
  }

  /** Every topic, in the device's order. */
  topics(): IterableIterator<string> {
    return this.#entries.keys();
  }

  /** Notes that `topic` has been published. */
  markPublished(topic: string): void {
    if (this.#entries.has(topic)) this.#published.add(topic);
  }

  #dropStale(state: string, poll: number): void {
    let dropped = 0;
    for (const [topic, entry] of this.#entries) {
      if (entry.state !== state || poll - entry.seen < this.#staleAfterPolls) continue;
      this.#entries.delete(topic);
      this.#published.delete(topic);
      dropped++;
    }
    if (dropped > 0) {
      this.#log.debug(
        `${dropped} ${state} topics not sent for ${this.#staleAfterPolls} polls: ` +
          `no longer republished`,
      );
    }
  }

  /** Warns about one oddity the first time; `key` is cut so that the memory stays small. */
  #warnOnce(key: string, message: string): void {
    const id = `${key.slice(0, 200)} ${key.length}`;
    if (this.#warned.has(id)) return;
    if (this.#warned.size >= MAX_WARNED) {
      if (this.#warned.has("")) return;
      this.#warned.add("");
      this.#log.warning(
        `more than ${MAX_WARNED} odd values from the device: further ones are skipped ` +
          `without a warning each`,
      );
      return;
    }
    this.#warned.add(id);
    this.#log.warning(message);
  }
}
