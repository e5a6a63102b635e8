import { deepEqual, equal, rejects, throws } from "node:assert/strict";
import type { Io } from "../commands/_cli.ts";
import { deviceHost, devicePassword } from "../commands/_device.ts";
import command, { mqttSettings } from "../commands/mqtt.ts";
import { brokerUrl } from "../commands/_mqtt.ts";
import { parsed } from "./_parse.ts";
import { UsageError } from "../lib/errors.ts";

const PYESS_CONFIG = new URL("../fixtures/pyess-essmqtt.conf", import.meta.url).pathname;

function memoryIo(env: Record<string, string> = {}): Io & { errors: string[] } {
  const errors: string[] = [];
  return {
    out: () => {},
    err: (text) => errors.push(text),
    stdoutIsTerminal: false,
    stderrIsTerminal: false,
    env: (name) => env[name],
    errors,
  };
}

async function settingsFor(argv: string[], env: Record<string, string> = {}) {
  const io = memoryIo({ HOME: "/nonexistent", ...env });
  const p = await parsed(command, argv, io);
  return { p, io, settings: await mqttSettings(p) };
}

Deno.test("ess mqtt options", async (t) => {
  await t.step("should read a pyess essmqtt config file unchanged", async () => {
    const { p, io, settings } = await settingsFor(["--config", PYESS_CONFIG]);
    equal((await deviceHost(p)).authority, "192.0.2.20");
    equal(devicePassword(p), "0a1b2c3d4e5f");
    equal(settings.connect.url, "mqtt://192.0.2.10:1884");
    equal(settings.connect.username, "essmqtt");
    equal(settings.connect.password, "not-a-real-secret");
    equal(settings.bridge.intervalMs, 15_000);
    equal(settings.bridge.commonDivisor, 4);
    equal(settings.bridge.once, false);
    deepEqual(settings.plugins.hassSettings.sensors, [
      "ess/home/statistics/pcs_pv_total_power",
      "ess/common/BATT/soc",
    ]);
    equal(p.logLevel, "info");
    deepEqual(io.errors, [], "no warnings about unknown keys");
  });

  await t.step("should default as pyess did, plus retained state in changes mode", async () => {
    const { settings } = await settingsFor(["--config", "/dev/null"]);
    equal(settings.connect.url, "mqtt://localhost:1883");
    deepEqual(settings.connect.will, {
      topic: "ess/status",
      payload: "offline",
      retain: true,
      qos: 1,
    });
    deepEqual(settings.bridge, {
      prefix: "ess",
      intervalMs: 10_000,
      commonDivisor: 1,
      publishMode: "changes",
      republishMs: 300_000,
      retain: true,
      json: false,
      once: false,
      controlSpacingMs: 2000,
      activeSpacingMs: 30_000,
    });
    equal(settings.plugins.hass, true);
  });

  await t.step("should let the command line beat the environment beat the file", async () => {
    const { settings } = await settingsFor(
      ["--config", PYESS_CONFIG, "--mqtt-user", "cli"],
      { MQTT_USER: "env", MQTT_PASSWORD: "env-secret", MQTT_SERVER: "mqtts://broker.test" },
    );
    equal(settings.connect.username, "cli");
    equal(settings.connect.password, "env-secret");
    equal(settings.connect.url, "mqtts://broker.test:1884");
  });

  await t.step("should take kebab-case and snake_case spellings alike", async () => {
    const { settings } = await settingsFor([
      "--config",
      "/dev/null",
      "--mqtt_server",
      "broker.test",
      "--interval-seconds",
      "2.5",
      "--no-retain",
      "--publish-mode",
      "all",
      "--json",
      "--once",
      "--no-hass",
      "--mqtt-prefix",
      "home/ess",
    ]);
    equal(settings.connect.url, "mqtt://broker.test:1883");
    equal(settings.connect.will, undefined);
    equal(settings.bridge.intervalMs, 2500);
    equal(settings.bridge.retain, false);
    equal(settings.bridge.publishMode, "all");
    equal(settings.bridge.json, true);
    equal(settings.bridge.once, true);
    equal(settings.bridge.prefix, "home/ess");
    equal(settings.plugins.hass, false);
  });

  await t.step("should take the control spacing from options and config keys", async () => {
    const file = await Deno.makeTempFile();
    try {
      await Deno.writeTextFile(file, "control_spacing_seconds = 5\nactive_spacing_seconds = 120\n");
      const { settings, io } = await settingsFor(["--config", file]);
      equal(settings.bridge.controlSpacingMs, 5000);
      equal(settings.bridge.activeSpacingMs, 120_000);
      deepEqual(io.errors, [], "known keys");
      const cli = await settingsFor(["--config", file, "--control-spacing-seconds", "0.5"]);
      equal(cli.settings.bridge.controlSpacingMs, 500);
      await rejects(
        settingsFor(["--config", "/dev/null", "--active-spacing-seconds", "soon"]),
        UsageError,
      );
    } finally {
      await Deno.remove(file);
    }
  });

  await t.step("should serve with a listen key, but not with --once", async () => {
    const file = await Deno.makeTempFile();
    try {
      await Deno.writeTextFile(
        file,
        "listen = 0.0.0.0:8080\ncontrol_token = 0123456789abcdef\nallowed_hosts = ess.lan, ha\n",
      );
      const { settings, io } = await settingsFor(["--config", file]);
      deepEqual(settings.serve, {
        address: { hostname: "0.0.0.0", port: 8080 },
        controlToken: "0123456789abcdef",
        allowedClients: undefined,
        allowedHosts: ["ess.lan", "ha"],
      });
      deepEqual(io.errors, [], "known keys");
      equal((await settingsFor(["--config", file, "--once"])).settings.serve, undefined);
      equal((await settingsFor(["--config", "/dev/null"])).settings.serve, undefined);
      await rejects(
        settingsFor(["--config", "/dev/null", "--once", "--listen", "127.0.0.1:8080"]),
        /--once polls once and exits, so it cannot serve/,
      );
    } finally {
      await Deno.remove(file);
    }
  });

  await t.step("should accept mqtt_retain = false in a config file", async () => {
    const file = await Deno.makeTempFile();
    try {
      await Deno.writeTextFile(file, "mqtt_retain = false\nno_such_key = 1\n");
      const { settings, io } = await settingsFor(["--config", file]);
      equal(settings.bridge.retain, false);
      deepEqual(io.errors, [`ess: warning: ${file}:2: unknown key "no_such_key" ignored\n`]);
    } finally {
      await Deno.remove(file);
    }
  });

  await t.step("should refuse bad values with the file and line", async () => {
    const file = await Deno.makeTempFile();
    try {
      await Deno.writeTextFile(file, "ess_host = h\ncommon_divisor = 0\n");
      await rejects(settingsFor(["--config", file]), new RegExp(`${file}:2: common-divisor`));
      await rejects(settingsFor(["--config", "/dev/null", "--publish-mode", "some"]), UsageError);
      await rejects(settingsFor(["--config", "/dev/null", "--mqtt-prefix", "ess/#"]), UsageError);
      await rejects(settingsFor(["--config", "/dev/null", "--mqtt-prefix", "ess\tx"]), UsageError);
      for (const prefix of ["ha/#", "/ha", "ha/"]) {
        await rejects(
          settingsFor(["--config", "/dev/null", "--hass-prefix", prefix]),
          new RegExp(`^UsageError: --hass-prefix "${prefix}" is not a usable topic prefix$`),
        );
      }
      await rejects(
        settingsFor(["--config", "/dev/null", "--mqtt-ca", "/nonexistent.pem"]),
        /--mqtt-ca \/nonexistent.pem: cannot read it/,
      );
    } finally {
      await Deno.remove(file);
    }
  });
});

