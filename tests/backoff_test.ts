import { deepEqual, equal, ok as assert, rejects } from "node:assert/strict";
import { Backoff, nextDelay, seededRandom, sleep, unlessAborted } from "../lib/backoff.ts";
import { withDeadline } from "./_wait.ts";

Deno.test("nextDelay()", async (t) => {
  await t.step("should double from baseMs and stay in the upper half of the nominal delay", () => {
    const low = { baseMs: 1000, maxMs: 300_000, random: () => 0 };
    const high = { ...low, random: () => 0.999999 };
    deepEqual([0, 1, 2, 3].map((a) => nextDelay(a, low)), [500, 1000, 2000, 4000]);
    deepEqual([0, 1, 2, 3].map((a) => nextDelay(a, high)), [1000, 2000, 4000, 8000]);
  });

  await t.step("should never exceed maxMs, however many attempts", () => {
    for (const attempt of [9, 10, 50, 5000]) {
      const d = nextDelay(attempt, { baseMs: 1000, maxMs: 300_000, random: () => 0.999999 });
      assert(d <= 300_000 && d >= 299_000, `attempt ${attempt}: ${d}`);
    }
  });

  await t.step("should treat a negative attempt as the first", () => {
    equal(nextDelay(-3, { baseMs: 100, maxMs: 1000, random: () => 0 }), 50);
  });
});

Deno.test("Backoff", async (t) => {
  await t.step("should grow with failures and start over after reset()", () => {
    const backoff = new Backoff({ baseMs: 100, maxMs: 1000, random: () => 0 });
    deepEqual([backoff.next(), backoff.next(), backoff.next()], [50, 100, 200]);
    equal(backoff.failures, 3);
    backoff.reset();
    equal(backoff.failures, 0);
    equal(backoff.next(), 50);
  });
});

Deno.test("seededRandom()", async (t) => {
  await t.step("should repeat its sequence for the same seed and stay in [0, 1)", () => {
    const a = seededRandom(7);
    const b = seededRandom(7);
    const xs = Array.from({ length: 100 }, () => a());
    deepEqual(xs, Array.from({ length: 100 }, () => b()));
    assert(xs.every((x) => x >= 0 && x < 1));
    assert(new Set(xs).size > 90);
  });
});

/** Which settles first: `sleeping`, or a timer of 0 ms set now (the next turn of the loop). */
async function beforeNextTimer(sleeping: Promise<void>): Promise<"sleep" | "timer"> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      sleeping.then(() => "sleep" as const),
      new Promise<"timer">((resolve) => timer = setTimeout(() => resolve("timer"), 0)),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("sleep()", async (t) => {
  await t.step("should resolve at once when the signal is already aborted", async () => {
    const stop = new AbortController();
    stop.abort();
    equal(await beforeNextTimer(sleep(60_000, stop.signal)), "sleep");
  });
  await t.step("should resolve early when the signal aborts", async () => {
    const stop = new AbortController();
    const waiting = sleep(60_000, stop.signal);
    equal(await beforeNextTimer(waiting), "timer", "asleep while the signal holds");
    stop.abort();
    equal(await beforeNextTimer(waiting), "sleep", "awake as soon as it aborts");
  });
  await t.step("should resolve after its time when nothing aborts it", async () => {
    const waiting = sleep(1, new AbortController().signal);
    await withDeadline(waiting, { what: "a 1 ms sleep to end" });
  });
});

Deno.test("unlessAborted()", async (t) => {
  await t.step("should pass the work's result or failure through while not aborted", async () => {
    const running = new AbortController().signal;
    equal(await unlessAborted(Promise.resolve("home"), running, "stopped"), "home");
    await rejects(unlessAborted(Promise.reject(new Error("reset")), running, ""), /reset/);
  });
  await t.step("should give the fallback when the signal aborts during the work", async () => {
    const stop = new AbortController();
    let fail!: (err: Error) => void;
    const work = new Promise<string>((_, reject) => fail = reject);
    const result = unlessAborted(work, stop.signal, "stopped");
    stop.abort();
    equal(await result, "stopped");
    // A failure after the abort is nobody's business any more: no unhandled rejection.
    fail(new Error("late"));
  });
  await t.step(
    "should give the fallback at once, and drop a later failure, when aborted",
    async () => {
      const stop = new AbortController();
      stop.abort();
      equal(
        await unlessAborted(Promise.reject(new Error("late")), stop.signal, "stopped"),
        "stopped",
      );
    },
  );
});
