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
import { choose, defineCommand, type Parsed } from "./_cli.ts";

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

function errorRate(p: Parsed): number | undefined {
  const text = p.string("error-rate");
  if (text === undefined) return undefined;
  const rate = Number(text.trim());
  if (text.trim() === "" || !(rate >= 0 && rate <= 1)) {
    throw new UsageError(`--error-rate must be a number from 0 to 1, not ${JSON.stringify(text)}`);
  }
  return rate;
}

/** Turns the command line into simulator options. */
function simulatorOptions(p: Parsed): SimulatorOptions {
  const hostname = p.string("host") ?? "127.0.0.1";
  if (!/^[\w.:-]+$/.test(hostname)) {
    throw new UsageError(`--host ${JSON.stringify(hostname)} is not an address to listen on`);
  }
  const password = p.string("password");
  if (password === "") throw new UsageError("--password must not be empty");
  const options: SimulatorOptions = {
    hostname,
    port: p.integer("port", 0, 65535) ?? 0,
    firmware: choose(p.string("firmware"), FIRMWARES, "firmware"),
    model: choose(p.string("model"), SIM_MODELS, "model"),
  };
  const rate = errorRate(p);
  const keyLifetime = p.seconds("key-lifetime");
  const latency = p.integer("latency", 0, 60_000);
  const seed = p.integer("seed", 0, 2 ** 32 - 1);
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

const command = defineCommand({
  name: "simulate",
  usage: "simulate [--port N] [--host 127.0.0.1] [--password PW] [--firmware classic|new|words] " +
    "[--model home5|home10|home15]",
  description: "Serves the device's HTTPS API with a simulated house behind it: PV follows the " +
    "time of day,\nthe battery charges and discharges, controls take effect. Prints where it " +
    "listens,\nthe password and the certificate fingerprint; runs until Ctrl+C (SIGINT) or " +
    "SIGTERM.",
  options: [
    {
      name: "port",
      type: "string",
      arg: "N",
      help: "port to listen on; 0 picks a free one and prints it",
      default: "0",
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
        "shape), home5, or home15 (numbers, 0.1 kW, ess[] units, charge strategies as words)",
      default: "home10",
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
  ],
  async run(p, io) {
    const options = simulatorOptions(p);
    const sim = await startSimulator({ ...options, recordRequests: false });
    try {
      const stopped = nextStopSignal();
      io.out(banner(sim, options.mdns === true));
      const signal = await stopped;
      io.err(`ess: ${signal}: stopping the simulator\n`);
    } finally {
      await sim.close();
    }
    return 0;
  },
});

export default command;
