import { deepEqual, equal, match, notEqual, ok } from "node:assert/strict";
import { seededRandom } from "../lib/backoff.ts";
import { ControlQueue } from "../lib/device/control_queue.ts";
import { parseControl } from "../lib/device/controls.ts";
import type { JsonObject } from "../lib/device/flatten.ts";
import { Poller } from "../lib/device/poller.ts";
import type { CalendarDate, GraphDevice, GraphSpan } from "../lib/device/states.ts";
import { pollerSource } from "../lib/serve/poller_source.ts";
import { FakeDevice, memoryLogger, settle } from "./_bridge_fakes.ts";

/** A device with systeminfo, a poller over it on a clock the test moves, and the source. */
function harness() {
  const device = new FakeDevice();
  const states = device.states as Record<string, JsonObject>;
  states["systeminfo"] = { pms: { model: "LG ESS Home 10", serialno: "ESSTEST001" } };
  let now = 1_700_000_000_000;
  const logger = memoryLogger();
  const clock = { logger, now: () => now, sleep: () => Promise.resolve() };
  const options = { intervalMs: 10_000, commonDivisor: 1 };
  const poller = new Poller({ device, options, random: seededRandom(3), ...clock });
  const spacing = { controlSpacingMs: 0, activeSpacingMs: 0 };
  const controls = new ControlQueue({ poller, options: spacing, ...clock });
  const graphs: string[] = [];
  const client = {
    graph(graph: GraphDevice, span: GraphSpan, date: CalendarDate) {
      graphs.push(`${graph}/${span}/${date.year}-${date.month}-${date.day}`);
      device.ops.push(`graph ${graph} ${span}`);
      return Promise.resolve({ loginfo: [{ t: "x" }] });
    },
  };
  const source = pollerSource(poller, controls, client, { logger, now: () => now });
  let told = 0;
  source.onPoll(() => told++);
  return {
    device,
    states,
    poller,
    controls,
    source,
    graphs,
    logger,
    told: () => told,
    pass: (ms: number) => now += ms,
    /** One poll, then the work it queued (a systeminfo read). */
    async poll(): Promise<boolean> {
      const ok = await poller.refresh();
      await settle();
      return ok;
    },
    systeminfoReads: () => device.reads.filter((s) => s === "systeminfo").length,
    /** Unplugs the device and polls until it counts as down (three tries over 30 s). */
    async goOffline(): Promise<void> {
      device.unplug();
      for (let i = 0; i < 3; i++) {
        now += 15_000;
        equal(await this.poll(), false);
      }
      equal(poller.up, false);
    },
  };
}

Deno.test("pollerSource() serves what the poller reads", async (t) => {
  await t.step("should serve the latest answers, the same snapshot until they change", async () => {
    const h = harness();
    deepEqual(h.source.snapshot(), {
      states: {},
      lastSuccess: undefined,
      up: undefined,
      error: undefined,
      reading: undefined,
    });
    await h.poll();
    const first = h.source.snapshot();
    equal(first.reading, h.poller.reading, "the poller's reading, made once per poll");
    equal(first.reading?.model, "LG ESS Home 10");
    deepEqual(first.states, {
      home: h.device.states.home,
      common: h.device.states.common,
      batt: h.device.states.batt,
      systeminfo: h.states["systeminfo"],
    });
    equal(first.up, true);
    equal(first.lastSuccess, h.poller.lastSuccessAt);
    equal(h.source.snapshot(), first, "nothing changed: the very same object");
    h.pass(10_000);
    await h.poll();
    notEqual(h.source.snapshot(), first);
  });

  await t.step("should never serve the network state, even when someone read it", async () => {
    const h = harness();
    h.states["network"] = { wlan: { ssid: "home", password: "wifi-secret" } };
    await h.poll();
    await h.poller.read("network");
    equal("network" in h.source.snapshot().states, false);
  });

  await t.step("should say why the device is down, once it counts as down", async () => {
    const h = harness();
    await h.poll();
    await h.goOffline();
    const snapshot = h.source.snapshot();
    equal(snapshot.up, false);
    match(snapshot.error ?? "", /connection refused/);
    deepEqual(snapshot.states.home, h.device.states.home, "the last answers stay");
  });
});

