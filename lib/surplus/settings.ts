/**
 * Rules as the user writes them. In a config file, one key per setting, named after the rule:
 *
 * ```
 * surplus.heater.on-watts = 1500
 * surplus.heater.off-watts = 200
 * surplus.heater.load-watts = 2000
 * surplus.heater.topic = shellies/heater/relay/0/command
 * ```
 *
 * On the command line, a rule per `--surplus-rule`, its settings after a colon:
 * `--surplus-rule heater:on-watts=1500,off-watts=200,load-watts=2000`. A setting given on the
 * command line wins over the same setting in the file. Every bad value names its file and line,
 * or its option.
 *
 * @module
 */
import type { ConfigEntry } from "../config.ts";
import { topicProblem } from "../mqtt/topics.ts";
import { RULE_FIELDS, type RuleNumbers, type RuleSettings, SITE_SOURCE } from "./rule.ts";

/** The prefix of a rule's keys in a config file. */
export const RULE_KEY_PREFIX = "surplus.";

/** At most this many rules. */
export const MAX_RULES = 32;

/** A rule name: it becomes an MQTT topic level, a Home Assistant id and a metric label. */
export const RULE_NAME = /^[a-z0-9][a-z0-9_]{0,31}$/;

/**
 * The words a rule takes besides the numbers of {@link RULE_FIELDS}: where it switches a plug,
 * and (with several devices) which power it follows.
 */
const TEXT_KEYS = ["topic", "payload-on", "payload-off", "device"] as const;

/** The longest payload a rule may send. */
const MAX_PAYLOAD = 256;

/** One setting of one rule, and where it was written. */
export interface RuleEntry {
  rule: string;
  key: string;
  value: string;
  origin: string;
}

/** Makes the error for a bad value at `origin` (a config file's `file:line`, or an option). */
export type ErrorAt = (origin: string, message: string) => Error;

const KNOWN_KEYS = [...RULE_FIELDS.map((f) => f.key), ...TEXT_KEYS];

/**
 * The rule settings among a config file's entries (`surplus.<rule>.<key>`).
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * const entries = [{ key: "surplus.heater.on-watts", value: "1500", origin: "ess.conf:3" }];
 * deepEqual(ruleEntriesFromConfig(entries, (o, m) => new Error(`${o}: ${m}`)), [
 *   { rule: "heater", key: "on-watts", value: "1500", origin: "ess.conf:3" },
 * ]);
 * ```
 */
export function ruleEntriesFromConfig(
  entries: readonly ConfigEntry[],
  errorAt: ErrorAt,
): RuleEntry[] {
  const out: RuleEntry[] = [];
  for (const entry of entries) {
    if (!entry.key.startsWith(RULE_KEY_PREFIX)) continue;
    const m = /^surplus\.([^.]*)\.([^.]*)$/.exec(entry.key);
    if (!m) {
      throw errorAt(entry.origin, `a rule's key is surplus.<rule>.<setting>, not ${entry.key}`);
    }
    out.push({
      rule: m[1]!,
      key: m[2]!.replaceAll("_", "-"),
      value: entry.value,
      origin: entry.origin,
    });
  }
  return out;
}

/**
 * The settings of one `--surplus-rule NAME:key=value,key=value`.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * const fail = (o: string, m: string) => new Error(`${o}: ${m}`);
 * deepEqual(ruleEntriesFromOption("pump:on-watts=800", "--surplus-rule", fail), [
 *   { rule: "pump", key: "on-watts", value: "800", origin: "--surplus-rule" },
 * ]);
 * ```
 */
export function ruleEntriesFromOption(text: string, origin: string, errorAt: ErrorAt): RuleEntry[] {
  const colon = text.indexOf(":");
  if (colon < 0) {
    throw errorAt(origin, "a rule is NAME:key=value,key=value (e.g. heater:on-watts=1500)");
  }
  const rule = text.slice(0, colon).trim();
  return text.slice(colon + 1).split(",").filter((part) => part.trim() !== "").map((part) => {
    const eq = part.indexOf("=");
    if (eq < 0) throw errorAt(origin, `rule ${rule}: "${part.trim()}" is not key=value`);
    return {
      rule,
      key: part.slice(0, eq).trim(),
      value: part.slice(eq + 1).trim(),
      origin,
    };
  });
}

/**
 * Checks one rule number's text against its field's bounds.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * equal(parseRuleNumber("on-watts", "1500"), 1500);
 * equal(typeof parseRuleNumber("min-soc", "120"), "string");
 * ```
 */
export function parseRuleNumber(key: string, text: string): number | string {
  const field = RULE_FIELDS.find((f) => f.key === key);
  if (!field) return `unknown setting ${key}`;
  const n = Number(text);
  if (!/^-?\d{1,6}(\.\d{1,3})?$/.test(text) || n < field.min || n > field.max) {
    return `${key} must be a number from ${field.min} to ${field.max} (${field.unit}), not ` +
      `${JSON.stringify(text.slice(0, 40))}`;
  }
  return n;
}

/** Why `settings` is not a rule, or `undefined`. */
export function ruleProblem(settings: RuleNumbers): string | undefined {
  if (settings.offWatts > settings.onWatts) {
    return `off-watts (${settings.offWatts}) must not be above on-watts (${settings.onWatts})`;
  }
  return undefined;
}

