/**
 * Several simulated devices from one process (`ess simulate --devices N`, the tests' site): how
 * the devices of a simulated site differ from each other (name, registration number, password,
 * port, model, house), so that every reading, command and sum can be told apart.
 *
 * @module
 */
import { MAX_DEVICES } from "../config.ts";
import {
  DEFAULT_PASSWORD,
  PV_CAPACITY,
  type Simulator,
  type SimulatorOptions,
  startSimulator,
} from "./simulator.ts";
import type { SimModel } from "./_model.ts";

/** The most devices one simulator process serves: as many as one config may declare. */
export const MAX_SIM_DEVICES = MAX_DEVICES;

/** The models of a site when none is asked for, in turn: the three shapes ess reads. */
export const SITE_MODELS: readonly SimModel[] = ["home10", "home15", "home5"];

/**
 * How much more PV peak power each device of a site has than the one before, in W (a multiple
 * of 100, so that a Home 15's two strings share it in whole watts).
 */
export const SITE_PV_STEP_W = 1500;

/** One device of a simulated site, before it starts. */
export interface SiteDeviceOptions {
  /** Its name in a config's `[device NAME]` section: `sim1`, `sim2`, … */
  name: string;
  /** What its simulator is started with. */
  options: SimulatorOptions;
}

/**
 * A made-up MAC address for device `index` (from 0): the first is {@link DEFAULT_PASSWORD}, the
 * others differ from it in the last byte.
 */
function sitePassword(index: number): string {
  const last = (parseInt(DEFAULT_PASSWORD.slice(-2), 16) + index) & 0xff;
  return DEFAULT_PASSWORD.slice(0, -2) + last.toString(16).padStart(2, "0");
}

/**
 * The options of the `count` devices of a simulated site, from the options one device would be
 * started with. Device `i` (from 0) is named `sim<i+1>`; it has seed `seed + i` (so its own
 * weather, household and registration number), its own password (a made-up MAC, the first being
 * the single simulator's), port `port + i` (or a free one when `port` is 0) and model `model`
 * (by default {@link SITE_MODELS} in turn). Its house is its own size: its PV peak is
 * {@link SITE_PV_STEP_W} times `i` above the single simulator's and its household draws `1 + i/5` times as much, so
 * that the site's sums tell which devices were counted. A `password` in
 * `base` would be every device's and is refused, as is a `name`.
 *
 * @example
 * ```ts
 * import { deepEqual, equal } from "node:assert/strict";
 * const site = siteDeviceOptions(3, { port: 8443 });
 * deepEqual(site.map((d) => d.name), ["sim1", "sim2", "sim3"]);
 * deepEqual(site.map((d) => d.options.port), [8443, 8444, 8445]);
 * deepEqual(site.map((d) => d.options.model), ["home10", "home15", "home5"]);
 * equal(new Set(site.map((d) => d.options.password)).size, 3);
 * ```
 */
export function siteDeviceOptions(count: number, base: SimulatorOptions): SiteDeviceOptions[] {
  if (!Number.isInteger(count) || count < 1 || count > MAX_SIM_DEVICES) {
    throw new RangeError(`a simulated site has 1 to ${MAX_SIM_DEVICES} devices, not ${count}`);
  }
  if (base.password !== undefined || base.name !== undefined) {
    throw new RangeError("each device of a simulated site has its own password and name");
  }
  const port = base.port ?? 0;
  if (port !== 0 && port + count - 1 > 65535) {
    throw new RangeError(`ports ${port} to ${port + count - 1} do not all exist`);
  }
  const seed = base.seed ?? 1;
  return Array.from({ length: count }, (_, i) => ({
    name: `sim${i + 1}`,
    options: {
      ...base,
      port: port === 0 ? 0 : port + i,
      seed: (seed + i) >>> 0,
      password: sitePassword(i),
      model: base.model ?? SITE_MODELS[i % SITE_MODELS.length]!,
      pvCapacityW: (base.pvCapacityW ?? PV_CAPACITY) + SITE_PV_STEP_W * i,
      loadScale: (base.loadScale ?? 1) * (1 + i / 5),
    },
  }));
}

/** A running device of a simulated site. */
export interface SiteSimulator {
  /** Its name in a config's `[device NAME]` section. */
  name: string;
  /** Its simulator. */
  sim: Simulator;
}

/**
 * Starts every device of `devices` and resolves once all listen; if one cannot start, the
 * others are closed again and its error is thrown.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * const site = await startSimulators(siteDeviceOptions(2, {}));
 * equal(new Set(site.map((d) => d.sim.device.name)).size, 2);
 * await Promise.all(site.map((d) => d.sim.close()));
 * ```
 */
export async function startSimulators(devices: SiteDeviceOptions[]): Promise<SiteSimulator[]> {
  const started = await Promise.allSettled(devices.map((d) => startSimulator(d.options)));
  const sims = started.flatMap((s) => s.status === "fulfilled" ? [s.value] : []);
  const failed = started.find((s) => s.status === "rejected");
  if (failed) {
    await Promise.all(sims.map((sim) => sim.close()));
    throw failed.reason;
  }
  return sims.map((sim, i) => ({ name: devices[i]!.name, sim }));
}
