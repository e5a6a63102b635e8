import { deepEqual, equal, ok as assert } from "node:assert/strict";
import { seededRandom } from "../lib/backoff.ts";
import {
  ControlQueue,
  type ControlQueueOptions,
  type ControlResult,
} from "../lib/device/control_queue.ts";
import { type ControlName, parseControl } from "../lib/device/controls.ts";
import type { JsonObject } from "../lib/device/flatten.ts";
import { Poller } from "../lib/device/poller.ts";
import { FakeDevice, FakeTime, memoryLogger, settle } from "./_bridge_fakes.ts";

function harness(options: ControlQueueOptions = {}) {
  const device = new FakeDevice();
  const time = new FakeTime();
  const logger = memoryLogger();
  const deps = { logger, now: () => time.now, sleep: time.sleep };
  const poller = new Poller({
    ...deps,
    device,
    options: { intervalMs: 10_000, commonDivisor: 1 },
    random: seededRandom(3),
  });
  const queue = new ControlQueue({ ...deps, poller, options });
  /** Writes with the clock time they began, as `t+<ms> <call>`. */
  const writes: string[] = [];
  const start = time.now;
  device.onOp = (op) => {
    if (op.startsWith("write ")) writes.push(`t+${time.now - start} ${op.slice(6)}`);
  };
  const submit = (name: ControlName, payload: string, source = `test/${name}`) => {
    const command = parseControl(name, payload);
    if (typeof command === "string") throw new Error(command);
    return queue.submit(name, command, source);
  };
  return { device, time, logger, poller, queue, writes, submit };
}

const outcomes = (results: ControlResult[]) => {
  const counts: Record<string, number> = {};
  for (const { outcome } of results) counts[outcome] = (counts[outcome] ?? 0) + 1;
  return counts;
};

