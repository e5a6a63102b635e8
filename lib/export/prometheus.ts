/**
 * Prometheus text exposition (format 0.0.4) of the device's latest normalised reading, for
 * `/metrics` of `ess serve`. Every model gets the same metric names; a figure the model does not
 * report has no sample. Every series carries a `serial` label, so several devices can share one
 * Prometheus. Names follow Prometheus's rules: base units (watts, joules, volts, amperes, hertz,
 * seconds, ratios 0..1), and no `_total`: the device's daily and monthly sums go back to zero at
 * midnight and on the first, so they are gauges.
 *
 * @module
 */
import type { JsonObject } from "../device/flatten.ts";
import type { EnergyName, Reading } from "../model/reading.ts";
import { type SurplusDocument, surplusMetricLines } from "../surplus/report.ts";

/** What the exposition is made from: the latest reading and the poll status. */
export interface MetricsInput {
  /** The latest answer of each state; only whether `systeminfo` was read matters here. */
  states: Readonly<Record<string, JsonObject | undefined>>;
  /** The latest answers, normalised; `undefined` before the first poll. */
  reading?: Reading | undefined;
  /** When the last poll succeeded, in ms since the epoch. */
  lastSuccess: number | undefined;
  /** Whether the device counts as reachable. */
  up: boolean | undefined;
  /** The surplus and its rules, where ess computes them. */
  surplus?: SurplusDocument | undefined;
}

/** The content type of the exposition. */
export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** Labels of one sample besides `serial`. */
type Labels = Readonly<Record<string, string>>;

/** One metric: its name, its help, and its samples in a reading. */
interface MetricRow {
  name: string;
  help: string;
  samples(r: Reading): [Labels, number][];
}

/**
 * Twelve significant digits: `63.81944 / 100` is 0.6381944, not 0.6381944000000001. A value
 * that is endless (or becomes so in base units: 1e308 Wh in joules) is none.
 */
function tidy(n: number | undefined): number | undefined {
  return n !== undefined && Number.isFinite(n) ? Number(n.toPrecision(12)) : undefined;
}

const scale = (n: number | undefined, factor: number) => n === undefined ? n : n * factor;
const flag = (b: boolean | undefined) => b === undefined ? undefined : b ? 1 : 0;

/** A metric without labels of its own. */
function one(name: string, help: string, value: (r: Reading) => number | undefined): MetricRow {
  return {
    name,
    help,
    samples(r) {
      const v = tidy(value(r));
      return v === undefined ? [] : [[{}, v]];
    },
  };
}

/** A metric with one sample per item of a list, told apart by `label`. */
function each<T>(
  name: string,
  help: string,
  items: (r: Reading) => readonly T[],
  label: (item: T) => Labels,
  value: (item: T, r: Reading) => number | undefined,
): MetricRow {
  return {
    name,
    help,
    samples: (r) =>
      items(r).flatMap((item) => {
        const v = tidy(value(item, r));
        return v === undefined ? [] : [[label(item), v] as [Labels, number]];
      }),
  };
}

const WH_IN_JOULES = 3600;

/** The energy counters and the names of their metrics, in the order of the exposition. */
const ENERGY_METRICS: readonly [EnergyName, string, string][] = [
  ["pvGeneration", "pv_generation", "PV energy generated"],
  ["loadConsumption", "load_consumption", "Energy the house used"],
  ["pvDirectConsumption", "pv_direct_consumption", "PV energy used in the house directly"],
  ["gridFeedIn", "grid_feed_in", "Energy fed into the grid"],
  ["gridPurchase", "grid_purchase", "Energy bought from the grid"],
  ["batteryCharge", "battery_charge", "Energy charged into the battery"],
  ["batteryDischarge", "battery_discharge", "Energy discharged from the battery"],
];

