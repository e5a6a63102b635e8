import { deepEqual, equal, ok as assert, rejects } from "node:assert/strict";
import { seededRandom } from "../lib/backoff.ts";
import { BadAnswerError, WrongPasswordError } from "../lib/errors.ts";
import { Poller, type PollerOptions, type PollEvent } from "../lib/device/poller.ts";
import { FakeDevice, FakeTime, memoryLogger, settle } from "./_bridge_fakes.ts";

function harness(options: Partial<PollerOptions> = {}) {
  const device = new FakeDevice();
  const time = new FakeTime();
  const logger = memoryLogger();
  const poller = new Poller({
    device,
    options: { intervalMs: 10_000, commonDivisor: 1, ...options },
    logger,
    now: () => time.now,
    sleep: time.sleep,
    random: seededRandom(7),
  });
  const events: PollEvent[] = [];
  poller.listen((event) => void events.push(event));
  const stop = new AbortController();
  let running: Promise<void> | undefined;
  return {
    device,
    time,
    logger,
    poller,
    events,
    start() {
      running = poller.run(stop.signal);
      return running;
    },
    async stop() {
      stop.abort();
      await running;
    },
  };
}

Deno.test("Poller.run()", async (t) => {
  await t.step("should tell listeners what every poll read, in order", async () => {
    const h = harness({ commonDivisor: 2 });
    h.start();
    await h.time.sleeping();
    await h.time.advance();
    await h.time.advance();
    deepEqual(
      h.events.map((e) => e.ok && e.answers.map((a) => a.state).join(" ")),
      ["home common batt", "home", "home common"],
    );
    const first = h.events[0]!;
    assert(first.ok);
    deepEqual(first.answers[0]!.answer, h.device.states.home);
    equal(first.upChanged, true);
    equal(h.events[1]!.upChanged, false);
    equal(h.poller.up, true);
    equal(h.poller.lastSuccessAt, h.time.now);
    deepEqual(h.poller.latest("common")?.answer, h.device.states.common);
    await h.stop();
  });

  await t.step("should tell listeners of a failed poll with the error and the count", async () => {
    const h = harness();
    h.start();
    await h.time.sleeping();
    h.device.failure = new BadAnswerError("ess.test", "Reading home", 502, "<html>");
    await h.time.advance();
    const event = h.events.at(-1)!;
    assert(!event.ok);
    equal(event.failures, 1);
    equal(event.up, true, "one failure is within the grace period");
    equal(event.upChanged, false);
    assert(event.error.includes("HTTP 502"), event.error);
    equal(h.poller.lastError, event.error);
    h.device.failure = undefined;
    await h.time.advance();
    equal(h.poller.lastError, undefined);
    await h.stop();
  });

  await t.step("should read every state on the poll after a failed one", async () => {
    const h = harness({ commonDivisor: 3 });
    h.start();
    await h.time.sleeping();
    h.device.failure = new Error("reset");
    await h.time.advance();
    h.device.failure = undefined;
    h.device.reads.length = 0;
    await h.time.advance();
    deepEqual(h.device.reads, ["home", "common", "batt"]);
    await h.stop();
  });

  await t.step(
    "should count the device as down after 3 failures and 30 s, and up at the next answer",
    async () => {
      const h = harness({ intervalMs: 1000 });
      h.start();
      await h.time.sleeping();
      const lastAnswer = h.time.now;
      h.device.unplug();
      const changes: string[] = [];
      while (h.poller.up !== false) {
        assert(h.time.now - lastAnswer < 600_000, "still up after 10 minutes without answers");
        await h.time.advance();
        const event = h.events.at(-1)!;
        if (event.upChanged) changes.push(`${event.up} after ${h.poller.failures}`);
      }
      // At a 1 s interval three failures come quickly; the 30 s decide.
      assert(h.poller.failures > 3, String(h.poller.failures));
      assert(h.time.now - lastAnswer >= 30_000);
      deepEqual(changes, [`false after ${h.poller.failures}`]);
      equal(h.logger.lines.filter((l) => l.startsWith("warning")).length, 1);
      h.device.failure = undefined;
      await h.time.advance();
      equal(h.poller.up, true);
      equal(h.events.at(-1)!.upChanged, true);
      assert(h.logger.lines.some((l) => /^info: the device answers again/.test(l)));
      await h.stop();
    },
  );

  await t.step(
    "should leave the status unknown at start until the grace rule says down",
    async () => {
      const h = harness({ offlineAfterFailures: 2, offlineAfterMs: 15_000 });
      h.device.unplug();
      h.start();
      await h.time.sleeping();
      equal(h.poller.up, undefined);
      const start = h.time.now;
      while (h.poller.up === undefined) {
        assert(h.time.now - start < 600_000, "still unknown after 10 minutes without answers");
        await h.time.advance();
      }
      equal(h.poller.up, false);
      equal(h.events.filter((e) => e.upChanged).length, 1);
      await h.stop();
    },
  );

  await t.step("should return at once when stopped while a request hangs", async () => {
    const h = harness();
    h.device.gate = new Promise(() => {});
    h.start();
    await settle();
    await h.stop();
    equal(h.events.length, 0);
  });

  await t.step("should reject with a wrong password met by anyone's device work", async () => {
    const h = harness();
    const running = h.start();
    await h.time.sleeping();
    h.device.setWinterMode = () => Promise.reject(new WrongPasswordError("ess.test"));
    await rejects(h.poller.exclusive((d) => d.setWinterMode(true)), WrongPasswordError);
    await rejects(running, WrongPasswordError);
  });

  await t.step("should not read the device for a refresh once stopped", async () => {
    const h = harness();
    h.start();
    await h.time.sleeping();
    await h.stop();
    h.device.ops.length = 0;
    equal(await h.poller.refresh(), false);
    deepEqual(h.device.ops, []);
  });

  await t.step("should refuse to run twice at once", async () => {
    const h = harness();
    h.start();
    await rejects(h.poller.run(new AbortController().signal), /running already/);
    await h.stop();
  });
});

