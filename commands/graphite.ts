/**
 * `ess graphite`: send the device's live values to Graphite, every few seconds.
 *
 * @module
 */
import { errorText, EssError, UsageError } from "../lib/errors.ts";
import { labelledLogger, type Logger } from "../lib/log.ts";
import { MIN_POLL_SECONDS } from "../lib/device/states.ts";
import {
  createSender,
  DEFAULT_GRAPHITE_PORT,
  GRAPHITE_PROTOCOLS,
  runGraphite,
  SenderHealth,
} from "../lib/export/graphite.ts";
import { type MetricSender, SharedSender } from "../lib/export/graphite_senders.ts";
import {
  choose,
  defineCommand,
  DEVICE_OPTIONS,
  GENERAL_OPTIONS,
  type Parsed,
  type ParsedOf,
} from "./_cli.ts";
import { type DeviceSession, hostPortOption, openDevice } from "./_device.ts";
import { daemonDevices } from "./_devices.ts";

/** What the device loops read of the options. */
type GraphiteParsed =
  & ParsedOf<typeof DEVICE_OPTIONS>
  & Parsed<"interval-seconds" | "prefix", never>;

/** One device whose values go to Graphite, and under which path. */
interface GraphiteDevice {
  /** Its `[device NAME]`; `undefined` for a single-device config. */
  name: string | undefined;
  /** The options as they apply to it. */
  p: GraphiteParsed;
  logger: Logger;
  /** `--prefix`, then its name: `house.garage` → `house.garage.home.statistics.load_power`. */
  prefix: string | undefined;
}

/**
 * The devices of the config: the one of a single-device config, under `--prefix` as before;
 * else each `[device NAME]` section, under `<prefix>.<name>`, logging as `name: …`.
 */
function graphiteDevices(p: GraphiteParsed): GraphiteDevice[] {
  const prefix = p.string("prefix");
  const views = daemonDevices(p);
  if (views === undefined) return [{ name: undefined, p, logger: p.log, prefix }];
  return views.map((view) => ({
    name: view.name,
    p: view.p,
    logger: labelledLogger(p.log, view.name),
    prefix: prefix === undefined ? view.name : `${prefix}.${view.name}`,
  }));
}

/**
 * One device's loop: its values every interval (its own, which a section may set), or once.
 * A named device's failure is logged under its name, as the others go on.
 */
function sendDevice(
  device: GraphiteDevice,
  session: DeviceSession,
  sender: MetricSender,
  senderHealth: SenderHealth,
  once: boolean,
  signal: AbortSignal,
): Promise<void> {
  const intervalMs = (device.p.seconds("interval-seconds", MIN_POLL_SECONDS) ?? 10) * 1000;
  if (!once) {
    device.logger.info(
      `sending ${session.host.authority}'s values to ${sender.target} every ${intervalMs / 1000} s`,
    );
  }
  return runGraphite({
    device: session.client,
    sender,
    prefix: device.prefix,
    intervalMs,
    once,
    logger: device.logger,
    senderHealth,
    signal,
  }).catch((err) => {
    if (device.name !== undefined) {
      device.logger.error(once ? errorText(err) : `stopped sending: ${errorText(err)}`);
    }
    throw err;
  });
}