/**
 * The power a rule follows: with several devices, a device's name or `site` (the default);
 * with one device, nothing to choose.
 */
function ruleSource(
  name: string,
  entry: { value: string; origin: string } | undefined,
  devices: readonly string[] | undefined,
  errorAt: ErrorAt,
): string | undefined {
  if (devices === undefined) {
    if (entry === undefined) return undefined;
    throw errorAt(
      entry.origin,
      `rule ${name}: device chooses among the config's [device NAME] sections, and it has ` +
        "none: with one device, every rule follows it (drop the device setting)",
    );
  }
  if (entry === undefined) return SITE_SOURCE;
  if (entry.value === SITE_SOURCE || devices.includes(entry.value)) return entry.value;
  throw errorAt(
    entry.origin,
    `rule ${name}: device must be ${SITE_SOURCE} (the sum of every device) or one of ` +
      `${devices.join(", ")}, not ${JSON.stringify(entry.value.slice(0, 40))}`,
  );
}

/** The settings of one rule, defaults filled in. */
function buildRule(
  name: string,
  entries: readonly RuleEntry[],
  errorAt: ErrorAt,
  devices: readonly string[] | undefined,
): RuleSettings {
  const first = entries[0]!.origin;
  if (name === "power") {
    throw errorAt(first, "rule name power is taken: <prefix>/surplus/power is the surplus itself");
  }
  if (!RULE_NAME.test(name)) {
    throw errorAt(
      first,
      `rule name ${JSON.stringify(name.slice(0, 40))}: use lowercase ` +
        "letters, digits and _, at most 32, starting with a letter or digit",
    );
  }
  const numbers: Partial<Record<keyof RuleNumbers, number>> = {};
  const text: Partial<Record<(typeof TEXT_KEYS)[number], { value: string; origin: string }>> = {};
  for (const e of entries) {
    if ((TEXT_KEYS as readonly string[]).includes(e.key)) {
      text[e.key as (typeof TEXT_KEYS)[number]] = e;
      continue;
    }
    if (!KNOWN_KEYS.includes(e.key)) {
      throw errorAt(
        e.origin,
        `rule ${name}: unknown setting ${e.key}; one of ${KNOWN_KEYS.join(", ")}`,
      );
    }
    const n = parseRuleNumber(e.key, e.value);
    if (typeof n === "string") throw errorAt(e.origin, `rule ${name}: ${n}`);
    numbers[RULE_FIELDS.find((f) => f.key === e.key)!.prop] = n;
  }
  for (const field of RULE_FIELDS) {
    if (numbers[field.prop] !== undefined) continue;
    if (field.default === undefined) throw errorAt(first, `rule ${name}: ${field.key} is missing`);
    numbers[field.prop] = field.default;
  }
  const source = ruleSource(name, text.device, devices, errorAt);
  const settings: RuleSettings = {
    name,
    ...(numbers as RuleNumbers),
    ...(source === undefined ? {} : { device: source }),
  };
  const problem = ruleProblem(settings);
  const last = entries[entries.length - 1]!.origin;
  if (problem) throw errorAt(last, `rule ${name}: ${problem}`);
  for (const key of ["payload-on", "payload-off"] as const) {
    const payload = text[key];
    if (payload && payload.value.length > MAX_PAYLOAD) {
      throw errorAt(payload.origin, `rule ${name}: ${key} has more than ${MAX_PAYLOAD} characters`);
    }
  }
  if (text.topic) {
    const why = topicProblem(text.topic.value);
    if (why) throw errorAt(text.topic.origin, `rule ${name}: cannot publish to its topic: ${why}`);
    settings.switch = {
      topic: text.topic.value,
      payloadOn: text["payload-on"]?.value ?? "on",
      payloadOff: text["payload-off"]?.value ?? "off",
    };
  } else if (text["payload-on"] ?? text["payload-off"]) {
    const e = (text["payload-on"] ?? text["payload-off"])!;
    throw errorAt(e.origin, `rule ${name}: a payload needs a topic to send it to`);
  }
  return settings;
}

/**
 * The rules of `entries`, in the order their names first appear; a later entry for the same
 * setting wins, so pass the config file's entries before the command line's. `devices`: the
 * names of the config's `[device NAME]` sections, which a rule's `device` chooses from (each
 * rule then follows one, or the site); `undefined` for a single-device config, where a rule
 * has no `device`.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * const fail = (o: string, m: string) => new Error(`${o}: ${m}`);
 * const [heater] = buildRules(ruleEntriesFromOption("heater:on-watts=1500", "--surplus-rule", fail), fail);
 * equal(heater?.offDelaySeconds, 180);
 * ```
 */
export function buildRules(
  entries: readonly RuleEntry[],
  errorAt: ErrorAt,
  devices?: readonly string[],
): RuleSettings[] {
  const byRule = new Map<string, RuleEntry[]>();
  for (const e of entries) {
    const list = byRule.get(e.rule) ?? [];
    if (list.length === 0) {
      if (byRule.size >= MAX_RULES) throw errorAt(e.origin, `at most ${MAX_RULES} rules`);
      byRule.set(e.rule, list);
    }
    list.push(e);
  }
  return [...byRule].map(([name, list]) => buildRule(name, list, errorAt, devices));
}
