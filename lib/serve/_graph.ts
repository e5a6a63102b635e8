/**
 * Graph requests of the dashboard, kind to the device: equal requests share one device read,
 * answers are kept for a while, only a few reads run at once, and only so many a minute.
 *
 * @module
 */
import type { CalendarDate, GraphDevice, GraphSpan } from "../device/states.ts";

/**
 * Reads one graph from the device (the one named `from`, where the server serves several) and
 * gives the body to answer with: the text is made once per read, and its length is what the
 * cache counts.
 */
export type GraphReader = (
  device: GraphDevice,
  span: GraphSpan,
  date: CalendarDate,
  from: string | undefined,
) => Promise<string>;

/** Limits of {@link GraphCache}. */
export interface GraphCacheLimits {
  /** How long an answer is served again, in ms. */
  ttlMs: number;
  /** Answers kept at most. */
  maxEntries: number;
  /**
   * Characters kept in all at most. A real graph is a few kB, but the device may send up to
   * 1 MiB per answer, and a few dozen of those would not fit the process's heap.
   */
  maxChars: number;
  /** Different graphs read from the device at once at most. */
  maxInFlight: number;
  /**
   * Device reads in any minute at most: a client stepping through dates as fast as answers
   * come would otherwise keep the device busy with graphs for as long as it likes.
   */
  maxReadsPerMinute: number;
}

/** Result of {@link GraphCache.get}: the body, or `busy` when too many reads run or ran. */
export type GraphResult = string | "busy";

/**
 * A small cache in front of the devices' graph endpoints; its limits hold for all of them
 * together, so that serving several devices takes no more memory or device time.
 */
export class GraphCache {
  #read: GraphReader;
  #limits: GraphCacheLimits;
  #now: () => number;
  /** Oldest first. */
  #answers = new Map<string, { at: number; text: string }>();
  #chars = 0;
  #pending = new Map<string, Promise<string>>();
  /** When the reads of the last minute started, oldest first. */
  #readTimes: number[] = [];

  constructor(read: GraphReader, limits: GraphCacheLimits, now: () => number) {
    this.#read = read;
    this.#limits = limits;
    this.#now = now;
  }

  /** The graph of the device named `from`, from the cache, from a read under way, or read now. */
  get(
    device: GraphDevice,
    span: GraphSpan,
    date: CalendarDate,
    from?: string,
  ): Promise<GraphResult> {
    const key = `${from ?? ""}:${device}/${span}/${date.year}-${date.month}-${date.day}`;
    const kept = this.#answers.get(key);
    if (kept && this.#now() - kept.at < this.#limits.ttlMs) return Promise.resolve(kept.text);
    const pending = this.#pending.get(key);
    if (pending) return pending;
    if (this.#pending.size >= this.#limits.maxInFlight) return Promise.resolve("busy");
    const now = this.#now();
    while (this.#readTimes.length > 0 && now - this.#readTimes[0]! >= 60_000) {
      this.#readTimes.shift();
    }
    if (this.#readTimes.length >= this.#limits.maxReadsPerMinute) return Promise.resolve("busy");
    this.#readTimes.push(now);
    const read = this.#read(device, span, date, from).then((text) => {
      this.#keep(key, text);
      return text;
    }).finally(() => this.#pending.delete(key));
    this.#pending.set(key, read);
    return read;
  }

  #keep(key: string, text: string): void {
    this.#drop(key);
    if (text.length > this.#limits.maxChars) return;
    this.#answers.set(key, { at: this.#now(), text });
    this.#chars += text.length;
    while (
      this.#answers.size > this.#limits.maxEntries || this.#chars > this.#limits.maxChars
    ) {
      this.#drop(this.#answers.keys().next().value!);
    }
  }

  #drop(key: string): void {
    const kept = this.#answers.get(key);
    if (!kept) return;
    this.#answers.delete(key);
    this.#chars -= kept.text.length;
  }
}
