/**
 * The site bridge (lib/mqtt/site.ts) over a fake connection, with members that stand for the
 * devices' bridges: what the process says on `ess/status`, what each channel hears, and how the
 * members' failures end the run (the real bridges over a real broker: mqtt_site_test.ts).
 */
import { deepEqual, equal, ok, rejects } from "node:assert/strict";
import { createLogger } from "../lib/log.ts";
import { EssError, WrongPasswordError } from "../lib/errors.ts";
import type { MqttListener } from "../lib/mqtt/client.ts";
import type { BridgePlugin, MqttContext } from "../lib/mqtt/plugin.ts";
import { SiteBridge, type SiteMember } from "../lib/mqtt/site.ts";
import { FakeMqtt } from "./_bridge_fakes.ts";
import { waitFor } from "./_wait.ts";

/** A site bridge over a fake connection, logging into `lines`. */
function site(once = false, plugins: BridgePlugin<MqttContext>[] = []) {
  const mqtt = new FakeMqtt();
  const lines: string[] = [];
  const logger = createLogger("debug", (line) => lines.push(line));
  const bridge = new SiteBridge({
    mqtt,
    options: { prefix: "ess", once, plugins },
    logger,
    now: () => 0,
  });
  return { mqtt, lines, logger, bridge };
}

/** What the members' loggers said as errors, `name: line`. */
const logs: string[] = [];

/** A member that runs until aborted, or fails at once with `error`. */
function member(name: string, error?: Error): SiteMember {
  const logger = createLogger("debug", () => {});
  return {
    name,
    logger: { ...logger, error: (m: string) => logs.push(`${name}: ${m}`) },
    run: (signal) =>
      error
        ? Promise.reject(error)
        : new Promise((resolve) => signal.addEventListener("abort", () => resolve())),
  };
}
/** A listener that records what it hears. */
function recorder(heard: string[]): MqttListener {
  return {
    connected: () => heard.push("connected"),
    disconnected: (why) => heard.push(`disconnected ${why}`),
    message: (topic, payload) => heard.push(`${topic} ${payload}`),
    warning: (m) => heard.push(`warning ${m}`),
  };
}

Deno.test("SiteBridge", async (t) => {
  await t.step("should say online at every connect, and offline once stopped", async () => {
    const { mqtt, bridge } = site();
    const stop = new AbortController();
    const running = bridge.run([member("a"), member("b")], stop.signal);
    mqtt.connect();
    mqtt.drop();
    mqtt.connect();
    await waitFor(() => mqtt.sent.length === 2, { what: "two statuses" });
    deepEqual(mqtt.take().map((m) => `${m.topic} ${m.payload} ${m.retain} ${m.qos}`), [
      "ess/status online true 1",
      "ess/status online true 1",
    ]);
    stop.abort();
    await running;
    deepEqual(mqtt.take().map((m) => `${m.topic} ${m.payload}`), ["ess/status offline"]);
    ok(mqtt.closed, "the site closes the connection");
  });

  await t.step("should tell every channel all but the warnings, which it logs once", () => {
    const { mqtt, bridge, lines } = site();
    const [a, b] = [bridge.channel(), bridge.channel()];
    const [heardA, heardB] = [[] as string[], [] as string[]];
    a.listen(recorder(heardA));
    b.listen(recorder(heardB));
    mqtt.connect();
    mqtt.deliver("ess/b/control/winter_mode", "on");
    mqtt.warn("client id in use");
    mqtt.drop("reset");
    const expected = ["connected", "ess/b/control/winter_mode on", "disconnected reset"];
    deepEqual(heardA, expected);
    deepEqual(heardB, expected);
    equal(lines.filter((l) => l.includes("client id in use")).length, 1);
  });

  await t.step("should let a channel's close() only stop it hearing", async () => {
    const { mqtt, bridge } = site();
    const a = bridge.channel();
    const heard: string[] = [];
    a.listen(recorder(heard));
    await a.close();
    mqtt.connect();
    deepEqual(heard, []);
    equal(mqtt.closed, false);
  });

  await t.step("should hand its plugins the process's prefix and messages", async () => {
    const seen: string[] = [];
    const plugin: BridgePlugin<MqttContext> = {
      subscriptions: ["ess/surplus/+/set"],
      onConnect: async (ctx) => {
        await ctx.publish(`${ctx.prefix}/surplus/power`, "100", { retain: true });
      },
      onMessage: (topic, payload) => void seen.push(`${topic} ${payload}`),
    };
    const { mqtt, bridge } = site(false, [plugin]);
    const stop = new AbortController();
    const running = bridge.run([member("a")], stop.signal);
    mqtt.connect();
    mqtt.deliver("ess/surplus/heater/set", "on");
    mqtt.deliver("ess/a/control/active", "on");
    await waitFor(() => seen.length === 1 && mqtt.sent.length === 2, { what: "the plugin" });
    deepEqual(mqtt.subscriptions, [["ess/surplus/+/set"]]);
    equal(mqtt.last("ess/surplus/power"), "100");
    deepEqual(seen, ["ess/surplus/heater/set on"]);
    stop.abort();
    await running;
  });

  await t.step("should run on when one member fails for good, and say which", async () => {
    logs.length = 0;
    const { mqtt, bridge } = site();
    mqtt.connect();
    const stop = new AbortController();
    const running = bridge.run(
      [member("a", new WrongPasswordError("192.168.1.20")), member("b")],
      stop.signal,
    );
    await waitFor(() => logs.length === 1, { what: "a's error" });
    ok(logs[0]!.startsWith("a: stopped polling and publishing: Cannot log in to 192.168.1.20"));
    equal(mqtt.last("ess/status"), "online");
    stop.abort();
    await running;
  });

  await t.step("should reject with the first error when every member failed", async () => {
    const { bridge } = site();
    const first = new WrongPasswordError("192.168.1.20");
    await rejects(
      bridge.run(
        [member("a", first), member("b", new EssError("other"))],
        new AbortController().signal,
      ),
      (err) => err === first,
    );
  });

  await t.step("with once: should say nothing on ess/status and name who failed", async () => {
    const { mqtt, bridge } = site(true);
    mqtt.connect();
    const done = (name: string): SiteMember => ({ ...member(name), run: () => Promise.resolve() });
    await rejects(
      bridge.run(
        [done("a"), member("b", new EssError("Cannot reach b")), done("c")],
        new AbortController().signal,
      ),
      { message: "published 2 of 3 devices; not b (see above)" },
    );
    await rejects(
      bridge.run(
        [member("a", new EssError("x")), member("b", new EssError("y"))],
        new AbortController().signal,
      ),
      { message: "nothing published: no device could be polled and published (a, b; see above)" },
    );
    deepEqual(mqtt.sent, []);
  });
});
