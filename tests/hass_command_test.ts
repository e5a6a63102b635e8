import { deepEqual, equal, ok, rejects } from "node:assert/strict";
import type { Io } from "../commands/_cli.ts";
import mqttCommand, { mqttSettings } from "../commands/mqtt.ts";
import { ConfigError, UsageError } from "../lib/errors.ts";
import { PYESS_LATEST, PYESS_SENSORS } from "./_hass_pyess.ts";
import { parsed } from "./_parse.ts";

const io: Io = {
  out: () => {},
  err: () => {},
  stdoutIsTerminal: false,
  stderrIsTerminal: false,
  env: (name) => name === "HOME" ? "/nonexistent" : undefined,
};

async function plugins(argv: string[]) {
  const p = await parsed(mqttCommand, ["--config", "/dev/null", ...argv], io);
  return (await mqttSettings(p)).plugins;
}

Deno.test("ess mqtt's Home Assistant settings", async (t) => {
  await t.step("should announce availability, and no expiry, without --once", async () => {
    equal((await plugins([])).hassSettings.expireAfterSeconds, undefined);
    equal(
      (await plugins(["--hass-expire-after", "60"])).hassSettings.expireAfterSeconds,
      undefined,
    );
  });

  await t.step("should let sensors expire after 15 minutes with --once, or as given", async () => {
    equal((await plugins(["--once"])).hassSettings.expireAfterSeconds, 900);
    equal(
      (await plugins(["--once", "--hass-expire-after", "3600"])).hassSettings.expireAfterSeconds,
      3600,
    );
  });

  await t.step("should refuse an expiry that is no whole number of seconds", async () => {
    for (const bad of ["0", "-5", "1.5", "soon", String(31 * 86_400)]) {
      await rejects(plugins(["--hass-expire-after", bad]), UsageError, bad);
    }
    const file = await Deno.makeTempFile();
    try {
      await Deno.writeTextFile(file, "once = true\nhass_expire_after = never\n");
      const p = await parsed(mqttCommand, ["--config", file], io);
      await rejects(mqttSettings(p), (err: Error) => {
        ok(err instanceof ConfigError);
        ok(err.message.startsWith(`${file}:2: hass-expire-after`), err.message);
        return true;
      });
    } finally {
      await Deno.remove(file);
    }
  });

  await t.step("should hand the plugin pyess's exact config topics", async () => {
    const s = await plugins(["--hass-autoconfig-sensors", PYESS_SENSORS]);
    deepEqual(s.hassSettings.pyessTopics, PYESS_LATEST.configs.map((c) => c.topic));
    equal(s.hassSettings.sensors?.length, PYESS_LATEST.configs.length);
    deepEqual((await plugins([])).hassSettings.pyessTopics, []);
  });

  await t.step("should refuse a hass_autoconfig_sensors list longer than any device", async () => {
    const long = Array.from({ length: 501 }, (_, i) => `ess/x/${i}`).join(",");
    await rejects(plugins(["--hass-autoconfig-sensors", long]), UsageError);
  });
});
