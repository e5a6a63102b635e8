/**
 * `ess graphite`: send the device's live values to Graphite, every few seconds.
 *
 * @module
 */
import { UsageError } from "../lib/errors.ts";
import { MIN_POLL_SECONDS } from "../lib/device/states.ts";
import {
  createSender,
  DEFAULT_GRAPHITE_PORT,
  GRAPHITE_PROTOCOLS,
  runGraphite,
} from "../lib/export/graphite.ts";
import { choose, defineCommand, DEVICE_OPTIONS, GENERAL_OPTIONS } from "./_cli.ts";
import { hostPortOption, openDevice } from "./_device.ts";

const command = defineCommand({
  name: "graphite",
  usage: "graphite --graphite HOST[:PORT] [--protocol tcp|udp] [--prefix P] [--once]",
  description: "Reads home and common every --interval-seconds and sends every numeric value " +
    "as one batch\nof plaintext lines: home.<group>.<key> and common.<GROUP>.<key> (pyess's " +
    "names), e.g.\n  home.statistics.load_power 376 1718000000\n" +
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
    const intervalMs = (p.seconds("interval-seconds", MIN_POLL_SECONDS) ?? 10) * 1000;
    const once = p.flag("once");

    const session = await openDevice(p);
    const sender = createSender(protocol, target.hostname, target.port);
    const stop = new AbortController();
    const onSignal = () => stop.abort();
    const signals = ["SIGINT", "SIGTERM"] as const;
    for (const s of signals) Deno.addSignalListener(s, onSignal);
    try {
      if (!once) {
        p.log.info(
          `sending ${session.host.authority}'s values to ${sender.target} every ${
            intervalMs / 1000
          } s`,
        );
      }
      await runGraphite({
        device: session.client,
        sender,
        prefix: p.string("prefix"),
        intervalMs,
        once,
        logger: p.log,
        signal: stop.signal,
      });
      if (stop.signal.aborted) p.log.info("stopped");
    } finally {
      for (const s of signals) Deno.removeSignalListener(s, onSignal);
      await sender.close();
      session.close();
    }
    return 0;
  },
});

export default command;
