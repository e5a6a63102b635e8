/**
 * Every wait in a test has a deadline: a regression fails the test with a line that names what
 * it waited for, instead of hanging CI. Deadlines are generous (a shared, loaded machine); they
 * say when to give up, not how fast things must be (timing goals live in the benchmarks).
 *
 * @module
 */

/** How long a wait lasts at most, and what it waits for (the failure names it). */
export interface WaitOptions {
  /** The condition, as the failure message names it: "the second connection". */
  what: string;
  /** At most this long; 15 s unless told. */
  timeoutMs?: number;
  /** Between two checks of a condition; 10 ms unless told. */
  everyMs?: number;
}

/** The deadline a wait has unless told: long enough for a loaded machine, short for CI. */
export const DEFAULT_TIMEOUT_MS = 15_000;

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Resolves once `condition()` holds (it is checked at once, then every `everyMs`); rejects
 * naming `what` when it has not held within `timeoutMs`, even while an async condition hangs.
 * A condition that throws ends the wait with its error.
 *
 * @example
 * ```ts
 * import { waitFor } from "./_wait.ts";
 * import { rejects } from "node:assert/strict";
 * let polls = 0;
 * await waitFor(() => ++polls === 3, { what: "three polls" });
 * await rejects(waitFor(() => false, { what: "a miracle", timeoutMs: 30 }), /a miracle/);
 * ```
 */
export async function waitFor(
  condition: () => boolean | Promise<boolean>,
  { everyMs = 10, ...options }: WaitOptions,
): Promise<void> {
  let late = false;
  try {
    await withDeadline(
      (async () => {
        while (!late && !await condition()) await pause(everyMs);
      })(),
      options,
    );
  } finally {
    late = true;
  }
}

/**
 * `work`'s result, or a rejection naming `what` when it has not settled within `timeoutMs`:
 * for an await that may never end (a read, an accept, a loop of them). The work itself is not
 * stopped; the test fails and its clean-up closes what the work waits on.
 *
 * @example
 * ```ts
 * import { withDeadline } from "./_wait.ts";
 * import { equal, rejects } from "node:assert/strict";
 * equal(await withDeadline(Promise.resolve("home"), { what: "the answer" }), "home");
 * await rejects(
 *   withDeadline(new Promise(() => {}), { what: "a silent peer", timeoutMs: 30 }),
 *   /timed out after 30 ms waiting for a silent peer/,
 * );
 * ```
 */
export async function withDeadline<T>(
  work: Promise<T>,
  { what, timeoutMs = DEFAULT_TIMEOUT_MS }: WaitOptions,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Reads text from `reader` until `done(text)` holds, and returns all it read. Rejects naming
 * `what` when the stream ends first or the deadline passes.
 *
 * @example
 * ```ts
 * import { readUntil } from "./_wait.ts";
 * import { equal } from "node:assert/strict";
 * const reader = ReadableStream.from(["event: state\n", "data: {}\n\n"]).getReader();
 * const text = await readUntil(reader, (t) => t.endsWith("\n\n"), { what: "an event" });
 * equal(text, "event: state\ndata: {}\n\n");
 * ```
 */
export async function readUntil(
  reader: ReadableStreamDefaultReader<string>,
  done: (text: string) => boolean,
  options: WaitOptions,
): Promise<string> {
  let text = "";
  await withDeadline(
    (async () => {
      while (!done(text)) {
        const chunk = await reader.read();
        if (chunk.done) {
          throw new Error(`the stream ended before ${options.what}: ${text.slice(-300)}`);
        }
        text += chunk.value;
      }
    })(),
    options,
  );
  return text;
}

/**
 * Resolves once `value()` has stayed the same for `stillMs` (default 300 ms): for "wait until
 * the buffers are full and the flow has stopped". Rejects naming `what` when it still changes
 * after `timeoutMs`.
 *
 * @example
 * ```ts
 * import { waitForStill } from "./_wait.ts";
 * import { rejects } from "node:assert/strict";
 * await waitForStill(() => 7, { what: "a constant", stillMs: 20 });
 * let n = 0;
 * const moving = waitForStill(() => n++, { what: "the counter to stop", stillMs: 5, everyMs: 1, timeoutMs: 40 });
 * await rejects(moving, /the counter to stop/);
 * ```
 */
export async function waitForStill(
  value: () => unknown,
  { stillMs = 300, ...options }: WaitOptions & { stillMs?: number },
): Promise<void> {
  let last = value();
  let since = Date.now();
  await waitFor(() => {
    const now = value();
    if (!Object.is(now, last)) [last, since] = [now, Date.now()];
    return Date.now() - since >= stillMs;
  }, { everyMs: 50, ...options });
}
