/**
 * The device side of a daemon: for each device it talks to, one session, one poller and one
 * control queue, which the bridge, the server and the surplus all share. A single-device config
 * gives one unnamed device (today's topics and pages); a config with `[device NAME]` sections
 * gives one named device per section, each with its own session, back-off, grace period and
 * queue, so that one that is down, slow or hostile never holds up another.
 *
 * @module
 */
import { sleep } from "../lib/backoff.ts";
import { ControlQueue } from "../lib/device/control_queue.ts";
import { Poller } from "../lib/device/poller.ts";
import { errorText } from "../lib/errors.ts";
import { labelledLogger, type Logger } from "../lib/log.ts";
import type { Parsed } from "./_cli.ts";
import { type DeviceParsed, type DeviceSession, openDevice } from "./_device.ts";
import { daemonDevices } from "./_devices.ts";
import { type PollSettings, pollSettings } from "./_poll.ts";

/** One device of a daemon, ready to be polled. */
export interface SiteDevice {
  /** Its `[device NAME]`; `undefined` for the one device of a single-device config. */
  name: string | undefined;
  session: DeviceSession;
  /** Its polling and control spacing (a section may set its own). */
  poll: PollSettings;
  /** The daemon's logger, with the device's name before each line when it has one. */
  logger: Logger;
  /** Its poller, on the real clock; whoever runs the daemon runs it ({@link runPollers}). */
  poller: Poller;
  controls: ControlQueue;
}

/** Every device of a daemon. */
export interface Site {
  /** In config order; exactly one, unnamed, for a single-device config. */
  devices: readonly SiteDevice[];
  /** Whether the config declares `[device NAME]` sections (topics and pages per device). */
  named: boolean;
  /** Drops the commands not yet written and closes every device session. */
  close(): void;
}

/** What a daemon's options must hold for {@link openSite}. */
export type SiteParsed =
  & DeviceParsed
  & Parsed<
    "interval-seconds" | "common-divisor" | "control-spacing-seconds" | "active-spacing-seconds",
    never
  >;

/** One device's session, poller and queue, from its options. */
async function openSiteDevice(
  name: string | undefined,
  p: SiteParsed,
  logger: Logger,
): Promise<SiteDevice> {
  const poll = pollSettings(p);
  const session = await openDevice(p);
  const now = Date.now;
  const poller = new Poller({
    device: session.client,
    options: poll,
    logger,
    now,
    sleep,
    random: Math.random,
  });
  const controls = new ControlQueue({ poller, options: poll, logger, now, sleep });
  return { name, session, poll, logger, poller, controls };
}

/**
 * Opens every device of the daemon's config: a session (found by mDNS when a device has no
 * host), a poller and a control queue each. Nothing is read yet.
 */
export async function openSite(p: SiteParsed): Promise<Site> {
  const views = daemonDevices(p);
  const devices: SiteDevice[] = [];
  const close = () => {
    for (const device of devices) {
      device.controls.close();
      device.session.close();
    }
  };
  try {
    if (views === undefined) devices.push(await openSiteDevice(undefined, p, p.log));
    else {
      for (const view of views) {
        devices.push(
          await openSiteDevice(view.name, view.p as SiteParsed, labelledLogger(p.log, view.name)),
        );
      }
    }
  } catch (err) {
    close();
    throw err;
  }
  return { devices, named: views !== undefined, close };
}

/**
 * Runs every device's poller until `signal` aborts. Each runs on its own: a device that fails
 * for good (a wrong password) stops only itself, with one error line, while the others go on;
 * only when every device has failed for good does this reject, with the first one's error (a
 * single-device daemon thus ends on a wrong password, as before).
 */
export async function runPollers(site: Site, signal: AbortSignal): Promise<void> {
  const failures: unknown[] = [];
  await Promise.all(site.devices.map(async (device) => {
    try {
      await device.poller.run(signal);
    } catch (err) {
      failures.push(err);
      if (site.devices.length > 1 && failures.length < site.devices.length) {
        device.logger.error(`stopped polling: ${errorText(err)}`);
      }
    }
  }));
  if (failures.length > 0 && failures.length === site.devices.length) throw failures[0];
}
