/**
 * The device side of a daemon with the server over it: one poller and one control queue over
 * one device session, and the dashboard, the API and the metrics served from them. `ess serve`
 * always serves; `ess mqtt` loads this module only with `--listen`, so that the bridge alone
 * does not carry the server.
 *
 * @module
 */
import { sleep } from "../lib/backoff.ts";
import type { EssClient } from "../lib/device/client.ts";
import { ControlQueue, type ControlQueueOptions } from "../lib/device/control_queue.ts";
import { Poller, type PollerOptions } from "../lib/device/poller.ts";
import type { Logger } from "../lib/log.ts";
import { exposureNotice } from "../lib/serve/listen.ts";
import { pollerSource } from "../lib/serve/poller_source.ts";
import { type RunningServer, startServer } from "../lib/serve/server.ts";
import type { ServeSettings } from "./_poll.ts";
import type { SurplusDocument } from "../lib/surplus/report.ts";

/** What {@link startServing} serves, and for whom. */
export interface ServingOptions {
  /** The device session's client: the poller reads through it, graphs come from it. */
  client: EssClient;
  poll: PollerOptions & ControlQueueOptions;
  serve: ServeSettings;
  /**
   * The CLI's logger: its redactor, which holds the passwords and the token and learns each
   * auth key as the client logs in, also keeps them out of every answer.
   */
  logger: Logger;
  /**
   * The surplus, where the daemon computes it: `attach` starts feeding it from the poller before
   * the server listens, so that each state the server sends has that poll's surplus.
   */
  surplus?: { attach(poller: Poller): void; document(): SurplusDocument } | undefined;
}

/**
 * A daemon's device side, one poller and one control queue over one device session, with the
 * server over it.
 */
export interface Serving {
  poller: Poller;
  controls: ControlQueue;
  /** Drops the commands not yet written, ends every event stream and stops serving. */
  close(): Promise<void>;
}

/**
 * Builds the poller and the control queue over `client` (on the real clock; the caller runs
 * the poller, or gives both to the bridge), serves the dashboard, the API and the metrics over
 * them, and logs where, with one more line saying who can reach it when that is not only this
 * machine.
 */
export async function startServing(options: ServingOptions): Promise<Serving> {
  const { client, poll, serve, logger } = options;
  const now = Date.now;
  const poller = new Poller({
    device: client,
    options: poll,
    logger,
    now,
    sleep,
    random: Math.random,
  });
  const controls = new ControlQueue({ poller, options: poll, logger, now, sleep });
  options.surplus?.attach(poller);
  const source = pollerSource(poller, controls, client, {
    logger,
    surplus: options.surplus?.document,
  });
  let server: RunningServer;
  try {
    server = await startServer(serve.address, {
      source,
      controlToken: serve.controlToken,
      allowedClients: serve.allowedClients,
      allowedHosts: serve.allowedHosts,
      intervalSeconds: poll.intervalMs / 1000,
      logger,
    });
  } catch (err) {
    source.close();
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
    poller,
    controls,
    async close() {
      controls.close();
      source.close();
      await server.close();
    },
  };
}
