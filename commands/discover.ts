/**
 * `ess discover`: list the LG ESS devices on the local network (mDNS / DNS-SD).
 *
 * @module
 */
import { DiscoveryError, UsageError } from "../lib/errors.ts";
import {
  browse,
  type BrowseOptions,
  deviceAuthority,
  type EssDevice,
  httpsPort,
  INSTANCE_PREFIX,
  SERVICE_TYPE,
} from "../lib/device/mdns.ts";
import { probeFingerprint } from "../lib/device/transport.ts";
import { deviceNameFrom } from "../lib/config.ts";
import { defineCommand, GENERAL_OPTIONS, type Io, type OptionSpec, type ParsedOf } from "./_cli.ts";

/** A device as `--json` prints it: `host` is what `--host` takes, `port` the SRV port. */
function deviceJson(device: EssDevice): Record<string, unknown> {
  return {
    name: device.name,
    instance: device.instance,
    host: deviceAuthority(device),
    address: device.address,
    port: device.port,
    txt: device.txt,
  };
}

/** One line per device: `LGE_ESS-<name>  <address>:<https port>`. */
function deviceLine(device: EssDevice): string {
  return `${INSTANCE_PREFIX}${device.name}  ${device.address}:${httpsPort(device)}\n`;
}

/** What `ess discover --config-block` calls to read a device's certificate; tests pass a stub. */
export type Probe = (hostname: string, port: number, timeoutMs: number) => Promise<string>;

/** How long the certificate of each device found may take to read. */
const PROBE_TIMEOUT_MS = 3000;

/**
 * One `[device NAME]` section for the config file: the name made of the registration number,
 * the address `--host` takes, the certificate's fingerprint when it could be read, and the
 * password left for the user, who has it from `ess password`.
 */
function configBlock(device: EssDevice, name: string, fingerprint?: string): string {
  const instance = `${INSTANCE_PREFIX}${device.name}`;
  return [
    `# ${instance}, found by mDNS at ${device.address}`,
    `[device ${name}]`,
    `host = ${deviceAuthority(device)}`,
    fingerprint === undefined
      ? `# fingerprint = (could not be read; 'ess data --host ${
        deviceAuthority(device)
      } --show-fingerprint' prints it)`
      : `fingerprint = ${fingerprint}`,
    "# password = (its wired LAN MAC, lowercase, no colons: 'ess password' reads it over the " +
    "device's own Wi-Fi)",
    "",
  ].join("\n");
}

/**
 * A `[device NAME]` section for each device, named after its registration number (valid and
 * unique, in the order found), with the fingerprint of each certificate read at once.
 */
async function configBlocks(devices: readonly EssDevice[], probe: Probe): Promise<string> {
  const taken = new Set<string>();
  const names = devices.map((device) => {
    const name = deviceNameFrom(device.name, taken);
    taken.add(name);
    return name;
  });
  const fingerprints = await Promise.all(
    devices.map((device) =>
      probe(device.address, httpsPort(device), PROBE_TIMEOUT_MS).catch(() => undefined)
    ),
  );
  return devices.map((device, i) => configBlock(device, names[i]!, fingerprints[i])).join("\n");
}

const SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏";

/** The progress line on a terminal: spinner, elapsed time and how many answered so far. */
export function progressLine(elapsedMs: number, timeoutMs: number, found: number): string {
  const frame = SPINNER[Math.floor(elapsedMs / 100) % SPINNER.length];
  const seconds = (ms: number) => (ms / 1000).toFixed(1);
  return `${frame} looking for LG ESS devices (${SERVICE_TYPE}) ${seconds(elapsedMs)} s of ${
    seconds(timeoutMs)
  } s, ${found} found`;
}

const CLEAR_LINE = "\r\x1b[2K";
const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;

/** What `ess discover` calls to browse; tests pass a stub. */
export type Browse = (options: BrowseOptions) => Promise<EssDevice[]>;