/** Every metric ess exports besides `ess_up`, the poll times and `ess_info`. */
const METRIC_TABLE: readonly MetricRow[] = [
  one("ess_pv_power_watts", "Power the PV panels deliver, in watts.", (r) => r.power.pvW),
  one("ess_load_power_watts", "Power the house uses, in watts.", (r) => r.power.loadW),
  one(
    "ess_battery_power_watts",
    "Battery power in watts: positive while it discharges into the house, negative while it " +
      "charges.",
    (r) => r.power.batteryW,
  ),
  one(
    "ess_grid_power_watts",
    "Grid power in watts: positive while the house buys from the grid, negative while it feeds " +
      "in.",
    (r) => r.power.gridW,
  ),
  one("ess_battery_soc_ratio", "Battery state of charge, 0 to 1.", (r) => scale(r.socPct, 0.01)),
  one(
    "ess_self_consumption_today_ratio",
    "Share of today's PV energy used in the house, 0 to 1.",
    (r) => scale(r.selfConsumptionTodayPct, 0.01),
  ),
  ...([["power", "watts", "powerW"], ["voltage", "volts", "voltageV"], [
    "current",
    "amperes",
    "currentA",
  ]] as const).map(([quantity, unit, key]) =>
    each(
      `ess_pv_string_${quantity}_${unit}`,
      `PV ${quantity} per string, in ${unit}.`,
      (r) => r.pvStrings,
      (s) => ({ string: String(s.index) }),
      (s) => s[key],
    )
  ),
  one("ess_pv_capacity_watts", "Installed PV peak power, in watts.", (r) => r.pvCapacityW),
  each(
    "ess_grid_voltage_volts",
    "Grid voltage per phase, in volts.",
    (r) => r.grid.phases,
    (p) => ({ phase: p.phase }),
    (p) => p.voltageV,
  ),
  each(
    "ess_grid_phase_power_watts",
    "Grid power per phase in watts: positive while buying, negative while feeding in.",
    (r) => r.grid.phases,
    (p) => ({ phase: p.phase }),
    (p) => p.powerW,
  ),
  one("ess_grid_frequency_hertz", "Grid frequency, in hertz.", (r) => r.grid.frequencyHz),
  ...ENERGY_METRICS.flatMap(([key, name, what]) => [
    one(
      `ess_${name}_today_joules`,
      `${what} since local midnight, in joules (a gauge: it goes back to 0 every day).`,
      (r) => scale(r.energy[key]?.todayWh, WH_IN_JOULES),
    ),
    one(
      `ess_${name}_month_joules`,
      `${what} since the first of the month, in joules (a gauge: it goes back to 0 every month).`,
      (r) => scale(r.energy[key]?.monthWh, WH_IN_JOULES),
    ),
  ]),
  one(
    "ess_battery_safety_soc_ratio",
    "The reserve the battery never goes below, 0 to 1.",
    (r) => scale(r.settings.reservePct, 0.01),
  ),
  one(
    "ess_backup_reserve_ratio",
    "The backup reserve kept for a power cut, 0 to 1.",
    (r) => scale(r.settings.backupReservePct, 0.01),
  ),
  one(
    "ess_winter_reserve_ratio",
    "The reserve kept while winter mode is in effect, 0 to 1.",
    (r) => scale(r.settings.winterReservePct, 0.01),
  ),
  one(
    "ess_feed_in_limit_ratio",
    "Feed-in limit as a share of the PV capacity, 0 to 1.",
    (r) => scale(r.settings.feedInLimitPct, 0.01),
  ),
  one(
    "ess_running",
    "1 while the system runs (operation start), 0 while it is stopped.",
    (r) => flag(r.status.running),
  ),
  one("ess_winter_mode_enabled", "1 when winter mode is set.", (r) => flag(r.settings.winterMode)),
  one(
    "ess_winter_mode_active",
    "1 while winter mode is in effect (in its season).",
    (r) => flag(r.status.winterActive),
  ),
  one(
    "ess_fast_charge_enabled",
    "1 when the charge strategy is fast charge.",
    (r) =>
      r.settings.chargeStrategy === undefined
        ? undefined
        : flag(r.settings.chargeStrategy === "fast-charge"),
  ),
  each(
    "ess_charge_strategy",
    "1 for the charge strategy set, 0 for the others this firmware accepts.",
    (r) => r.settings.chargeStrategy === undefined ? [] : r.settings.chargeStrategies ?? [],
    (strategy) => ({ strategy }),
    (strategy, r) => strategy === r.settings.chargeStrategy ? 1 : 0,
  ),
  one("ess_backup_mode_enabled", "1 when backup mode is on.", (r) => flag(r.settings.backupMode)),
  one(
    "ess_grid_charge_enabled",
    "1 when the battery may charge from the grid to keep its reserve.",
    (r) => flag(r.settings.gridCharge),
  ),
];

