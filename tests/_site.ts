/**
 * A site of several simulated devices for the tests of named mode: N in-process simulators (each
 * its own registration number, password, house and port; see `siteDeviceOptions`) and a
 * temporary config file that declares each as a `[device simN]` section.
 *
 * A test runs `ess mqtt --config ${site.config}` (or `ess serve`, …) against it, and takes one
 * device off the network with `site.device("sim2").stop()` or `.hang()`, back with `.start()`.
 *
 * @module
 */
import { createServer, type Socket } from "node:net";
import type { Simulator, SimulatorOptions } from "../lib/sim/simulator.ts";
import { type SiteDeviceOptions, siteDeviceOptions, startSimulators } from "../lib/sim/site.ts";
import { startSimulator } from "../lib/sim/simulator.ts";

/** How {@link startSite} builds the site. */
export interface SiteOptions {
  /** Config lines above the first section, for every device: `mqtt_server = …`. */
  top?: string[];
  /** More lines of device `name`'s section (`interval_seconds = 1`); host, password and
   * fingerprint are always there. */
  section?: (name: string, index: number) => string[];
  /**
   * Options of every simulator: its clock (`now: () => NOON` for a house that stands still, the
   * real clock unless told), firmware, faults. The model is `home10` for all unless given
   * (`model` here, or a different one per device with `models`).
   */
  simulator?: Omit<SimulatorOptions, "password" | "name" | "port">;
  /** One model per device, in order, instead of `home10` for all. */
  models?: SimulatorOptions["model"][];
}

/** One device of a {@link TestSite}. */
export interface SiteSim {
  /** Its `[device NAME]` name: `sim1`, `sim2`, … */
  readonly name: string;
  /** Its running simulator (a new one after {@link SiteSim.start}). */
  readonly sim: Simulator;
  /** Takes it off the network: connections are refused until {@link SiteSim.start}. */
  stop(): Promise<void>;
  /**
   * Makes it hang: its port accepts connections and never answers (a device that is down
   * behind a live TCP stack), until {@link SiteSim.start}.
   */
  hang(): Promise<void>;
  /** After stop() or hang(): a fresh simulator with the same options on the same port. */
  start(): Promise<void>;
}

/** A running site: what {@link startSite} gives. */
export interface TestSite {
  /** Path of the config file with one `[device NAME]` section per device. */
  readonly config: string;
  /** The devices, in the order of their sections. */
  readonly devices: readonly SiteSim[];
  /** The device named `name`; throws for an unknown name. */
  device(name: string): SiteSim;
  /** Closes every simulator and removes the config file. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** A listener that accepts connections and never answers, holding them until closed. */
async function hangOn(port: number): Promise<{ close(): Promise<void> }> {
  const held = new Set<Socket>();
  const server = createServer((socket) => {
    held.add(socket);
    socket.on("close", () => held.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", resolve);
  });
  return {
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of held) socket.destroy();
      }),
  };
}

class Device implements SiteSim {
  readonly name: string;
  #sim: Simulator;
  #options: SimulatorOptions;
  #running = true;
  #hanging: { close(): Promise<void> } | undefined;

  constructor(name: string, sim: Simulator, options: SimulatorOptions) {
    this.name = name;
    this.#sim = sim;
    this.#options = { ...options, port: sim.port };
  }

  get sim(): Simulator {
    return this.#sim;
  }

  async stop(): Promise<void> {
    await this.#hanging?.close();
    this.#hanging = undefined;
    if (this.#running) await this.#sim.close();
    this.#running = false;
  }

  async hang(): Promise<void> {
    await this.stop();
    this.#hanging = await hangOn(this.#sim.port);
  }

  async start(): Promise<void> {
    await this.stop();
    this.#sim = await startSimulator(this.#options);
    this.#running = true;
  }

  async close(): Promise<void> {
    await this.stop();
  }
}

function configText(devices: readonly SiteSim[], options: SiteOptions): string {
  const lines = [...options.top ?? []];
  devices.forEach((d, i) => {
    lines.push(
      `[device ${d.name}]`,
      `host = ${d.sim.host}`,
      `password = ${d.sim.password}`,
      `fingerprint = ${d.sim.fingerprint}`,
      ...options.section?.(d.name, i) ?? [],
    );
  });
  return `${lines.join("\n")}\n`;
}

/**
 * Starts `count` simulated devices on loopback (free ports) and writes a config file declaring
 * them as `[device sim1]` … `[device simN]`, with `options.top` above the sections. Dispose of
 * the result (`await using`) to close them all and remove the file.
 *
 * @example
 * ```ts
 * import { match, notEqual } from "node:assert/strict";
 * import { startSite } from "./_site.ts";
 * await using site = await startSite(2, { top: ["interval_seconds = 1"] });
 * const text = await Deno.readTextFile(site.config);
 * match(text, /^interval_seconds = 1\n\[device sim1\]\nhost = 127\.0\.0\.1:\d+\n/);
 * notEqual(site.device("sim2").sim.password, site.device("sim1").sim.password);
 * ```
 */
export async function startSite(count: number, options: SiteOptions = {}): Promise<TestSite> {
  const planned: SiteDeviceOptions[] = siteDeviceOptions(count, {
    model: "home10",
    ...options.simulator,
  }).map((d, i) => {
    const model = options.models?.[i];
    return model === undefined ? d : { ...d, options: { ...d.options, model } };
  });
  const devices = (await startSimulators(planned)).map(({ name, sim }, i) =>
    new Device(name, sim, planned[i]!.options)
  );
  const dispose = async () => {
    await Promise.all(devices.map((d) => d.close()));
  };
  let config: string;
  try {
    config = await Deno.makeTempFile({ prefix: "ess-site-", suffix: ".conf" });
    await Deno.writeTextFile(config, configText(devices, options));
  } catch (err) {
    await dispose();
    throw err;
  }
  return {
    config,
    devices,
    device(name) {
      const found = devices.find((d) => d.name === name);
      if (!found) throw new Error(`no device ${name} in this site`);
      return found;
    },
    async [Symbol.asyncDispose]() {
      await dispose();
      await Deno.remove(config).catch(() => {});
    },
  };
}
