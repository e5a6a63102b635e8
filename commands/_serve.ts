/**
 * The server over a daemon's device side (`_site.ts`): the dashboard, the API and the metrics,
 * served from the poller and control queue the daemon already has. `ess serve`
 * always serves; `ess mqtt` loads this module only with `--listen`, so that the bridge alone
 * does not carry the server.
 *
 * @module
 */
import type { Logger } from "../lib/log.ts";
import { exposureNotice } from "../lib/serve/listen.ts";
import { pollerSource } from "../lib/serve/poller_source.ts";
import { type RunningServer, startServer } from "../lib/serve/server.ts";
import type { ServeSource, SiteSource } from "../lib/serve/source.ts";
import type { ServeSettings } from "./_poll.ts";
import type { Site } from "./_site.ts";
import type { SurplusDocument } from "../lib/surplus/report.ts";

/** What {@link startServing} serves, and for whom. */
export interface ServingOptions {
  /** The devices: their pollers, control queues and sessions, which the server shares. */
  site: Pick<Site, "devices" | "named">;
  serve: ServeSettings;
  /**
   * The CLI's logger: its redactor, which holds the passwords and the token and learns each
   * auth key as the client logs in, also keeps them out of every answer.
   */
  logger: Logger;
  /**
   * The surplus documents, where the daemon computes them: `surplusOf(undefined)` is the one
   * device's in single mode and the site's in named mode, `surplusOf("garage")` that device's.
   * Follow the pollers with the surplus before calling this, so that each state the server sends
   * has that poll's surplus.
   */
  surplusOf?: ((device: string | undefined) => SurplusDocument | undefined) | undefined;
}

/** The server over a daemon's device side. */
export interface Serving {
  /** Ends every event stream and stops serving. */
  close(): Promise<void>;
}

/**
 * Serves the dashboard, the API and the metrics over each device's poller and control queue
 * (the caller runs the pollers): of the one device, or of every device of a site by name. Logs
 * where, with one more line saying who can reach it when that is not only this machine.
 */
export async function startServing(options: ServingOptions): Promise<Serving> {
  const { site, serve, logger, surplusOf } = options;
  const sources = site.devices.map((device) =>
    pollerSource(device.poller, device.controls, device.session.client, {
      logger: device.logger,
      surplus: surplusOf && (() => surplusOf(device.name)),
    })
  );
  const source: ServeSource | SiteSource = site.named
    ? {
      devices: new Map(site.devices.map((device, i) => [device.name!, sources[i]!])),
      surplus: surplusOf && (() => surplusOf(undefined)),
    }
    : sources[0]!;
  const close = () => sources.forEach((s) => s.close());
  let server: RunningServer;
  try {
    server = await startServer(serve.address, {
      source,
      controlToken: serve.controlToken,
      allowedClients: serve.allowedClients,
      allowedHosts: serve.allowedHosts,
      intervalSeconds: Math.min(...site.devices.map((device) => device.poll.intervalMs)) / 1000,
      logger,
    });
  } catch (err) {
    close();
    throw err;
  }
  logger.info(
    `serving the dashboard, the API and /metrics on ${server.url}` +
      (serve.controlToken === undefined ? " (read-only: no control token)" : ""),
  );
  const notice = exposureNotice(server.address, serve.controlToken !== undefined);
  if (serve.allowedClients !== undefined) {
    logger.info(`taking requests only from ${serve.allowedClients.join(", ")} (and /healthz)`);
  } else if (notice !== undefined) logger.warning(notice);
  return {
    async close() {
      close();
      await server.close();
    },
  };
}
