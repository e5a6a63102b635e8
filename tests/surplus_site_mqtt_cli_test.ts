/**
 * The surplus of several devices end to end: `ess mqtt` with a config that declares three
 * simulated devices publishes each device's surplus under `ess/<name>/surplus/...` and the
 * site's under `ess/surplus/...` (and serves them with `--listen`), announces them to Home Assistant (each device's on its own
 * device, the site's on `LG ESS site`), and turns the site's rules off once a device has been
 * away for the grace period, while the others' go on (the engine's tests show it coming back).
 *
 * @module
 */
import { deepEqual, doesNotMatch, equal, match, ok } from "node:assert/strict";
import type { JsonObject } from "../lib/device/flatten.ts";
import { startAedes } from "./_broker.ts";
import { watch } from "./_broker.ts";
import { spawnDaemon } from "./_cli.ts";
import { getJson } from "./_serve_http.ts";
import { discoveryProblems, entityState } from "./_hass_rules.ts";
import { startSite } from "./_site.ts";
import { NOON } from "./_world.ts";

const NAMES = ["sim1", "sim2", "sim3"] as const;
/** A rule that is on whatever the sun does, at once. */
const ALWAYS = ["on-watts = -100000", "off-watts = -100000", "on-delay-seconds = 0"];

const isWatts = (payload: string | undefined) => /^-?\d+$/.test(payload ?? "");

Deno.test("ess mqtt publishes each device's surplus and the site's", async (t) => {
  const broker = await startAedes();
  await using site = await startSite(NAMES.length, {
    top: [
      `mqtt_server = ${broker.url}`,
      "interval_seconds = 1",
      ...ALWAYS.map((line) => `surplus.boiler.${line}`),
      ...ALWAYS.map((line) => `surplus.pump.${line}`),
      "surplus.pump.device = sim1",
    ],
    simulator: { now: () => NOON },
  });
  const watcher = await watch(broker.url);
  const seen = (topic: string) => watcher.last.get(topic)?.payload;
  const ess = spawnDaemon(["mqtt", "--config", site.config, "--listen", "127.0.0.1:0"]);
  try {
    await t.step("should publish each device's surplus and the site's, their sum", async () => {
      await watcher.until(
        () =>
          NAMES.every((n) => isWatts(seen(`ess/${n}/surplus/power`))) &&
          isWatts(seen("ess/surplus/power")) && seen("ess/surplus/boiler") === "on" &&
          seen("ess/sim1/surplus/pump") === "on",
        "every device's surplus, the site's and both rules on",
      );
      // Each device's own surplus keeps the reserve back; the site keeps it back once.
      const parts = NAMES.map((n) => Number(seen(`ess/${n}/surplus/power`)) + 100);
      const sum = parts.reduce((a, b) => a + b, 0) - 100;
      ok(Math.abs(Number(seen("ess/surplus/power")) - sum) <= 3, `${parts} and ${sum}`);
      // A rule is published where it is computed only.
      equal(seen("ess/surplus/pump"), undefined);
      equal(seen("ess/sim2/surplus/pump"), undefined);
      equal(seen("ess/sim1/surplus/boiler"), undefined);
    });

    await t.step("should serve the same surplus with --listen", async () => {
      const url = (await ess.waitFor(/ on (http:\/\/\S+)/))[1]!;
      type Surplus = { watts: number | null; rules: { name: string; on: boolean }[] };
      type Doc = { site: { surplus?: Surplus }; devices: Record<string, { surplus?: Surplus }> };
      const doc = (await getJson(`${url}/api/state`)).body as unknown as Doc;
      deepEqual(doc.site.surplus?.rules.map((r) => [r.name, r.on]), [["boiler", true]]);
      deepEqual(doc.devices["sim1"]?.surplus?.rules.map((r) => [r.name, r.on]), [["pump", true]]);
      equal(typeof doc.devices["sim3"]?.surplus?.watts, "number");
    });

    const configs = () => {
      const found = new Map<string, JsonObject>();
      for (const [topic, { payload }] of watcher.last) {
        if (!/^homeassistant\/device\/[^/]+_surplus\/config$|ess_site_ess\/config$/.test(topic)) {
          continue;
        }
        const config = JSON.parse(payload) as JsonObject;
        found.set(String((config["device"] as JsonObject)["name"]), config);
      }
      return found;
    };

    await t.step(
      "should announce each device's surplus on its device, the site's apart",
      async () => {
        await watcher.until(() => configs().size === 4, "four surplus announcements", 20_000);
        const found = configs();
        const published = new Set(watcher.last.keys());
        for (const name of NAMES) {
          const config = found.get(`LG ESS ${name}`)!;
          deepEqual(
            discoveryProblems(config, published, `ess/${name}`, {
              named: { processPrefix: "ess" },
            }),
            [],
            `${name}'s surplus announcement`,
          );
        }
        doesNotMatch(ess.stderr, /failed|cannot publish/);
        match(ess.stderr, /info: sim1: announced the surplus and 1 rules on /);
        match(
          ess.stderr,
          /info: announced the surplus and 1 rules on homeassistant\/device\/ess_site_ess/,
        );
        const siteConfig = found.get("LG ESS site")!;
        deepEqual(discoveryProblems(siteConfig, published, "ess"), []);
        const components = siteConfig["components"] as Record<string, JsonObject>;
        equal(components["surplus_boiler"]?.["state_topic"], "ess/surplus/boiler");
        equal(components["surplus_pump"], undefined);
      },
    );

    await t.step("should turn the site's rules off when a device stays away", async () => {
      await site.device("sim2").stop();
      await watcher.until(
        () => seen("ess/surplus/boiler") === "off" && seen("ess/sim2/status") === "offline",
        "the site's rule off and sim2 offline after the grace period",
        60_000,
      );
      equal(seen("ess/surplus/power"), "unknown");
      match(seen("ess/surplus/boiler/why")!, /^sim2 offline for \d+ s \(grace 30 s\): off$/);
      // The other devices' surpluses and rules go on; sim2's entities are unavailable.
      equal(seen("ess/sim1/surplus/pump"), "on");
      ok(isWatts(seen("ess/sim1/surplus/power")) && isWatts(seen("ess/sim3/surplus/power")));
      const retained = new Map([...watcher.last].map(([k, v]) => [k, v.payload]));
      const found = configs();
      equal(entityState(found.get("LG ESS sim2")!, "surplus_power", retained, 0), "unavailable");
      equal(entityState(found.get("LG ESS sim1")!, "surplus_pump", retained, 0), "on");
      equal(entityState(found.get("LG ESS site")!, "surplus_boiler", retained, 0), "off");
    });
  } finally {
    await ess.stop();
    await watcher.close();
    await broker.close();
  }
});