Deno.test("Poller device queue", async (t) => {
  await t.step(
    "should run reads and other work one at a time, first come first served",
    async () => {
      const h = harness();
      let open!: () => void;
      h.device.gate = new Promise((resolve) => open = resolve);
      const poll = h.poller.refresh(["home"]);
      const read = h.poller.read("systeminfo");
      const write = h.poller.exclusive((d) => d.setOperation(false));
      await settle();
      deepEqual(h.device.ops, ["read home"], "the others wait for the poll");
      h.device.gate = undefined;
      open();
      equal(await poll, true);
      await read;
      await write;
      deepEqual(h.device.ops, ["read home", "read systeminfo", "write operation stop"]);
      equal(h.poller.latest("systeminfo")?.at, h.time.now, "read() keeps the answer too");
    },
  );

  await t.step("should read a state once for callers who ask while it is read", async () => {
    const h = harness();
    let open!: () => void;
    h.device.gate = new Promise((resolve) => open = resolve);
    const poll = h.poller.refresh(["home"]);
    const waiting = [h.poller.read("systeminfo"), h.poller.read("systeminfo")];
    await settle();
    h.device.gate = undefined;
    open();
    await poll;
    const running = h.poller.read("systeminfo");
    const answers = await Promise.all([...waiting, running]);
    equal(answers[0], answers[1]);
    equal(answers[1], answers[2]);
    deepEqual(h.device.ops, ["read home", "read systeminfo"]);
    await h.poller.read("systeminfo");
    deepEqual(h.device.ops, ["read home", "read systeminfo", "read systeminfo"], "then anew");
  });

  await t.step("should tell listeners of a refresh, and wait for them", async () => {
    const h = harness();
    let release!: () => void;
    const held = new Promise<void>((resolve) => release = resolve);
    h.poller.listen(() => held);
    const refreshed = h.poller.refresh();
    const after = h.poller.read("home");
    await settle();
    deepEqual(h.device.ops, ["read home", "read common", "read batt"], "the next read waits");
    release();
    await refreshed;
    await after;
    equal(h.events.length, 1);
    deepEqual(h.device.ops.at(-1), "read home");
  });

  await t.step("should log a failing listener and go on", async () => {
    const h = harness();
    h.poller.listen(() => {
      throw new Error("boom");
    });
    equal(await h.poller.refresh(["home"]), true);
    assert(h.logger.lines.some((l) => /^error: a poll listener failed: boom/.test(l)));
    equal(h.events.length, 1);
  });

  await t.step("should stop telling a listener once it unsubscribes", async () => {
    const h = harness();
    const heard: boolean[] = [];
    const unlisten = h.poller.listen((e) => void heard.push(e.ok));
    await h.poller.refresh(["home"]);
    unlisten();
    await h.poller.refresh(["home"]);
    deepEqual(heard, [true]);
  });
});