Deno.test("brokerUrl()", async (t) => {
  await t.step("should build mqtt:// and mqtts:// URLs with the right default port", () => {
    equal(brokerUrl("localhost", undefined, false), "mqtt://localhost:1883");
    equal(brokerUrl("localhost", undefined, true), "mqtts://localhost:8883");
    equal(brokerUrl("mqtts://broker.lan", undefined, false), "mqtts://broker.lan:8883");
    equal(brokerUrl("mqtt://broker.lan:1999/", 1884, false), "mqtt://broker.lan:1999");
    equal(brokerUrl("broker.lan:1999", 1884, false), "mqtt://broker.lan:1999");
    equal(brokerUrl("broker.lan", 1884, false), "mqtt://broker.lan:1884");
    equal(brokerUrl("mqtt://broker.lan", undefined, true), "mqtts://broker.lan:8883");
    equal(brokerUrl("::1", undefined, false), "mqtt://[::1]:1883");
    equal(brokerUrl("mqtt://[::1]:1999", undefined, false), "mqtt://[::1]:1999");
  });
  await t.step("should refuse other schemes and credentials in the URL", () => {
    throws(() => brokerUrl("ws://broker.lan", undefined, false), UsageError);
    for (
      const server of [
        "mqtt://user:s3cr3t@broker.lan",
        "user:s3cr3t@broker.lan:1883",
        "wss://user:s3cr3t@broker.lan",
      ]
    ) {
      throws(
        () => brokerUrl(server, undefined, false),
        (err: unknown) =>
          err instanceof UsageError && /takes no user name or password/.test(err.message) &&
          !err.message.includes("s3cr3t"),
      );
    }
  });
});