/** `\`, `"` and line feeds escaped, as label values need. */
export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

/** `\` and line feeds escaped, as HELP text needs. */
function escapeHelp(text: string): string {
  return text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

function labelText(labels: Labels): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabelValue(v)}"`);
  return `{${parts.join(",")}}`;
}

/** A device text for a label: at most 128 characters, so a hostile answer cannot bloat it. */
function labelValue(raw: string | undefined): string | undefined {
  if (raw === undefined || raw.trim() === "") return undefined;
  return raw.trim().slice(0, 128);
}

function infoLabels(r: Reading | undefined, base: Labels): Record<string, string> {
  const labels: Record<string, string> = { ...base };
  const fields: [string, string | undefined][] = [
    ["model", r?.model],
    ["family", r?.family],
    ["pms_version", r?.versions.pms],
    ["pcs_version", r?.versions.pcs],
    ["bms_version", r?.versions.bms],
  ];
  for (const [label, raw] of fields) {
    const value = labelValue(raw);
    if (value !== undefined) labels[label] = value;
  }
  return labels;
}

/**
 * The main figures for `/api/state`: the value of every metric without labels of its own, named
 * without `ess_` (`pv_power_watts`, `battery_soc_ratio`).
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import type { Reading } from "../model/reading.ts";
 * const reading: Reading = {
 *   family: "home10-classic", power: { gridW: -300 }, pvStrings: [], grid: { phases: [] },
 *   energy: {}, status: {}, settings: {}, versions: {}, unknownFields: [],
 * };
 * deepEqual(summaryValues(reading), { grid_power_watts: -300 });
 * ```
 */
export function summaryValues(reading: Reading): Record<string, number> {
  const summary: Record<string, number> = {};
  for (const metric of METRIC_TABLE) {
    const samples = metric.samples(reading);
    const [only] = samples;
    if (samples.length === 1 && only && Object.keys(only[0]).length === 0) {
      summary[metric.name.replace(/^ess_/, "")] = only[1];
    }
  }
  return summary;
}

/**
 * The exposition text for the latest reading at time `now` (ms since the epoch). A figure the
 * reading does not have leaves its sample out; a metric with no sample is left out whole.
 * `labels` go on every series before `serial` (the `device` of a site, see
 * {@link renderSiteMetrics}).
 *
 * @example
 * ```ts
 * import { match } from "node:assert/strict";
 * import type { Reading } from "../model/reading.ts";
 * const reading: Reading = {
 *   family: "home10-classic", model: "LG ESS Home 10", serial: "ESS0001",
 *   power: { pvW: 2174 }, pvStrings: [], grid: { phases: [] },
 *   energy: {}, status: {}, settings: {}, versions: {}, unknownFields: [],
 * };
 * const text = renderMetrics({
 *   states: { systeminfo: {} },
 *   reading,
 *   lastSuccess: 1_750_000_000_000,
 *   up: true,
 * }, 1_750_000_002_500);
 * match(text, /^ess_up\{serial="ESS0001"\} 1$/m);
 * match(text, /^ess_pv_power_watts\{serial="ESS0001"\} 2174$/m);
 * match(text, /^ess_last_success_age_seconds\{serial="ESS0001"\} 2.5$/m);
 * ```
 */
