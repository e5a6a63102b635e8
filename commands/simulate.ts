/**
 * `ess simulate`: a simulated LG ESS to try ess (or anything else) against without hardware.
 *
 * @module
 */
import { UsageError } from "../lib/errors.ts";
import {
  type Firmware,
  SIM_MODELS,
  type Simulator,
  type SimulatorOptions,
  startSimulator,
} from "../lib/sim/simulator.ts";
import {
  MAX_SIM_DEVICES,
  siteDeviceOptions,
  type SiteSimulator,
  startSimulators,
} from "../lib/sim/site.ts";
import { normalise } from "../lib/model/normalise.ts";
import { choose, defineCommand, type Io, type Parsed } from "./_cli.ts";

const FIRMWARES = ["classic", "new", "words"] as const satisfies readonly Firmware[];

/** The lines `ess simulate` prints once it listens: where, the password, the fingerprint. */
function banner(sim: Simulator, mdns: boolean): string {
  return [
    `LG ESS simulator (${sim.model}, ${sim.firmware} firmware) listening on https://${sim.host}`,
    `host:        ${sim.host}`,
    `password:    ${sim.password}`,
    `fingerprint: ${sim.fingerprint}`,
    ...(mdns ? [`mdns:        LGE_ESS-${sim.device.name}._pmsctrl._tcp.local.`] : []),
    `try:         ess data --host ${sim.host} --password ${sim.password} --format table`,
    "The certificate is public test material: fine for a simulator, never for a real service.",
    "Stop with Ctrl+C.",
    "",
  ].join("\n");
}

/** The serial number ess reads from a simulated device (its Home Assistant id). */
function serialOf(sim: Simulator): string {
  const read = (state: "home" | "common" | "batt" | "systeminfo") => sim.device.read(state);
  const states = { home: read("home"), common: read("common"), batt: read("batt") };
  return normalise({ ...states, systeminfo: read("systeminfo") }).serial ?? "unknown";
}

/**
 * The lines `ess simulate --devices N` prints once every device listens: each device's name,
 * URL, password and serial, with the `[device NAME]` section that points ess at it.
 */
function siteBanner(site: SiteSimulator[], mdns: boolean): string {
  const first = site[0]!.sim;
  const lines = [
    `LG ESS simulator: ${site.length} device${site.length === 1 ? "" : "s"} (${first.firmware} ` +
    "firmware) in one process",
    `fingerprint: ${first.fingerprint} (every device's: they share one certificate)`,
    "",
    "Paste these sections into ess's config file (lines above the first section, like",
    "mqtt_server = ..., apply to every device):",
    "",
  ];
  for (const { name, sim } of site) {
    lines.push(
      `# ${name}: ${sim.model}, serial ${serialOf(sim)}, https://${sim.host}, ` +
        `password ${sim.password}` +
        (mdns ? `, mdns LGE_ESS-${sim.device.name}._pmsctrl._tcp.local.` : ""),
      `[device ${name}]`,
      `host = ${sim.host}`,
      `password = ${sim.password}`,
      `fingerprint = ${sim.fingerprint}`,
      "",
    );
  }
  lines.push(
    `try:         ess data --config FILE --device ${site[0]!.name} --format table`,
    "The certificate is public test material: fine for a simulator, never for a real service.",
    "Stop with Ctrl+C.",
    "",
  );
  return lines.join("\n");
}

/** `--port` as given (once or once per device); none means 0, a free one. */
function ports(p: Parsed): number[] {
  return p.all("port").map(({ value, origin }) => {
    const text = String(value).trim();
    const port = Number(text);
    if (!/^\d{1,5}$/.test(text) || port > 65535) {
      throw new UsageError(
        `${origin} must be a whole number from 0 to 65535, not ${JSON.stringify(text)}`,
      );
    }
    return port;
  });
}

/**
 * How many devices to simulate: `--devices N`, or one per `--port` when several are given;
 * `undefined` for the single simulator of old.
 */