/** The options of `ess discover`. */
const OPTIONS = [
  {
    name: "timeout",
    type: "string",
    arg: "SECONDS",
    help: "how long to listen",
    default: "3",
    config: false,
  },
  { name: "first", type: "boolean", help: "stop at the first device", config: false },
  {
    name: "name",
    type: "string",
    arg: "NAME",
    help: "list only this device (DE1234 or LGE_ESS-DE1234)",
    config: false,
  },
  {
    name: "json",
    type: "boolean",
    help: "print one JSON array of the devices at the end (host, address, port, txt, ...)",
    config: false,
  },
  {
    name: "config-block",
    type: "boolean",
    help: "print a [device NAME] section for each device at the end, to paste into the " +
      "config file (host and certificate fingerprint; the password left for you to fill in)",
    config: false,
  },
  {
    name: "interface",
    type: "string",
    arg: "ADDRESS",
    help: "IPv4 address of the network interface to ask on (default: all)",
    config: false,
  },
  ...GENERAL_OPTIONS,
] as const satisfies readonly OptionSpec[];

const command = defineCommand({
  name: "discover",
  usage: "discover [--timeout SECONDS] [--first] [--name NAME] [--json | --config-block]",
  description: `Lists each LG ESS that answers on mDNS (${SERVICE_TYPE}) as soon as it\n` +
    "answers: its name and the address to give to --host. Stops after --timeout, or at\n" +
    "the first device with --first. Exit code 1 when no device answers. With --config-block it\n" +
    "prints, at the end, a [device NAME] section of the config file for each device instead.",
  options: OPTIONS,
  examples: [
    "ess discover",
    "ess discover --first --json | jq -r '.[0].host'",
    "ess discover --name DE1234 --timeout 10",
    "ess discover --config-block >> /etc/essmqtt.conf",
  ],
  run: (p, io) => runDiscover(p, io, browse),
});

/** `ess discover` with the browse (and the certificate probe) it uses injected. */
export async function runDiscover(
  p: ParsedOf<typeof OPTIONS>,
  io: Io,
  browseWith: Browse,
  probe: Probe = probeFingerprint,
): Promise<number> {
  const timeoutMs = (p.seconds("timeout") ?? 3) * 1000;
  const interfaceAddress = p.string("interface");
  if (interfaceAddress !== undefined && !IPV4.test(interfaceAddress)) {
    throw new UsageError(
      `--interface ${JSON.stringify(interfaceAddress)} is not an IPv4 address of this computer`,
    );
  }
  const json = p.flag("json");
  const blocks = p.flag("config-block");
  if (json && blocks) throw new UsageError("--json and --config-block: choose one");
  const name = p.string("name")?.trim() || undefined;

  const started = Date.now();
  let found = 0;
  let spinner: ReturnType<typeof setInterval> | undefined;
  const draw = () => io.err(`${CLEAR_LINE}${progressLine(Date.now() - started, timeoutMs, found)}`);
  if (io.stderrIsTerminal) {
    draw();
    spinner = setInterval(draw, 100);
  }
  // Ctrl-C ends the wait early and still lists what answered.
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  Deno.addSignalListener("SIGINT", onSignal);
  let devices: EssDevice[];
  try {
    devices = await browseWith({
      timeoutMs,
      first: p.flag("first"),
      name,
      interfaceAddress,
      signal: stop.signal,
      logger: p.log,
      onFound: (device) => {
        found++;
        if (json || blocks) return;
        if (io.stderrIsTerminal) io.err(CLEAR_LINE);
        io.out(deviceLine(device));
      },
    });
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
    clearInterval(spinner);
    if (io.stderrIsTerminal) io.err(CLEAR_LINE);
  }
  if (json) io.out(`${JSON.stringify(devices.map(deviceJson), null, 2)}\n`);
  if (blocks && devices.length > 0) io.out(await configBlocks(devices, probe));
  if (devices.length === 0) {
    throw new DiscoveryError(
      SERVICE_TYPE,
      `No LG ESS${name === undefined ? "" : ` named ${JSON.stringify(name)}`} answered on mDNS ` +
        `within ${(Math.min(Date.now() - started, timeoutMs) / 1000).toFixed(1)} s (is this ` +
        "computer on the ESS's network segment? try a longer --timeout)",
    );
  }
  return 0;
}

export default command;