export function renderMetrics(input: MetricsInput, now: number, labels: Labels = {}): string {
  const { reading } = input;
  const serial = labelValue(reading?.serial) ?? "unknown";
  const base = { ...labels, serial };
  const out: string[] = [];
  const family = (name: string, help: string, samples: [Labels, number][]) => {
    if (samples.length === 0) return;
    out.push(`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} gauge`);
    for (const [labels, value] of samples) out.push(`${name}${labelText(labels)} ${value}`);
  };
  family("ess_up", "1 if the device answered the last polls, 0 if it cannot be reached.", [
    [base, input.up === true ? 1 : 0],
  ]);
  if (input.lastSuccess !== undefined) {
    family(
      "ess_last_success_timestamp_seconds",
      "When the device last answered a poll, in seconds since the epoch.",
      [[base, input.lastSuccess / 1000]],
    );
    family(
      "ess_last_success_age_seconds",
      "How long ago the device last answered a poll, in seconds.",
      [[base, Math.max(0, now - input.lastSuccess) / 1000]],
    );
  }
  // The device's own series wait for systeminfo, which names the serial they carry: sent
  // before it with serial="unknown", each would split into two series a moment later.
  if (input.states["systeminfo"] === undefined || reading === undefined) {
    return out.join("\n") + "\n";
  }
  family("ess_info", "The device's model, family and firmware versions; the value is always 1.", [
    [infoLabels(reading, base), 1],
  ]);
  for (const metric of METRIC_TABLE) {
    family(
      metric.name,
      metric.help,
      metric.samples(reading).map(([labels, value]) => [{ ...base, ...labels }, value]),
    );
  }
  if (input.surplus) out.push(...surplusMetricLines(input.surplus, labelText(base).slice(1, -1)));
  return out.join("\n") + "\n";
}

/** The metric family a line of an exposition belongs to: its sample's name, or the one its `# HELP` or `# TYPE` names. */
function familyOf(line: string): string {
  const comment = /^# (?:HELP|TYPE) (\S+)/.exec(line);
  return comment ? comment[1]! : line.slice(0, line.search(/[{ ]/));
}

/**
 * Several expositions as one: each family's `# HELP` and `# TYPE` once, then the samples of
 * every text in order, as the format wants a family's samples together. The families come in
 * the order they first appear.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * const a = '# HELP ess_up Up.\n# TYPE ess_up gauge\ness_up{device="a"} 1\n';
 * const b = '# HELP ess_up Up.\n# TYPE ess_up gauge\ness_up{device="b"} 0\n';
 * equal(mergeExpositions([a, b]), '# HELP ess_up Up.\n# TYPE ess_up gauge\ness_up{device="a"} 1\ness_up{device="b"} 0\n');
 * ```
 */
export function mergeExpositions(texts: readonly string[]): string {
  const families = new Map<string, { head: string[]; samples: string[] }>();
  for (const text of texts) {
    for (const line of text.split("\n")) {
      if (line === "") continue;
      const name = familyOf(line);
      let family = families.get(name);
      if (!family) families.set(name, family = { head: [], samples: [] });
      if (!line.startsWith("# ")) family.samples.push(line);
      else if (!family.head.includes(line)) family.head.push(line);
    }
  }
  return [...families.values()].flatMap((f) => [...f.head, ...f.samples]).join("\n") + "\n";
}

/**
 * The exposition of a site's devices, each one's series with a `device` label (its
 * `[device NAME]`) besides `serial`, and the site's surplus, where ess computes one, as
 * `ess_site_surplus_…`. The site's power is not summed here: `sum(ess_pv_power_watts)` does it
 * in Prometheus, and a summed series in the same family would be counted twice.
 *
 * @example
 * ```ts
 * import { match } from "node:assert/strict";
 * const text = renderSiteMetrics([
 *   ["garage", { states: {}, lastSuccess: undefined, up: true }],
 *   ["house", { states: {}, lastSuccess: undefined, up: false }],
 * ], undefined, 0);
 * match(text, /^ess_up\{device="garage",serial="unknown"\} 1\ness_up\{device="house",serial="unknown"\} 0$/m);
 * ```
 */
export function renderSiteMetrics(
  devices: readonly (readonly [name: string, input: MetricsInput])[],
  surplus: SurplusDocument | undefined,
  now: number,
): string {
  const texts = devices.map(([device, input]) => renderMetrics(input, now, { device }));
  if (surplus) {
    texts.push(
      surplusMetricLines(surplus, 'scope="site"')
        .map((line) => line.replace(/^((?:# (?:HELP|TYPE) )?ess_)surplus_/, "$1site_surplus_"))
        .join("\n"),
    );
  }
  return mergeExpositions(texts);
}