function deviceCount(p: Parsed, given: number[]): number | undefined {
  const text = p.string("devices");
  if (text === undefined) return given.length > 1 ? given.length : undefined;
  const count = Number(text.trim());
  if (!/^\d{1,2}$/.test(text.trim()) || count < 1 || count > MAX_SIM_DEVICES) {
    throw new UsageError(
      `--devices must be a whole number from 1 to ${MAX_SIM_DEVICES}, not ${JSON.stringify(text)}`,
    );
  }
  if (given.length > 1 && given.length !== count) {
    throw new UsageError(
      `--devices ${count} with ${given.length} --port values: give one --port (the first of ` +
        `${count} in a row) or one per device`,
    );
  }
  return count;
}

function errorRate(p: Parsed): number | undefined {
  const text = p.string("error-rate");
  if (text === undefined) return undefined;
  const rate = Number(text.trim());
  if (text.trim() === "" || !(rate >= 0 && rate <= 1)) {
    throw new UsageError(`--error-rate must be a number from 0 to 1, not ${JSON.stringify(text)}`);
  }
  return rate;
}

/** Turns the command line into simulator options (the port aside). */
function simulatorOptions(p: Parsed): SimulatorOptions {
  const hostname = p.string("host") ?? "127.0.0.1";
  if (!/^[\w.:-]+$/.test(hostname)) {
    throw new UsageError(`--host ${JSON.stringify(hostname)} is not an address to listen on`);
  }
  const password = p.string("password");
  if (password === "") throw new UsageError("--password must not be empty");
  const options: SimulatorOptions = {
    hostname,
    firmware: choose(p.string("firmware"), FIRMWARES, "firmware"),
  };
  const model = p.string("model");
  const rate = errorRate(p);
  const keyLifetime = p.seconds("key-lifetime");
  const latency = p.integer("latency", 0, 60_000);
  const seed = p.integer("seed", 0, 2 ** 32 - 1);
  if (model !== undefined) options.model = choose(model, SIM_MODELS, "model");
  if (password !== undefined) options.password = password;
  if (rate !== undefined) options.errorRate = rate;
  if (keyLifetime !== undefined) options.keyLifetimeSeconds = keyLifetime;
  if (latency !== undefined) options.latencyMs = latency;
  if (seed !== undefined) options.seed = seed;
  if (p.flag("mdns")) options.mdns = true;
  options.logger = p.log;
  return options;
}

/** Resolves with the first of SIGINT or SIGTERM. */
function nextStopSignal(): Promise<Deno.Signal> {
  const signals: Deno.Signal[] = ["SIGINT", "SIGTERM"];
  return new Promise((resolve) => {
    const handlers = signals.map((signal) => {
      const handler = () => {
        for (const [s, h] of handlers) Deno.removeSignalListener(s, h);
        resolve(signal);
      };
      Deno.addSignalListener(signal, handler);
      return [signal, handler] as const;
    });
  });
}

/** Serves until SIGINT or SIGTERM, then closes the simulators. */
async function serveUntilStopped(sims: Simulator[], banner: string, io: Io): Promise<void> {
  try {
    const stopped = nextStopSignal();
    io.out(banner);
    const signal = await stopped;
    io.err(`ess: ${signal}: stopping the simulator${sims.length > 1 ? "s" : ""}\n`);
  } finally {
    await Promise.all(sims.map((sim) => sim.close()));
  }
}

/** Starts the devices of `--devices N` (or several `--port`s). */
async function startSiteOf(
  count: number,
  given: number[],
  options: SimulatorOptions,
): Promise<SiteSimulator[]> {
  if (options.password !== undefined) {
    throw new UsageError(
      "--password sets the password of a single simulator; with --devices each device has " +
        "its own, printed at start",
    );
  }
  const explicit = given.filter((port) => port !== 0);
  if (given.length > 1 && new Set(explicit).size !== explicit.length) {
    throw new UsageError("each --port may be given once");
  }
  const base = { ...options, port: given.length === 1 ? given[0]! : 0, recordRequests: false };
  if (base.port + count - 1 > 65535) {
    throw new UsageError(`--port ${base.port} leaves no room for ${count} devices`);
  }
  const planned = siteDeviceOptions(count, base).map((d, i) =>
    given.length > 1 ? { ...d, options: { ...d.options, port: given[i]! } } : d
  );
  return await startSimulators(planned);
}

