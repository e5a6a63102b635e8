/**
 * The surplus on MQTT, as a bridge plugin: publishes the surplus and every rule after each poll
 * (retained), announces them to Home Assistant, takes new thresholds and delays on
 * `<prefix>/surplus/<rule>/<setting>/set` and keeps them across restarts in a retained
 * `<prefix>/surplus/<rule>/overrides`, and switches a rule's plug directly where the rule names
 * one. When ess stops, the plugs it switched on are switched off: nobody watches the surplus.
 * With several devices there is one such plugin per device, in that device's bridge (under
 * `ess/garage/surplus/...`), and one for the site, among the process's plugins (under
 * `ess/surplus/...`): it needs nothing of a device.
 *
 * @module
 */
import { errorText, WrongPasswordError } from "../errors.ts";
import type { BridgeContext } from "../mqtt/bridge.ts";
import { quote } from "../mqtt/_quote.ts";
import type { SurplusEngine, SurplusState } from "./engine.ts";
import { buildSiteSurplusDiscovery, buildSurplusDiscovery } from "./hass.ts";
import { RULE_FIELDS, type RuleNumbers, type RuleSettings } from "./rule.ts";
import { parseRuleNumber, ruleProblem } from "./settings.ts";
import {
  ruleFieldTopic,
  ruleOverridesTopic,
  ruleTopic,
  ruleWhyTopic,
  surplusPowerTopic,
  UNKNOWN_PAYLOAD,
} from "./topics.ts";

/** The largest overrides document ess reads: a whole rule's numbers fit in 300 bytes. */
const MAX_OVERRIDES_BYTES = 4096;
/** The least time between two warnings about the same topic, in ms. */
const WARNING_MS = 60_000;
/** How long to wait before trying Home Assistant discovery again after it failed, in ms. */
const DISCOVERY_RETRY_MS = 60_000;

/**
 * What the plugin needs of the bridge it runs in: to publish and log, and, to announce a
 * device's surplus on the device's HA device, to read the device's systeminfo. A device's
 * bridge gives all of it; the process's plugins (the site's surplus) have no device to read.
 */
export type SurplusContext =
  & Pick<BridgeContext, "publish" | "logger">
  & Partial<Pick<BridgeContext, "read">>;

/** Options of {@link createSurplusPlugin}. */
export interface SurplusPluginOptions {
  engine: SurplusEngine;
  /** The topic prefix: ess's, a device's (`ess/garage`) or, for the site's surplus, the process's. */
  prefix: string;
  /** Announce to Home Assistant; absent: do not. */
  hass?: {
    version: string;
    supportUrl?: string | undefined;
    discoveryPrefix?: string | undefined;
    fallbackId: string;
    /** One of several devices: its name and the process's prefix (its HA device's name, ids). */
    named?: { name: string; processPrefix: string } | undefined;
    /** The site's surplus: its devices' names; announced on an HA device of its own. */
    site?: { devices: readonly string[] } | undefined;
  } | undefined;
  /** Milliseconds since the epoch (for warning limits). */
  now?: (() => number) | undefined;
}

/** The surplus plugin: a {@link BridgePlugin} of a device's bridge or of the process's. */
export interface SurplusPlugin {
  subscriptions: readonly string[];
  /** After every (re)connect: the settings, the state and the plugs' state again. */
  onConnect(ctx: SurplusContext): Promise<void>;
  /** A run-time setting or the retained overrides. */
  onMessage(topic: string, payload: string, retained: boolean, ctx: SurplusContext): Promise<void>;
  /** Switches off the plugs it switched on. */
  onStop(ctx: SurplusContext): Promise<void>;
  /** Publishes the state after a poll, and switches the plugs of the rules that changed. */
  publish(state: SurplusState): Promise<void>;
}

type Overrides = Partial<Record<keyof RuleNumbers, number>>;

/** The run-time overrides of `text` (JSON `{"on-watts": 1800}`), or why they are not. */
export function parseOverrides(text: string): Overrides | string {
  if (text.trim() === "") return {};
  if (text.length > MAX_OVERRIDES_BYTES) return `more than ${MAX_OVERRIDES_BYTES} bytes`;
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return "not JSON";
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) return "not a JSON object";
  const out: Overrides = {};
  for (const [key, value] of Object.entries(doc)) {
    const n = parseRuleNumber(key, typeof value === "number" ? String(value) : "?");
    if (typeof n === "string") return n;
    out[RULE_FIELDS.find((f) => f.key === key)!.prop] = n;
  }
  return out;
}

