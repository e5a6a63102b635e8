/**
 * The MQTT topic layout, pyess-compatible, and the one rule for what can be a topic. The bridge,
 * Home Assistant discovery and the docs all derive their topics from here; the bridge and the
 * MQTT client check topics with {@link topicProblem}, and messages against a subscription with
 * {@link topicMatches}.
 *
 * @module
 */
import type { ControlName } from "../device/controls.ts";
import { POLLED_STATES } from "../device/poller.ts";

/** Default topic prefix (pyess used `ess`). */
export const DEFAULT_PREFIX = "ess";

/**
 * The states the bridge mirrors, which are the states the poller reads: `home` and `common` as
 * pyess did, and the `batt` settings, which hold the state of fast charge, the charge strategy
 * and backup mode.
 */
export const PUBLISHED_STATES: typeof POLLED_STATES = POLLED_STATES;

/**
 * Topic of one leaf: `ess/home/statistics/load_power`, `ess/common/BATT/soc`.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * equal(stateTopic("ess", "common", ["BATT", "soc"]), "ess/common/BATT/soc");
 * ```
 */
export function stateTopic(prefix: string, state: string, path: readonly string[]): string {
  return [prefix, state, ...path].join("/");
}

/**
 * Topic of a whole state as one JSON document (`ess/json/home`, with `--json`). It lives
 * outside `<prefix>/<state>/` so that it can never clash with a leaf or match `ess/home/#`.
 */
export function jsonTopic(prefix: string, state: string): string {
  return `${prefix}/json/${state}`;
}

/**
 * The first levels of one device's topics when the config declares several (`ess/garage`):
 * each device's topics are then those of a single device under this prefix (`ess/garage/status`,
 * `ess/garage/control/winter_mode`), and `<prefix>/status` is the process's own.
 */
export function devicePrefix(prefix: string, name: string): string {
  return `${prefix}/${name}`;
}

/** Retained availability topic: `online` / `offline`. */
export function statusTopic(prefix: string): string {
  return `${prefix}/status`;
}

/** The controls pyess had, which also answer on the legacy `/ess/control/...` topics. */
export const LEGACY_CONTROL_NAMES: readonly ControlName[] = ["active", "winter_mode", "fastcharge"];

/** `ess/control/winter_mode`. */
export function controlTopic(prefix: string, name: ControlName): string {
  return `${prefix}/control/${name}`;
}

/** pyess's leading-slash variant: `/ess/control/winter_mode`. */
export function legacyControlTopic(prefix: string, name: ControlName): string {
  return `/${prefix}/control/${name}`;
}

/** The longest topic MQTT can carry, in UTF-8 bytes (a two-byte length field). */
export const MAX_TOPIC_BYTES = 65_535;

const utf8 = new TextEncoder();

/**
 * Code points a broker refuses in a topic (MQTT 3.1.1, 1.5.3; mosquitto drops the connection
 * of a client that sends one): NUL and the other C0 controls, DEL and the C1 controls, lone
 * surrogates (not UTF-8 at all), and the non-characters U+FDD0..U+FDEF and U+xxFFFE/U+xxFFFF.
 */
function isRefusedCodePoint(c: number): boolean {
  return c <= 0x1f || (c >= 0x7f && c <= 0x9f) || (c >= 0xd800 && c <= 0xdfff) ||
    (c >= 0xfdd0 && c <= 0xfdef) || (c & 0xfffe) === 0xfffe;
}

/** `U+000A`: how a code point is named in a message. */
function codePointName(c: number): string {
  return `U+${c.toString(16).toUpperCase().padStart(4, "0")}`;
}

/**
 * Why `topic` cannot be published (or, with `filter`, subscribed to), or `undefined` when it
 * can: it is empty, longer than {@link MAX_TOPIC_BYTES}, holds a code point brokers refuse, or,
 * outside a filter, a wildcard. The MQTT client refuses such a topic; the bridge skips a device
 * key that would make one, so that one odd key cannot cost the whole session.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * equal(topicProblem("ess/home/statistics/load_power"), undefined);
 * equal(topicProblem("ess/home/a\nb"), "it contains the control character U+000A");
 * equal(topicProblem("ess/control/#", { filter: true }), undefined);
 * ```
 */
export function topicProblem(
  topic: string,
  options: { filter?: boolean } = {},
): string | undefined {
  if (topic === "") return "it is empty";
  for (const char of topic) {
    const c = char.codePointAt(0)!;
    if (!isRefusedCodePoint(c)) continue;
    if (c <= 0x1f || (c >= 0x7f && c <= 0x9f)) {
      return `it contains the control character ${codePointName(c)}`;
    }
    if (c >= 0xd800 && c <= 0xdfff) return `it contains a lone surrogate ${codePointName(c)}`;
    return `it contains ${codePointName(c)}, which is not a character`;
  }
  if (!options.filter && /[#+]/.test(topic)) return "it contains # or +, MQTT's wildcards";
  // UTF-8 needs at most three bytes per UTF-16 unit, so most topics need no encoding to tell.
  if (topic.length * 3 > MAX_TOPIC_BYTES) {
    const bytes = utf8.encode(topic).length;
    if (bytes > MAX_TOPIC_BYTES) {
      return `it is ${bytes.toLocaleString("en")} bytes long, more than MQTT's ${
        MAX_TOPIC_BYTES.toLocaleString("en")
      }`;
    }
  }
  return undefined;
}

/**
 * Whether an MQTT topic filter (with `+` and `#`) matches a topic.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * equal(topicMatches("homeassistant/+/status", "homeassistant/x/status"), true);
 * equal(topicMatches("ess/#", "ess/home/statistics/load_power"), true);
 * equal(topicMatches("ess/+", "ess/home/statistics"), false);
 * ```
 */
export function topicMatches(filter: string, topic: string): boolean {
  const f = filter.split("/");
  const t = topic.split("/");
  for (let i = 0; i < f.length; i++) {
    // `#` also matches the parent level: `ess/#` matches `ess`.
    if (f[i] === "#") return true;
    if (i >= t.length) return false;
    if (f[i] !== "+" && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}