const command = defineCommand({
  name: "simulate",
  usage: "simulate [--port N] [--host 127.0.0.1] [--password PW] [--firmware classic|new|words] " +
    "[--model home5|home10|home15] [--devices N]",
  description: "Serves the device's HTTPS API with a simulated house behind it: PV follows the " +
    "time of day,\nthe battery charges and discharges, controls take effect. Prints where it " +
    "listens,\nthe password and the certificate fingerprint; runs until Ctrl+C (SIGINT) or " +
    "SIGTERM.",
  options: [
    {
      name: "port",
      type: "string",
      arg: "N",
      help: "port to listen on; 0 picks a free one and prints it. With --devices N: the first " +
        "of N ports in a row; or give --port once per device",
      default: "0",
      multiple: true,
      config: false,
    },
    {
      name: "devices",
      type: "string",
      arg: "N",
      help: `serve N different devices (1 to ${MAX_SIM_DEVICES}) from one process, named sim1 ` +
        "to simN, each with its own port, password, serial and house (1.5 kW more PV and a " +
        "fifth more household each); models home10, home15, home5 in turn unless --model",
      config: false,
    },
    {
      name: "host",
      type: "string",
      arg: "ADDRESS",
      help: "address to listen on",
      default: "127.0.0.1",
      config: false,
    },
    {
      name: "password",
      type: "string",
      arg: "PASSWORD",
      help: "password the simulated device accepts (default: a1b2c3d4e5f6)",
      config: false,
    },
    {
      name: "firmware",
      type: "string",
      arg: "classic|new|words",
      help: "classic: login at /v1/user/setting/login, fast charge on/off; new: login at " +
        "/v1/login, charge strategies 0/1/2; words: as new, but the Home 10 answers recorded " +
        "as D010KE1N211 (strategies reported as words, written as digits; safety_soc)",
      default: "classic",
      config: false,
    },
    {
      name: "model",
      type: "string",
      arg: "home5|home10|home15",
      help: "whose answers, field for field as real devices give them: home10 (the firmware's " +
        "shape), home5, or home15 (numbers, 0.1 kW, ess[] units, charge strategies as words); " +
        "default home10 (with --devices: a mix)",
      config: false,
    },
    {
      name: "key-lifetime",
      type: "string",
      arg: "SECONDS",
      help: "auth keys expire this long after login (default: never)",
      config: false,
      group: "Faults",
    },
    {
      name: "error-rate",
      type: "string",
      arg: "R",
      help: "share of answers (0 to 1) that become nginx 502 pages",
      config: false,
      group: "Faults",
    },
    {
      name: "latency",
      type: "string",
      arg: "MS",
      help: "added to every answer, in milliseconds",
      config: false,
      group: "Faults",
    },
    {
      name: "seed",
      type: "string",
      arg: "N",
      help: "seed of the simulated weather, household and faults (default: 1)",
      config: false,
    },
    {
      name: "mdns",
      type: "boolean",
      help: "announce it as LGE_ESS-<name>._pmsctrl._tcp.local. by mDNS (sends multicast)",
      config: false,
    },
  ],
  examples: [
    "ess simulate",
    "ess simulate --port 8443 --firmware new",
    "ess simulate --model home15",
    "ess simulate --firmware words",
    "ess simulate --key-lifetime 60 --error-rate 0.1 --latency 300",
    "ess simulate --host 0.0.0.0 --port 443 --mdns",
    "ess simulate --devices 3 --port 8443",
    "ess simulate --port 8443 --port 9443",
  ],
  async run(p, io) {
    const options = simulatorOptions(p);
    const given = ports(p);
    const count = deviceCount(p, given);
    const mdns = options.mdns === true;
    if (count === undefined) {
      const port = given[0] ?? 0;
      const sim = await startSimulator({ ...options, port, recordRequests: false });
      await serveUntilStopped([sim], banner(sim, mdns), io);
    } else {
      const site = await startSiteOf(count, given, options);
      await serveUntilStopped(site.map((d) => d.sim), siteBanner(site, mdns), io);
    }
    return 0;
  },
});

export default command;