/** The overrides as the retained JSON document, in the config file's words. */
function overridesText(overrides: Overrides): string {
  const doc: Record<string, number> = {};
  for (const field of RULE_FIELDS) {
    const value = overrides[field.prop];
    if (value !== undefined) doc[field.key] = value;
  }
  return Object.keys(doc).length === 0 ? "" : JSON.stringify(doc);
}

/**
 * Creates the plugin for `engine`'s rules.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { SurplusEngine } from "./engine.ts";
 * const engine = new SurplusEngine({
 *   surplus: { prioritySocPct: 80, reserveW: 100, windowMs: 60_000 },
 *   rules: [],
 *   graceMs: 30_000,
 * });
 * const plugin = createSurplusPlugin({ engine, prefix: "ess" });
 * deepEqual(plugin.subscriptions, ["ess/surplus/+/+/set", "ess/surplus/+/overrides"]);
 * ```
 */
export function createSurplusPlugin(options: SurplusPluginOptions): SurplusPlugin {
  const { engine, prefix } = options;
  const now = options.now ?? Date.now;
  const base = new Map(engine.rules.map((r) => [r.name, r]));
  const overrides = new Map<string, Overrides>();
  /** What each state topic last carried on this connection. */
  const sent = new Map<string, string>();
  /** What each plug was last told on this connection. */
  const switched = new Map<string, boolean>();
  const warned = new Map<string, number>();
  let ctx: SurplusContext | undefined;
  let announced = false;
  let announcing = false;
  let discoveryAfter = 0;

  const warn = (c: SurplusContext, key: string, message: string) => {
    const last = warned.get(key);
    if (last !== undefined && now() - last < WARNING_MS) {
      c.logger.debug(message);
      return;
    }
    warned.set(key, now());
    c.logger.warning(message);
  };

  const publishRetained = async (c: SurplusContext, topic: string, payload: string) => {
    if (sent.get(topic) === payload) return;
    await c.publish(topic, payload, { retain: true, qos: 0 });
    sent.set(topic, payload);
  };

  const publishFields = async (c: SurplusContext, rule: RuleSettings) => {
    for (const field of RULE_FIELDS) {
      await publishRetained(
        c,
        ruleFieldTopic(prefix, rule.name, field.key),
        String(rule[field.prop]),
      );
    }
  };

  /**
   * Announces to Home Assistant once per connection. It reads systeminfo through the device
   * queue, so it runs beside the poll that called it (which holds the queue), never awaited.
   */
  const announce = async (c: SurplusContext) => {
    const hass = options.hass;
    if (!hass || announced || announcing || now() < discoveryAfter) return;
    announcing = true;
    try {
      const origin = { version: hass.version, supportUrl: hass.supportUrl };
      let discovery;
      if (hass.site !== undefined) {
        discovery = buildSiteSurplusDiscovery({
          prefix,
          discoveryPrefix: hass.discoveryPrefix,
          origin,
          rules: engine.rules,
          devices: hass.site.devices,
        });
      } else {
        if (c.read === undefined) throw new Error("no device to read the systeminfo of");
        discovery = buildSurplusDiscovery({
          prefix,
          discoveryPrefix: hass.discoveryPrefix,
          systeminfo: await c.read("systeminfo"),
          fallbackId: hass.fallbackId,
          origin,
          rules: engine.rules,
          named: hass.named,
        });
      }
      await c.publish(discovery.topic, JSON.stringify(discovery.config), { retain: true, qos: 1 });
      announced = true;
      c.logger.info(`announced the surplus and ${engine.rules.length} rules on ${discovery.topic}`);
    } catch (err) {
      discoveryAfter = now() + DISCOVERY_RETRY_MS;
      // A wrong password ends ess with its own line.
      if (!(err instanceof WrongPasswordError)) {
        warn(c, "discovery", `Home Assistant discovery of the surplus failed: ${errorText(err)}`);
      }
    } finally {
      announcing = false;
    }
  };

  const publish = async (state: SurplusState) => {
    const c = ctx;
    if (!c) return;
    const power = state.powerW === undefined ? UNKNOWN_PAYLOAD : String(Math.round(state.powerW));
    await publishRetained(c, surplusPowerTopic(prefix), power);
    for (const status of state.rules) {
      await publishRetained(c, ruleTopic(prefix, status.name), status.on ? "on" : "off");
      await publishRetained(c, ruleWhyTopic(prefix, status.name), status.why);
      const plug = base.get(status.name)?.switch;
      if (plug && switched.get(status.name) !== status.on) {
        await c.publish(plug.topic, status.on ? plug.payloadOn : plug.payloadOff, { qos: 1 });
        switched.set(status.name, status.on);
        c.logger.info(`surplus rule ${status.name}: ${status.why}; sent ${plug.topic}`);
      }
    }
    // Only once the device has answered: before, its systeminfo could not be read anyway. The
    // site's has nothing to read.
    if (state.instantW !== undefined || options.hass?.site !== undefined) void announce(c);
  };

  /** Applies `next` as `rule`'s overrides; `undefined`, or why not. */
  const apply = (name: string, next: Overrides): string | undefined => {
    const settings: RuleSettings = { ...base.get(name)!, ...next };
    const problem = ruleProblem(settings);
    if (problem) return problem;
    engine.setRule(settings);
    overrides.set(name, next);
    return undefined;
  };

  const onSet = async (c: SurplusContext, name: string, key: string, payload: string) => {
    const n = parseRuleNumber(key, payload.trim());
    if (typeof n === "string") {
      warn(c, `set ${name}`, `surplus rule ${name}: ${n} (from ${quote(payload, 40)})`);
      return;
    }
    const field = RULE_FIELDS.find((f) => f.key === key)!;
    const problem = apply(name, { ...overrides.get(name), [field.prop]: n });
    if (problem) {
      warn(c, `set ${name}`, `surplus rule ${name}: ${problem}`);
      return;
    }
    c.logger.info(`surplus rule ${name}: ${key} set to ${n} at run time`);
    await publishFields(c, engine.rules.find((r) => r.name === name)!);
    const text = overridesText(overrides.get(name)!);
    await c.publish(ruleOverridesTopic(prefix, name), text, { retain: true, qos: 1 });
  };

  const onOverrides = async (c: SurplusContext, name: string, payload: string) => {
    const parsed = parseOverrides(payload);
    const problem = typeof parsed === "string" ? parsed : apply(name, parsed);
    if (problem) {
      warn(c, `overrides ${name}`, `surplus rule ${name}: ignored its overrides: ${problem}`);
      return;
    }
    await publishFields(c, engine.rules.find((r) => r.name === name)!);
  };

  return {
    subscriptions: [`${prefix}/surplus/+/+/set`, `${prefix}/surplus/+/overrides`],
    async onConnect(c) {
      ctx = c;
      sent.clear();
      switched.clear();
      announced = false;
      discoveryAfter = 0;
      for (const rule of engine.rules) await publishFields(c, rule);
      await publish(engine.state);
    },
    async onMessage(topic, payload, retained, c) {
      const levels = topic.slice(prefix.length + 1).split("/");
      const name = levels[1] ?? "";
      if (!base.has(name)) return;
      if (levels.length === 3 && levels[2] === "overrides") {
        await onOverrides(c, name, payload);
      } else if (levels.length === 4 && levels[3] === "set") {
        // A retained command would be carried out again at every connect: it is not a command.
        if (retained) {
          warn(c, `retained ${topic}`, `ignored the retained message on ${topic}`);
          return;
        }
        await onSet(c, name, levels[2]!, payload);
      }
    },
    async onStop(c) {
      for (const status of engine.state.rules) {
        const plug = base.get(status.name)?.switch;
        if (plug && switched.get(status.name)) {
          await c.publish(plug.topic, plug.payloadOff, { qos: 1 });
          c.logger.info(`surplus rule ${status.name}: ess stops, switched its load off`);
        }
      }
      ctx = undefined;
    },
    publish,
  };
}
