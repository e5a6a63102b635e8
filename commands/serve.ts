/**
 * `ess serve`: a local dashboard, a JSON/SSE API and Prometheus metrics, polling the device like
 * the bridge.
 *
 * @module
 */
import { UsageError } from "../lib/errors.ts";
import { DEFAULT_LISTEN } from "../lib/serve/listen.ts";
import { defineCommand, DEVICE_OPTIONS, GENERAL_OPTIONS } from "./_cli.ts";
import { openSite, runPollers } from "./_site.ts";
import {
  ALLOWED_CLIENTS_OPTION,
  ALLOWED_HOSTS_OPTION,
  CONTROL_TOKEN_OPTION,
  DAEMON_OPTIONS,
  LISTEN_OPTION,
  runDaemon,
  serveSettings,
} from "./_poll.ts";
import { startServing } from "./_serve.ts";
import { siteSurplus, SURPLUS_OPTIONS, surplusConfig } from "./_surplus.ts";
import { OFFLINE_AFTER_MS } from "../lib/device/poller.ts";

const command = defineCommand({
  name: "serve",
  usage: "serve [--listen ADDR:PORT] [--control-token TOKEN] [options]",
  description: [
    "Polls the ESS like 'ess mqtt' and serves, on --listen (this machine only by default):",
    "  /                   a dashboard: power flow, battery, today's energy, modes, history",
    "  /api/state          the device's state as JSON; /api/events: the same as Server-Sent Events",
    "  /api/graph/...      the statistics of a day, week, month or year as JSON",
    "  /api/control/NAME   controls, with --control-token (POST, Authorization: Bearer TOKEN)",
    "  /metrics            Prometheus metrics",
    "  /api/openapi.json   the API's description",
    "  /healthz            200 while ess runs (for 'ess health' and health checks)",
    "With [device NAME] sections in the config file it polls every device and serves them all:",
    "/api/state has the site's sum and each device by NAME, graphs and controls take the NAME",
    "first (/api/graph/NAME/..., /api/control/NAME/CONTROL), and the page has a view of each.",
    "Polls, graphs and controls share one device session. The device lets one app session in",
    "at a time: next to 'ess mqtt', use 'ess mqtt --listen' instead, which serves the same.",
    "Keep it on your LAN and never forward the port to the internet. It runs until SIGINT or",
    "SIGTERM. Exit codes: 0 stopped, 1 the port is taken or the device cannot be found, 2 bad",
    "option or config, 78 wrong device password.",
  ].join("\n"),
  options: [
    ...DEVICE_OPTIONS,
    {
      ...LISTEN_OPTION,
      help: "serve on ADDR:PORT: 127.0.0.1:8080 for this machine only, 0.0.0.0:8080 for " +
        "every machine that can reach it, [::1]:8080 for IPv6",
      default: DEFAULT_LISTEN,
    },
    CONTROL_TOKEN_OPTION,
    ALLOWED_CLIENTS_OPTION,
    ALLOWED_HOSTS_OPTION,
    ...DAEMON_OPTIONS,
    ...SURPLUS_OPTIONS,
    ...GENERAL_OPTIONS,
  ],
  examples: [
    "ess serve --config /etc/essmqtt.conf",
    "ESS_CONTROL_TOKEN=$(openssl rand -hex 24) ess serve --host 192.168.1.20 --listen 0.0.0.0:8080",
    "curl http://127.0.0.1:8080/api/state",
  ],
  async run(p, io) {
    const serve = serveSettings(p);
    if (serve === undefined) {
      throw new UsageError(`--listen is empty: give ADDR:PORT, e.g. ${DEFAULT_LISTEN}`);
    }
    const surplusSettings = surplusConfig(p);
    const site = await openSite(p);
    try {
      const surplus = siteSurplus(surplusSettings, site, OFFLINE_AFTER_MS);
      surplus.follow(undefined, p.log);
      const serving = await startServing({
        site,
        serve,
        logger: p.log,
        surplusOf: surplus.documentOf,
      });
      return await runDaemon(io, p.log, async (signal) => {
        // Said once the signals are handled: a SIGINT right after this line stops ess cleanly.
        for (const each of site.devices) {
          each.logger.info(
            `polling ${each.session.host.authority} every ${each.poll.intervalMs / 1000} s`,
          );
        }
        try {
          await runPollers(site, signal);
        } finally {
          await serving.close();
        }
      });
    } finally {
      site.close();
    }
  },
});

export default command;