Deno.test("ControlQueue.submit()", async (t) => {
  await t.step("should write a command at once and then read every state back", async () => {
    const h = harness();
    const result = await h.submit("winter_mode", "on");
    deepEqual(result, { outcome: "written" });
    deepEqual(h.device.ops, [
      "write wintermode on",
      "read home",
      "read common",
      "read batt",
    ]);
    deepEqual(h.logger.lines, ["info: test/winter_mode: winter mode on"]);
  });

  await t.step(
    "should turn 1000 alternating start/stop commands into two writes, the last one winning",
    async () => {
      const h = harness();
      const results = Array.from(
        { length: 1000 },
        (_, i) => h.submit("active", i % 2 === 0 ? "true" : "false", "ess/control/active"),
      );
      await settle();
      deepEqual(h.writes, ["t+0 operation start"], "the first at once, the rest wait");
      await h.time.pass(30_000);
      await Promise.all(results);
      deepEqual(h.writes, ["t+0 operation start", "t+30000 operation stop"]);
      equal((h.device.states.home["operation"] as JsonObject)["status"], "stop");
      deepEqual(outcomes(await Promise.all(results)), { written: 2, merged: 998 });
      const summary = h.logger.lines.filter((l) => / commands in /.test(l));
      deepEqual(summary, [
        "info: 1000 commands in 30 s: 2 written, 998 replaced by a later one for the same " +
        "control (the latest command for a control wins; a control is written at most every 2 s, " +
        "active every 30 s)",
      ]);
      equal(h.logger.lines.filter((l) => !l.startsWith("debug")).length, 3, "two writes, one sum");
    },
  );

  await t.step("should drop a waiting command equal to the write it waited for", async () => {
    const h = harness();
    const results = ["on", "off", "on"].map((p) => h.submit("winter_mode", p));
    await h.time.pass(2_000);
    deepEqual(outcomes(await Promise.all(results)), { written: 1, merged: 1, unchanged: 1 });
    deepEqual(h.writes, ["t+0 wintermode on"]);
    assert(h.logger.lines.some((l) => /1 dropped as already in effect/.test(l)));
  });

  await t.step("should write the same value again once the spacing has passed", async () => {
    const h = harness();
    await h.submit("winter_mode", "on");
    await h.time.pass(5_000);
    await h.submit("winter_mode", "on");
    deepEqual(h.writes, ["t+0 wintermode on", "t+5000 wintermode on"]);
  });

  await t.step("should keep each control's own spacing, configurable", async () => {
    const h = harness({ controlSpacingMs: 5_000, activeSpacingMs: 60_000 });
    const results = [h.submit("winter_mode", "on"), h.submit("active", "off")];
    await Promise.all(results);
    results.push(h.submit("winter_mode", "off"), h.submit("active", "on"));
    await h.time.pass(60_000);
    await Promise.all(results);
    deepEqual(h.writes, [
      "t+0 wintermode on",
      "t+0 operation stop",
      "t+5000 wintermode off",
      "t+60000 operation start",
    ]);
  });

  await t.step("should let fast charge and the charge strategy share one slot", async () => {
    const h = harness();
    const results = [
      h.submit("fastcharge", "on"),
      h.submit("charge_strategy", "weather_forecast"),
      h.submit("fastcharge", "off"),
    ];
    await h.time.pass(2_000);
    deepEqual(outcomes(await Promise.all(results)), { written: 2, merged: 1 });
    deepEqual(h.writes, ["t+0 fastcharge on", "t+2000 fastcharge off"]);
    equal(h.device.states.batt["alg_setting"], "0", "the last command is in effect");
  });

  await t.step("should never have more than one write of a control in flight", async () => {
    const h = harness({ controlSpacingMs: 0 });
    let open!: () => void;
    h.device.writeGate = new Promise((resolve) => open = resolve);
    const results = ["on", "off", "on", "off"].map((p) => h.submit("backup_mode", p));
    await settle();
    deepEqual(h.device.ops, ["write backup on"]);
    h.device.writeGate = undefined;
    open();
    deepEqual(outcomes(await Promise.all(results)), { written: 2, merged: 2 });
    deepEqual(h.writes, ["t+0 backup on", "t+0 backup off"]);
  });

  await t.step("should write one command at a time, the oldest first", async () => {
    const h = harness();
    let open!: () => void;
    h.device.writeGate = new Promise((resolve) => open = resolve);
    const results = [
      h.submit("winter_mode", "on"),
      h.submit("backup_mode", "on"),
      h.submit("active", "off"),
    ];
    await settle();
    deepEqual(h.device.ops, ["write wintermode on"]);
    h.device.writeGate = undefined;
    open();
    await Promise.all(results);
    deepEqual(h.writes, ["t+0 wintermode on", "t+0 backup on", "t+0 operation stop"]);
    equal(h.device.reads.length, 9, "each write read back");
  });

  await t.step("should let a due poll go between two commands", async () => {
    const h = harness({ controlSpacingMs: 0 });
    const stop = new AbortController();
    const polling = h.poller.run(stop.signal);
    await h.time.sleeping();
    h.device.ops.length = 0;
    let open!: () => void;
    h.device.writeGate = new Promise((resolve) => open = resolve);
    const results = [h.submit("winter_mode", "on"), h.submit("fastcharge", "on")];
    await settle();
    // The poll comes due while the first write is under way.
    await h.time.pass(10_000);
    h.device.writeGate = undefined;
    open();
    await Promise.all(results);
    const between = h.device.ops.slice(1, h.device.ops.indexOf("write fastcharge on"));
    equal(between[0], "read home", h.device.ops.join(", "));
    stop.abort();
    await polling;
  });

  await t.step("should warn about a failed command, say so, and space the next one", async () => {
    const h = harness();
    h.device.setWinterMode = () => Promise.reject(new Error("refused by the device"));
    const failed = await h.submit("winter_mode", "on");
    deepEqual(failed, { outcome: "failed", error: "refused by the device" });
    assert(
      h.logger.lines.some((l) =>
        l === "warning: test/winter_mode: winter mode on failed: refused by the device"
      ),
    );
    equal(h.device.reads.length, 0, "nothing to read back");
    const next = h.submit("winter_mode", "off");
    await settle();
    equal(h.device.ops.length, 0, "spaced after the failure too");
    await h.time.pass(2_000);
    equal((await next).outcome, "failed");
  });

  await t.step("should log no summary for commands that came one at a time", async () => {
    const h = harness();
    await h.submit("winter_mode", "on");
    await h.time.pass(3_000);
    await h.submit("winter_mode", "off");
    equal(h.logger.lines.filter((l) => / commands? in /.test(l)).length, 0);
  });
});

Deno.test("ControlQueue.close()", async (t) => {
  await t.step("should drop waiting commands and refuse new ones", async () => {
    const h = harness();
    const first = h.submit("active", "on");
    const waiting = h.submit("active", "off");
    await first;
    h.queue.close();
    deepEqual(await waiting, { outcome: "stopped" });
    deepEqual(await h.submit("winter_mode", "on"), { outcome: "stopped" });
    deepEqual(h.writes, ["t+0 operation start"]);
    assert(h.logger.lines.includes("info: dropped 1 command not yet written: stopping"));
  });
});
