/**
 * The surplus as the server shows it: the `surplus` member of `/api/state` (and of each SSE
 * `state` event, which the dashboard draws), and its `/metrics` series.
 *
 * @module
 */
import type { SurplusEngine } from "./engine.ts";
import type { RuleReason } from "./rule.ts";
import { RULE_FIELDS } from "./rule.ts";

/** One rule in `/api/state`. */
export interface RuleDocument {
  name: string;
  on: boolean;
  reason: RuleReason;
  why: string;
  /** The surplus the rule compared, with its load added back while on; W. */
  availableWatts: number | null;
  /** When it last switched (ISO 8601), or `null`: not since ess started. */
  changedAt: string | null;
  /** Its numbers, in the config file's words (`on-watts`). */
  settings: Record<string, number>;
  /** The MQTT topic ess switches it on, if any. */
  switchTopic: string | null;
}

/** The `surplus` member of `/api/state`. */
export interface SurplusDocument {
  /** The averaged surplus in W; `null` while unknown. */
  watts: number | null;
  /** The latest poll's own surplus in W; `null` when it had none. */
  instantWatts: number | null;
  /** Whether the surplus has been unknown past the grace period, so every rule is off. */
  failSafe: boolean;
  prioritySoc: number;
  reserveWatts: number;
  windowSeconds: number;
  rules: RuleDocument[];
}

const rounded = (w: number | undefined) => w === undefined ? null : Math.round(w);

/**
 * The engine's state as a document.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { SurplusEngine } from "./engine.ts";
 * const engine = new SurplusEngine({
 *   surplus: { prioritySocPct: 80, reserveW: 100, windowMs: 60_000 },
 *   rules: [],
 *   graceMs: 30_000,
 * });
 * engine.update(0, { power: { gridW: -600 } });
 * equal(surplusDocument(engine).watts, 500);
 * ```
 */
export function surplusDocument(engine: SurplusEngine): SurplusDocument {
  const { state, settings } = engine;
  const rules = engine.rules;
  return {
    watts: rounded(state.powerW),
    instantWatts: rounded(state.instantW),
    failSafe: state.failSafe,
    prioritySoc: settings.prioritySocPct,
    reserveWatts: settings.reserveW,
    windowSeconds: settings.windowMs / 1000,
    rules: state.rules.map((status) => {
      const rule = rules.find((r) => r.name === status.name)!;
      return {
        name: status.name,
        on: status.on,
        reason: status.reason,
        why: status.why,
        availableWatts: rounded(status.availableW),
        changedAt: status.changedAt === undefined ? null : new Date(status.changedAt).toISOString(),
        settings: Object.fromEntries(RULE_FIELDS.map((f) => [f.key, rule[f.prop]])),
        switchTopic: rule.switch?.topic ?? null,
      };
    }),
  };
}

const documents = new WeakMap<object, SurplusDocument>();

/**
 * {@link surplusDocument}, made once per engine update: the server caches per document, and
 * compares them by identity.
 */
export function latestSurplusDocument(engine: SurplusEngine): SurplusDocument {
  let doc = documents.get(engine.state);
  if (doc === undefined) {
    doc = surplusDocument(engine);
    documents.set(engine.state, doc);
  }
  return doc;
}

/**
 * The surplus's metric families in Prometheus's text format, each sample with `labels` (the
 * device's `serial="…"`, already escaped) and, per rule, `rule="<name>"` (rule names need no
 * escaping). `ess_surplus_watts` is left out while the surplus is unknown.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * const doc = {
 *   watts: 1200, instantWatts: 1100, failSafe: false, prioritySoc: 80, reserveWatts: 100,
 *   windowSeconds: 60, rules: [],
 * };
 * deepEqual(surplusMetricLines(doc, 'serial="S1"').slice(2), ['ess_surplus_watts{serial="S1"} 1200']);
 * ```
 */
export function surplusMetricLines(doc: SurplusDocument, labels: string): string[] {
  const out: string[] = [];
  const family = (name: string, help: string, samples: [string, number][]) => {
    if (samples.length === 0) return;
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`);
    for (const [extra, value] of samples) out.push(`${name}{${labels}${extra}} ${value}`);
  };
  family(
    "ess_surplus_watts",
    "Spare power for switched loads, averaged: export, plus charging above the priority SoC, minus the reserve.",
    doc.watts === null ? [] : [["", doc.watts]],
  );
  family(
    "ess_surplus_rule_on",
    "1 while a surplus rule is on, 0 while it is off.",
    doc.rules.map((r) => [`,rule="${r.name}"`, r.on ? 1 : 0]),
  );
  family(
    "ess_surplus_rule_available_watts",
    "The surplus a rule compares with its thresholds: its own load added back while it is on.",
    doc.rules.filter((r) => r.availableWatts !== null).map((r) => [
      `,rule="${r.name}"`,
      r.availableWatts!,
    ]),
  );
  return out;
}
