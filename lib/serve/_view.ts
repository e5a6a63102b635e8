/**
 * What the server shows, for one device or for a site of several: the state document, the
 * metrics, the secrets to keep out of answers, and which device a path names. The handler works
 * on a {@link ServedView} and need not know which of the two it serves.
 *
 * @module
 */
import { renderMetrics, renderSiteMetrics } from "../export/prometheus.ts";
import { normalise } from "../model/normalise.ts";
import { siteReading } from "../model/site.ts";
import type { SurplusDocument } from "../surplus/report.ts";
import { echoedSecrets, stateText } from "./state.ts";
import type { ServeSnapshot, ServeSource, SiteSource } from "./source.ts";

/** What the server shows, made from its source's snapshots. */
export interface ServedView {
  /** The devices' names in a site, in the config's order; `undefined` for one device. */
  readonly names: readonly string[] | undefined;
  /** The secrets the devices echoed (see `echoedSecrets`), to keep out of every answer. */
  echoed(): readonly string[];
  /** The body of `/api/state` and of each `state` event at `now`. */
  stateText(now: number): string;
  /** The body of `/metrics` at `now`. */
  metricsText(now: number): string;
  /** For `/healthz`: whether the device (every device of a site) counts as reachable. */
  up(): boolean | undefined;
  /** Calls `listener` after every poll of any device; the result unsubscribes. */
  onPoll(listener: () => void): () => void;
  /**
   * The source of the device a path names: of a site, the one called `name` (`undefined` when
   * it has none of that name); of one device, that device when the path names none.
   */
  device(name: string | undefined): ServeSource | undefined;
}

/** Turns a source's snapshot into the one the server may show (redacted, cached by the caller). */
export type Clean = (snapshot: ServeSnapshot) => ServeSnapshot;

/** The view of one device: today's documents, unchanged. */
export function deviceView(source: ServeSource, clean: Clean): ServedView {
  return {
    names: undefined,
    echoed: () => echoedSecrets(source.snapshot()),
    stateText: (now) => stateText(clean(source.snapshot()), now),
    metricsText: (now) => renderMetrics(clean(source.snapshot()), now),
    up: () => source.snapshot().up,
    onPoll: (listener) => source.onPoll(listener),
    device: (name) => name === undefined ? source : undefined,
  };
}

/**
 * The `site` part of a site's state document: whether every device is up (`false` once one is
 * down, `null` until each has told), the devices summed (those up; the others in `missing`),
 * and the site's surplus where ess computes it.
 *
 * @example
 * ```ts
 * import { deepEqual, equal } from "node:assert/strict";
 * const snapshot = (pcs_pv_total_power: string, up: boolean) => ({
 *   states: { home: { statistics: { pcs_pv_total_power } } }, lastSuccess: 0, up,
 * });
 * const site = siteDocument([["garage", snapshot("1200", true)], ["shed", snapshot("800", false)]]);
 * equal(site.up, false);
 * deepEqual(site.reading.power.pvW, 1200);
 * deepEqual(site.reading.missing, ["shed"]);
 * ```
 */
export function siteDocument(
  devices: readonly (readonly [string, ServeSnapshot])[],
  surplus?: SurplusDocument,
): { up: boolean | null; reading: ReturnType<typeof siteReading>; surplus?: SurplusDocument } {
  const ups = devices.map(([, s]) => s.up);
  const up = ups.includes(false) ? false : ups.every((u) => u === true) ? true : null;
  const reading = siteReading(
    devices.map(([name, s]) =>
      [name, s.up === true ? s.reading ?? normalise(s.states) : undefined] as const
    ),
  );
  return { up, reading, ...(surplus === undefined ? {} : { surplus }) };
}

/**
 * The state document of a site as JSON text: `{"site": {@link siteDocument}, "devices": {NAME:
 * the state document of that device, …}}`, each device's made as for one device (`stateText`).
 *
 * @example
 * ```ts
 * import { deepEqual, equal } from "node:assert/strict";
 * const snapshot = { states: { home: { statistics: { load_power: "376" } } }, lastSuccess: 1_000, up: true };
 * const doc = JSON.parse(siteStateText([["garage", snapshot], ["house", snapshot]], undefined, 3_000));
 * deepEqual(Object.keys(doc.devices), ["garage", "house"]);
 * equal(doc.devices.house.age, 2);
 * equal(doc.site.reading.power.loadW, 752);
 * ```
 */
export function siteStateText(
  devices: readonly (readonly [string, ServeSnapshot])[],
  surplus: SurplusDocument | undefined,
  now: number,
): string {
  const parts = devices.map(([name, s]) => `${JSON.stringify(name)}:${stateText(s, now)}`);
  return `{"site":${JSON.stringify(siteDocument(devices, surplus))},"devices":{${
    parts.join(",")
  }}}`;
}

/** The view of a site's devices. */
export function siteView(site: SiteSource, clean: Clean): ServedView {
  const names = [...site.devices.keys()];
  const sources = [...site.devices.entries()];
  const served = () => sources.map(([name, source]) => [name, clean(source.snapshot())] as const);
  return {
    names,
    echoed: () => sources.flatMap(([, source]) => echoedSecrets(source.snapshot())),
    stateText: (now) => siteStateText(served(), site.surplus?.(), now),
    metricsText: (now) => renderSiteMetrics(served(), site.surplus?.(), now),
    up() {
      const ups = sources.map(([, source]) => source.snapshot().up);
      return ups.includes(false) ? false : ups.every((u) => u === true) ? true : undefined;
    },
    onPoll(listener) {
      const stops = sources.map(([, source]) => source.onPoll(listener));
      return () => stops.forEach((stop) => stop());
    },
    device: (name) => name === undefined ? undefined : site.devices.get(name),
  };
}