Deno.test("pollerSource() reads systeminfo when it is needed, not every poll", async (t) => {
  await t.step("should read it once, through the device queue, after the first poll", async () => {
    const h = harness();
    await h.poll();
    for (let i = 0; i < 5; i++) {
      h.pass(10_000);
      await h.poll();
    }
    equal(h.systeminfoReads(), 1);
    deepEqual(h.device.ops.slice(0, 4), [
      "read home",
      "read common",
      "read batt",
      "read systeminfo",
    ]);
    equal(h.source.snapshot().states.systeminfo, h.poller.latest("systeminfo")?.answer);
  });

  await t.step("should read it again when the device is back after counting as down", async () => {
    const h = harness();
    await h.poll();
    await h.goOffline();
    h.device.failure = undefined;
    h.states["systeminfo"] = { pms: { model: "LG ESS Home 10", serialno: "ESSTEST002" } };
    h.pass(15_000);
    await h.poll();
    equal(h.systeminfoReads(), 2);
    deepEqual(h.source.snapshot().states.systeminfo, h.states["systeminfo"]);
  });

  await t.step("should not read it again after a failed poll the grace period hid", async () => {
    const h = harness();
    await h.poll();
    h.device.unplug();
    h.pass(10_000);
    await h.poll();
    h.device.failure = undefined;
    h.pass(10_000);
    await h.poll();
    equal(h.poller.up, true);
    equal(h.systeminfoReads(), 1);
  });

  await t.step("should not read it when someone else already did", async () => {
    const h = harness();
    await h.poller.read("systeminfo");
    await h.poll();
    equal(h.systeminfoReads(), 1);
    equal(h.source.snapshot().states.systeminfo !== undefined, true);
  });

  await t.step("should try a failed read again after a minute, not every poll", async () => {
    const h = harness();
    const read = h.device.read.bind(h.device);
    let refuse = true;
    h.device.read = (state) =>
      state === "systeminfo" && refuse ? Promise.reject(new Error("502 Bad Gateway")) : read(state);
    await h.poll();
    for (let i = 0; i < 5; i++) {
      h.pass(10_000);
      await h.poll();
    }
    equal(h.source.snapshot().states.systeminfo, undefined);
    equal(h.systeminfoReads(), 0, "the failed reads never reached the fake's record");
    refuse = false;
    h.pass(10_000);
    await h.poll();
    equal(h.systeminfoReads(), 1);
    ok(h.logger.lines.some((l) => /reading systeminfo failed: 502 Bad Gateway/.test(l)));
    equal(h.source.snapshot().states.systeminfo !== undefined, true);
  });
});

Deno.test("pollerSource() tells the server, reads graphs and passes commands on", async (t) => {
  await t.step("should tell listeners after every poll and when systeminfo came", async () => {
    const h = harness();
    await h.poll();
    equal(h.told(), 2, "the poll, then systeminfo");
    h.device.unplug();
    h.pass(10_000);
    await h.poll();
    equal(h.told(), 3, "a failed poll too");
    h.source.close();
    h.device.failure = undefined;
    await h.poll();
    equal(h.told(), 3, "nothing after close()");
  });

  await t.step("should read a graph through the device queue, after a poll under way", async () => {
    const h = harness();
    await h.poll();
    const gate = Promise.withResolvers<void>();
    h.device.gate = gate.promise;
    const polling = h.poller.refresh(["home"]);
    await settle();
    const graph = h.source.graph("pv", "day", { year: 2026, month: 6, day: 21 });
    await settle();
    deepEqual(h.graphs, [], "the graph waits for the poll");
    h.device.gate = undefined;
    gate.resolve();
    await polling;
    deepEqual(await graph, { loginfo: [{ t: "x" }] });
    deepEqual(h.graphs, ["pv/day/2026-6-21"]);
    deepEqual(h.device.ops.slice(-2), ["read home", "graph pv day"]);
  });

  await t.step("should queue a command, write it and answer the queue's result", async () => {
    const h = harness();
    await h.poll();
    const command = parseControl("winter_mode", "on");
    ok(typeof command !== "string");
    deepEqual(await h.source.control("winter_mode", command, "http 127.0.0.1:5000"), {
      outcome: "written",
    });
    deepEqual(h.device.calls, ["wintermode on"]);
    ok(h.logger.lines.includes("info: http 127.0.0.1:5000: winter mode on"));
    equal(
      (h.source.snapshot().states.batt as JsonObject)["winter_setting"],
      "on",
      "read back at once",
    );
    h.controls.close();
    deepEqual(await h.source.control("winter_mode", command, "http 127.0.0.1:5000"), {
      outcome: "stopped",
    });
  });
});