const command = defineCommand({
  name: "graphite",
  usage: "graphite --graphite HOST[:PORT] [--protocol tcp|udp] [--prefix P] [--once]",
  description: "Reads home and common every --interval-seconds and sends every numeric value " +
    "as one batch\nof plaintext lines: home.<group>.<key> and common.<GROUP>.<key> (pyess's " +
    "names), e.g.\n  home.statistics.load_power 376 1718000000\n" +
    "With several devices ([device NAME] sections of the config), one process sends each " +
    "device's\nvalues under its name: <prefix>.<name>.home.statistics.load_power.\n" +
    "on/off, start/stop and true/false become 1/0; other text is skipped. Keeps running through " +
    "device\nand server outages (with back-off); Ctrl-C or SIGTERM stops it.",
  options: [
    {
      name: "graphite",
      aliases: ["graphite-server"],
      type: "string",
      arg: "HOST[:PORT]",
      help: `Graphite (carbon) server; default port ${DEFAULT_GRAPHITE_PORT}`,
      env: "ESS_GRAPHITE",
      group: "Graphite",
    },
    {
      name: "protocol",
      aliases: ["graphite-protocol"],
      type: "string",
      arg: "tcp|udp",
      help: "tcp (one persistent connection) or udp (as pyess; carbon's UDP listener is off " +
        "by default)",
      default: "tcp",
      env: "ESS_GRAPHITE_PROTOCOL",
      group: "Graphite",
    },
    {
      name: "prefix",
      aliases: ["graphite-prefix"],
      type: "string",
      arg: "P",
      help: "put P. in front of every metric (P may have dots: site.ess)",
      env: "ESS_GRAPHITE_PREFIX",
      group: "Graphite",
    },
    {
      name: "interval-seconds",
      perDevice: true,
      type: "string",
      arg: "SECONDS",
      help: "poll the device this often",
      default: "10",
      env: "ESS_INTERVAL_SECONDS",
      group: "Graphite",
    },
    {
      name: "once",
      type: "boolean",
      help: "one cycle, then exit (1 if the device or the server failed); " +
        "esscli's --once True works too",
      config: false,
      pyessValue: true,
      group: "Graphite",
    },
    ...DEVICE_OPTIONS,
    ...GENERAL_OPTIONS,
  ],
  examples: [
    "ess graphite --graphite graphite.lan",
    "ess graphite --graphite 192.168.1.222 --protocol udp --prefix house",
    "ess graphite --graphite graphite.lan:2003 --once",
  ],
  async run(p, _io) {
    const server = p.get("graphite");
    if (typeof server?.value !== "string" || server.value.trim() === "") {
      throw new UsageError(
        "no Graphite server: give --graphite HOST[:PORT], ESS_GRAPHITE or graphite in the " +
          "config file",
      );
    }
    const target = hostPortOption(server, DEFAULT_GRAPHITE_PORT, "graphite server");
    const protocol = choose(p.string("protocol"), GRAPHITE_PROTOCOLS, "protocol");
    const once = p.flag("once");
    const devices = graphiteDevices(p);

    const sessions: DeviceSession[] = [];
    const sender = createSender(protocol, target.hostname, target.port);
    const stop = new AbortController();
    const onSignal = () => stop.abort();
    const signals = ["SIGINT", "SIGTERM"] as const;
    for (const s of signals) Deno.addSignalListener(s, onSignal);
    try {
      for (const device of devices) sessions.push(await openDevice(device.p));
      const named = devices[0]?.name !== undefined;
      // Named devices share the connection; their batches are confirmed together at the end.
      const shared = new SharedSender(sender);
      // The server's outages are the process's, reported once, not once by each device.
      const senderHealth = new SenderHealth(p.log);
      const results = await Promise.allSettled(
        devices.map((device, i) =>
          sendDevice(
            device,
            sessions[i]!,
            named ? shared : sender,
            senderHealth,
            once,
            stop.signal,
          )
        ),
      );
      const failures = results.flatMap((r) => r.status === "rejected" ? [r.reason] : []);
      if (!named && failures.length > 0) throw failures[0];
      if (named && once && failures.length < devices.length) await sender.finish();
      if (stop.signal.aborted) p.log.info("stopped");
      // A daemon whose other devices ran until stopped did its job; --once did not.
      if (failures.length > 0 && (once || failures.length === devices.length)) {
        return failures[0] instanceof EssError ? failures[0].exitCode : 1;
      }
    } finally {
      for (const s of signals) Deno.removeSignalListener(s, onSignal);
      await sender.close();
      for (const session of sessions) session.close();
    }
    return 0;
  },
});

export default command;
