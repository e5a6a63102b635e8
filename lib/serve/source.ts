/**
 * What `ess serve` needs from whoever talks to the device: the latest answers, word after every
 * poll, graphs and controls through the one device session. It knows nothing of MQTT, so the
 * standalone server and `ess mqtt --listen` can both provide it.
 *
 * @module
 */
import type { GraphAnswer } from "../device/client.ts";
import type { JsonObject } from "../device/flatten.ts";
import type { CalendarDate, GraphDevice, GraphSpan, StateName } from "../device/states.ts";
import type { ControlCommand, ControlName } from "../device/controls.ts";
import type { ControlResult } from "../device/control_queue.ts";
import type { Reading } from "../model/reading.ts";
import type { SurplusDocument } from "../surplus/report.ts";

/** The device as the last polls saw it. */
export interface ServeSnapshot {
  /** The latest answer of each state read so far, with the device's values unchanged. */
  states: Partial<Record<StateName, JsonObject>>;
  /** Those answers normalised, where the source has made the reading already. */
  reading?: Reading | undefined;
  /** When the last poll succeeded (ms since the epoch), `undefined` before the first one. */
  lastSuccess: number | undefined;
  /** Whether the device counts as reachable; `undefined` until the first poll has told. */
  up: boolean | undefined;
  /** Why the device counts as down, while it does; never contains a secret. */
  error?: string | undefined;
  /** The surplus and its rules, where ess computes them. */
  surplus?: SurplusDocument | undefined;
}

/**
 * What became of one control command: the control queue's own result, passed through unchanged
 * (`written` and read back, `merged` into a later command for the same control, `unchanged`,
 * `failed` with `error` saying why without secrets, or `stopped` as ess shut down).
 */
export type ControlOutcome = ControlResult;

/** The device side of the server: a poller, a graph reader and a control queue. */
export interface ServeSource {
  /** The latest answers; cheap, called on every request. */
  snapshot(): ServeSnapshot;
  /** Calls `listener` after every poll, successful or not; the result unsubscribes. */
  onPoll(listener: () => void): () => void;
  /** Reads a statistics graph through the shared device session. */
  graph(device: GraphDevice, span: GraphSpan, date: CalendarDate): Promise<GraphAnswer>;
  /**
   * Queues a parsed control command (coalesced and spaced like the bridge's); `source` names
   * who sent it, for the log. Resolves once the command was written and read back, merged,
   * refused or dropped; never rejects.
   */
  control(name: ControlName, command: ControlCommand, source: string): Promise<ControlOutcome>;
}

/**
 * The devices of a site (a config with `[device NAME]` sections), each behind its own
 * {@link ServeSource}, and the surplus of the whole site.
 */
export interface SiteSource {
  /** Every device by its name, in the config's order. */
  devices: ReadonlyMap<string, ServeSource>;
  /** The site's surplus and its rules, where ess computes them. */
  surplus?: (() => SurplusDocument | undefined) | undefined;
}

/**
 * Whether the server serves a site rather than one device.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * equal(isSiteSource({ devices: new Map() }), true);
 * ```
 */
export function isSiteSource(source: ServeSource | SiteSource): source is SiteSource {
  return "devices" in source;
}
