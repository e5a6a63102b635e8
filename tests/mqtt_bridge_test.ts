/**
 * The bridge end to end: the simulator as the device, a real broker (aedes in-process, and
 * mosquitto when installed), and `ess mqtt` itself as a subprocess where signals, exit codes and
 * config files matter.
 */
import { deepEqual, equal, ok as assert } from "node:assert/strict";
import { BATT_SETTING_PATH, OPERATION_PATH } from "../lib/device/states.ts";
import { BROKERS, watch } from "./_broker.ts";
import { runCli, spawnCli } from "./_cli.ts";
import {
  controlRequests,
  deviceTopics,
  withBridge,
  withWorld,
  type World,
  worldArgs,
} from "./_world.ts";

function allPublished(w: World): boolean {
  for (const [topic, value] of deviceTopics(w.sim)) {
    if (w.watcher.last.get(topic)?.payload !== value) return false;
  }
  return true;
}

/** `ess mqtt` as a long-running subprocess against the world. */
function spawnEss(w: World): Deno.ChildProcess {
  return spawnCli(["mqtt", ...worldArgs(w), "--interval-seconds", "1"]);
}

for (const { name, start, ignore } of BROKERS) {
  Deno.test({ name: `ess mqtt with the simulator and ${name}`, ignore }, async (t) => {
    await t.step(
      "should publish every pyess topic and ess/batt/... with the device's values, and online",
      () =>
        withWorld(start, async (w) => {
          await withBridge(w, {}, async () => {
            await w.watcher.until(() => allPublished(w), "every state topic");
            equal(w.watcher.last.get("ess/batt/alg_setting")?.payload, w.sim.device.algSetting);
            assert(w.watcher.last.has("ess/common/BATT/soc"), "pyess's topics as they were");
            await w.watcher.until(
              () => w.watcher.last.get("ess/status")?.payload === "online",
              "online",
            );
          });
          equal(w.watcher.last.get("ess/status")?.payload, "offline", "offline after a clean stop");
          const late = await watch(w.broker.url);
          try {
            await late.until(
              () =>
                ["ess/common/BATT/soc", "ess/batt/alg_setting", "ess/status"].every((t) =>
                  late.last.has(t)
                ),
              "retained state and status",
            );
            assert(late.last.get("ess/common/BATT/soc")!.retained, "state is retained");
            assert(late.last.get("ess/batt/alg_setting")!.retained, "batt is retained");
            equal(late.last.get("ess/status")?.payload, "offline");
          } finally {
            await late.close();
          }
        }),
    );

    await t.step(
      "should carry every control payload to the device with the right polarity",
      () =>
        withWorld(start, async (w) => {
          // A long interval: only the read-back after each command can publish the change.
          await withBridge(w, { intervalMs: 60_000 }, async () => {
            await w.watcher.until(
              () => w.watcher.last.get("ess/status")?.payload === "online",
              "online",
            );
            const send = async (topic: string, payload: string, expected: string) => {
              const before = controlRequests(w.sim).length;
              await w.watcher.publish(topic, payload);
              await w.watcher.until(
                () => controlRequests(w.sim).length > before,
                `${topic} ${payload} to reach the device`,
              );
              equal(controlRequests(w.sim).at(-1), expected, `${topic} ${payload}`);
            };
            await send("ess/control/active", "false", `${OPERATION_PATH} {"operation":"stop"}`);
            await w.watcher.until(
              () => w.watcher.last.get("ess/home/operation/status")?.payload === "stop",
              "the new state published at once",
            );
            await send("ess/control/active", "ON", `${OPERATION_PATH} {"operation":"start"}`);
            await send("/ess/control/active", "stop", `${OPERATION_PATH} {"operation":"stop"}`);
            await send(
              "ess/control/winter_mode",
              "true",
              `${BATT_SETTING_PATH} {"wintermode":"on"}`,
            );
            equal(w.sim.device.winterMode, true, "winter_mode true switches winter mode ON");
            await send(
              "/ess/control/winter_mode",
              "0",
              `${BATT_SETTING_PATH} {"wintermode":"off"}`,
            );
            await send(
              "ess/control/fastcharge",
              "True",
              `${BATT_SETTING_PATH} {"alg_setting":"on"}`,
            );
            await w.watcher.until(
              () => w.watcher.last.get("ess/batt/alg_setting")?.payload === "on",
              "the new alg_setting published at once",
            );
            await send(
              "/ess/control/fastcharge",
              "off",
              `${BATT_SETTING_PATH} {"alg_setting":"off"}`,
            );
            await send(
              "ess/control/charge_strategy",
              "fast_charge",
              `${BATT_SETTING_PATH} {"alg_setting":"on"}`,
            );
            await send("ess/control/backup_mode", "on", `${BATT_SETTING_PATH} {"backupmode":"on"}`);
            await send(
              "ess/control/backup_soc",
              "40",
              `${BATT_SETTING_PATH} {"backupmode":"on","backup_soc":"40"}`,
            );
            equal(w.sim.device.backupSoc, 40);
            await w.watcher.until(
              () => w.watcher.last.get("ess/batt/backup_soc")?.payload === "40",
              "the new backup reserve published at once",
            );
            await send(
              "ess/control/backup_mode",
              "off",
              `${BATT_SETTING_PATH} {"backupmode":"off"}`,
            );
          });
        }),
    );

    await t.step(
      "should set the charge strategy on newer firmware",
      () =>
        withWorld(start, async (w) => {
          await withBridge(w, {}, async () => {
            await w.watcher.until(
              () => w.watcher.last.get("ess/status")?.payload === "online",
              "online",
            );
            await w.watcher.publish("ess/control/charge_strategy", "weather-forecast");
            await w.watcher.until(() => w.sim.device.algSetting === "2", "alg_setting 2");
            deepEqual(controlRequests(w.sim), [`${BATT_SETTING_PATH} {"alg_setting":"2"}`]);
            await w.watcher.until(
              () => w.watcher.last.get("ess/batt/alg_setting")?.payload === "2",
              "ess/batt/alg_setting 2",
            );
          });
        }, "new"),
    );

    await t.step(
      "should change nothing on 'maybe' and live on",
      () =>
        withWorld(start, async (w) => {
          await withBridge(w, {}, async () => {
            await w.watcher.until(
              () => w.watcher.last.get("ess/status")?.payload === "online",
              "online",
            );
            await w.watcher.publish("ess/control/active", "maybe");
            await w.watcher.until(() => w.log.some((l) => /"maybe"/.test(l)), "the warning");
            const polls = w.sim.requests.length;
            await w.watcher.until(() => w.sim.requests.length > polls + 2, "more polls");
            deepEqual(controlRequests(w.sim), []);
            equal(w.sim.device.operation, "start");
            equal(w.log.filter((l) => l.startsWith("warning")).length, 1, w.log.join("\n"));
          });
        }),
    );

    await t.step(
      "should go on publishing with a new login after the auth key expires",
      () =>
        withWorld(start, async (w) => {
          // Publish mode all: with the house standing still, only that shows publishing goes on.
          await withBridge(w, { publishMode: "all" }, async () => {
            await w.watcher.until(
              () => w.watcher.last.get("ess/status")?.payload === "online",
              "online",
            );
            w.sim.expireKeys();
            const seen = w.sim.requests.length;
            await w.watcher.until(
              () => w.sim.requests.slice(seen).some((r) => r.status === 405),
              "a refused key",
            );
            const mark = w.watcher.all.length;
            await w.watcher.until(
              () =>
                w.watcher.all.slice(mark).some((m) => m.topic === "ess/home/statistics/load_power"),
              "publishing after the refused key",
            );
            equal(w.sim.requests.filter((r) => r.path.endsWith("/login")).length, 2, "a new login");
            deepEqual(w.watcher.all.filter((m) => m.topic === "ess/status").map((m) => m.payload), [
              "online",
            ], "never offline");
          });
        }),
    );

    await t.step(
      "should go offline while the device is unreachable, and online after",
      () =>
        withWorld(start, async (w) => {
          // A grace period that fits the 1.5 s outage: three failed tries over 300 ms.
          await withBridge(w, { offlineAfterMs: 300 }, async () => {
            await w.watcher.until(
              () => w.watcher.last.get("ess/status")?.payload === "online",
              "online",
            );
            await w.sim.refuseConnections(1500);
            await w.watcher.until(
              () => w.watcher.last.get("ess/status")?.payload === "offline",
              "offline",
            );
            await w.watcher.until(
              () => w.watcher.last.get("ess/status")?.payload === "online",
              "online again",
            );
            const lines = w.log.filter((l) => !l.startsWith("debug"));
            equal(
              lines.filter((l) => /cannot read the device/.test(l)).length,
              1,
              lines.join("\n"),
            );
            equal(lines.filter((l) => /answers again/.test(l)).length, 1, lines.join("\n"));
          });
        }),
    );

    await t.step(
      "should bring state back after a broker restart without restarting ess",
      () =>
        withWorld(start, async (w) => {
          await withBridge(w, {}, async () => {
            await w.watcher.until(() => allPublished(w), "every state topic");
            await w.broker.stop();
            await w.broker.start();
            w.watcher.last.clear();
            // The restarted broker has forgotten everything: only a republish can bring it back.
            await w.watcher.until(() => allPublished(w), "every state topic again");
            await w.watcher.until(
              () => w.watcher.last.get("ess/status")?.payload === "online",
              "online",
            );
            await w.watcher.publish("ess/control/winter_mode", "on");
            await w.watcher.until(() => w.sim.device.winterMode, "commands after the restart");
          });
        }),
    );

    await t.step(
      "should never act on a retained command present at start-up",
      () =>
        withWorld(start, async (w) => {
          await w.watcher.publish("ess/control/active", "false", true);
          await w.watcher.publish("/ess/control/active", "false", true);
          await withBridge(w, {}, async () => {
            await w.watcher.until(() => allPublished(w), "every state topic");
            await w.watcher.until(() => w.log.some((l) => /retained/.test(l)), "the warning");
          });
          deepEqual(controlRequests(w.sim), []);
          equal(w.sim.device.operation, "start");
          await w.watcher.publish("ess/control/active", "", true);
          await w.watcher.publish("/ess/control/active", "", true);
        }),
    );

    await t.step(
      "should carry out a command sent retained while it runs, once: not at its next start",
      () =>
        withWorld(start, async (w) => {
          try {
            await withBridge(w, {}, async () => {
              await w.watcher.until(() => allPublished(w), "every state topic");
              // The broker hands a live message on without the flag, however it was sent.
              await w.watcher.publish("ess/control/winter_mode", "on", true);
              await w.watcher.until(() => w.sim.device.winterMode, "the command carried out");
            });
            equal(controlRequests(w.sim).length, 1);
            const mark = w.log.length;
            await withBridge(w, {}, async () => {
              await w.watcher.until(
                () => w.log.slice(mark).some((l) => /ignoring the retained message/.test(l)),
                "the warning at the next start",
              );
            });
            equal(controlRequests(w.sim).length, 1, "not carried out again");
          } finally {
            await w.watcher.publish("ess/control/winter_mode", "", true);
          }
        }),
    );

    await t.step(
      "should publish offline and exit 0 on SIGTERM (subprocess)",
      () =>
        withWorld(start, async (w) => {
          const child = spawnEss(w);
          const output = child.output();
          try {
            await w.watcher.until(
              () => w.watcher.last.get("ess/status")?.payload === "online",
              "online",
            );
            await w.watcher.until(() => allPublished(w), "every state topic");
          } finally {
            child.kill("SIGTERM");
          }
          const signalled = Date.now();
          const { code, stderr } = await output;
          const took = Date.now() - signalled;
          equal(code, 0, new TextDecoder().decode(stderr));
          assert(took < 2000, `exited ${took} ms after SIGTERM`);
          await w.watcher.until(
            () => w.watcher.last.get("ess/status")?.payload === "offline",
            "offline",
          );
        }),
    );

    await t.step(
      "should leave offline as its last will when killed (subprocess)",
      () =>
        withWorld(start, async (w) => {
          const child = spawnEss(w);
          const output = child.output();
          try {
            await w.watcher.until(
              () => w.watcher.last.get("ess/status")?.payload === "online",
              "online",
            );
          } finally {
            child.kill("SIGKILL");
          }
          await output;
          await w.watcher.until(
            () => w.watcher.last.get("ess/status")?.payload === "offline",
            "offline",
          );
        }),
    );

    await t.step(
      "should run from a pyess config file unchanged (subprocess, once)",
      () =>
        withWorld(start, async (w) => {
          const dir = await Deno.makeTempDir();
          try {
            const config = `${dir}/essmqtt.conf`;
            await Deno.writeTextFile(
              config,
              [
                "# written as for pyess's essmqtt",
                `ess_password = ${w.sim.password}`,
                `ess_host = ${w.sim.host}`,
                "mqtt_server = 127.0.0.1",
                `mqtt_port = ${w.broker.port}`,
                "mqtt_user = essmqtt",
                "mqtt_password = secret",
                "interval_seconds = 10",
                "common_divisor = 3",
                "hass_autoconfig_sensors = ess/common/BATT/soc",
                "once = true",
                "loglevel = WARNING",
                "",
              ].join("\n"),
            );
            const { code, stderr } = await runCli(["mqtt", "--config", config]);
            equal(code, 0, stderr);
            equal(stderr, "", "no warnings");
            await w.watcher.until(() => allPublished(w), "every state topic");
          } finally {
            await Deno.remove(dir, { recursive: true });
          }
        }),
    );

    await t.step(
      "should exit 78 with one line on a wrong password (subprocess)",
      () =>
        withWorld(start, async (w) => {
          const { code, stderr } = await runCli([
            "mqtt",
            "--config",
            "/dev/null",
            "--host",
            w.sim.host,
            "--password",
            "000000000000",
            "--mqtt-server",
            w.broker.url,
          ]);
          equal(code, 78);
          const lines = stderr.trimEnd().split("\n")
            .filter((l) => !l.startsWith("ess: info: "));
          equal(lines.length, 1, lines.join("\n"));
          assert(/^ess: Cannot log in to .*: wrong password/.test(lines[0]!), String(lines[0]));
        }),
    );
  });
}
