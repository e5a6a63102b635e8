/**
 * Home Assistant end to end on every simulated model: `ess simulate --model …`'s device, the real
 * bridge with the discovery plugin, and a broker. What the broker retains is read as Home
 * Assistant would: the announcement must be valid by Home Assistant's rules against what the
 * bridge really published, and each entity must show the device's figures in W, worked out here
 * from the simulator's own answer.
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import type { JsonObject } from "../lib/device/flatten.ts";
import { createHassPlugin } from "../lib/hass/plugin.ts";
import type { SimModel } from "../lib/sim/simulator.ts";
import { startAedes } from "./_broker.ts";
import { discoveryProblems, entityState } from "./_hass_rules.ts";
import { withBridge, withWorld, type World } from "./_world.ts";

/** The announcement once it has the load power and, for `ids`, those entities too. */
async function announced(w: World, ids: readonly string[]): Promise<JsonObject> {
  const config = () => {
    const topic = [...w.watcher.last.keys()].find((t) => t.startsWith("homeassistant/device/"));
    const payload = topic === undefined ? "" : w.watcher.last.get(topic)!.payload;
    return payload === "" ? undefined : JSON.parse(payload) as JsonObject;
  };
  await w.watcher.until(() => {
    const components = config()?.["components"] as Record<string, JsonObject> | undefined;
    return components !== undefined && ids.every((id) => components[id]?.["state_topic"]);
  }, `an announcement with ${ids.join(", ")}`);
  return config()!;
}

/** What the broker holds now, topic → payload, as Home Assistant would read it. */
const holds = (w: World) =>
  new Map([...w.watcher.last].map(([topic, message]) => [topic, message.payload]));

/** The simulator's live powers in W as each family sends them: worked out from its answer. */
function livePowers(model: SimModel, home: JsonObject) {
  const stats = home["statistics"] as Record<string, string | number>;
  const dir = home["direction"] as Record<string, string | number>;
  const sign = (flag: string | number | undefined) => Number(flag) === 1 ? -1 : 1;
  // ESS Home 15: magnitudes in 0.1 kW; the others: W as text.
  const w = (key: string) =>
    model === "home15" ? Number(stats[`${key}_01kW`]) * 100 : Number(stats[key]);
  const [pv, load, batt, grid] = model === "home15"
    ? [w("pv_total_power"), w("load_power"), w("batt_conv_power"), w("grid_power")]
    : [w("pcs_pv_total_power"), w("load_power"), w("batconv_power"), w("grid_power")];
  return {
    pv_power: String(pv),
    load_power: String(load),
    battery_power: String(sign(dir["is_battery_charging_"]) * batt + 0),
    grid_power: String(sign(dir["is_grid_selling_"]) * grid + 0),
    battery_soc: String(Number(stats["bat_user_soc"])),
  };
}

for (const model of ["home5", "home10", "home15"] as const) {
  Deno.test({
    name:
      `Home Assistant on a simulated ${model}: entities in W from the reading, valid by the rules`,
    sanitizeResources: false,
    sanitizeOps: false,
    fn: () =>
      withWorld(
        startAedes,
        async (w) => {
          const plugin = createHassPlugin({
            version: "0.1.0",
            fallbackId: w.sim.host,
            onlineDelayMs: 50,
            retryMs: 50,
          });
          // A long interval: the first poll's figures stay on the broker while the test reads them.
          await withBridge(w, { intervalMs: 60_000, plugins: [plugin] }, async () => {
            const ids = ["load_power", "pv_power", "battery_soc", "pv1_power", "grid_frequency"];
            const config = await announced(w, ids);
            const published = new Set(
              [...w.watcher.last.keys()].filter((t) => t.startsWith("ess/reading/")),
            );
            deepEqual(discoveryProblems(config, published, "ess"), []);
            const retained = holds(w);
            const expected = livePowers(model, w.sim.device.read("home") as JsonObject);
            for (const [id, value] of Object.entries(expected)) {
              equal(entityState(config, id, retained, 0), value, `${model} ${id}`);
            }
            const components = config["components"] as Record<string, JsonObject>;
            equal(components["load_power"]!["unit_of_measurement"], "W");
            equal(components["grid_frequency"]!["unit_of_measurement"], "Hz");
            const hz = Number(entityState(config, "grid_frequency", retained, 0));
            ok(hz > 45 && hz < 65, `${model}: ${hz} Hz`);
            // Energy for the Energy dashboard on every model; the Home 15's live answer has no
            // counters, so its figures come from integrating the polled power, and say so.
            await w.watcher.until(
              () => w.watcher.last.has("ess/reading/energy/grid_purchase/today"),
              "the energy topics",
            );
            const energy = (await announced(w, ["grid_purchase_today", "pv_generation_today"]))[
              "components"
            ] as Record<string, JsonObject>;
            const source = JSON.parse(
              String(energy["pv_generation_today"]!["json_attributes_template"]),
            )["source"];
            equal(source, model === "home15" ? "integrated" : "device");
            equal(energy["grid_purchase_today"]!["unit_of_measurement"], "Wh");
          });
        },
        "new",
        { model },
      ),
  });
}
