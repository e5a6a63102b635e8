/**
 * Prometheus text exposition (format 0.0.4) of the device's latest answers, for `/metrics` of
 * `ess serve`. Every series carries a `serial` label, so several devices can share one
 * Prometheus. Names follow Prometheus's rules: base units (watts, joules, volts, amperes, hertz,
 * seconds, ratios 0..1), and no `_total`: the device's daily and monthly sums go back to zero at
 * midnight and on the first, so they are gauges.
 *
 * @module
 */
import { isJsonObject, type Json, type JsonObject } from "../device/flatten.ts";
import { reportedWordValue, strategyOfAlgSetting } from "../device/vocabulary.ts";

/** What the exposition is made from: the latest answers and the poll status. */
export interface MetricsInput {
  /** The latest answer of each state (`home`, `common`, `batt`, `systeminfo`). */
  states: Readonly<Record<string, JsonObject | undefined>>;
  /** When the last poll succeeded, in ms since the epoch. */
  lastSuccess: number | undefined;
  /** Whether the device counts as reachable. */
  up: boolean | undefined;
}

/** The content type of the exposition. */
export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** How a raw device value becomes a sample value. */
type Convert = (raw: Json, states: MetricsInput["states"]) => number | undefined;

/** One place a metric can read from; the first source with a value wins. */
interface Source {
  /** State and leaf path: `home/statistics/load_power`; array items by index. */
  path: string;
  convert: Convert;
}

/** One metric: its name, its help, its sources, and the labels that tell its series apart. */
interface MetricRow {
  name: string;
  help: string;
  sources: readonly Source[];
  /** Extra labels (besides `serial`), e.g. `{ string: "1" }` for one PV string. */
  labels?: Readonly<Record<string, string>>;
}

/** The leaf at `path` (`home/statistics/load_power`), or `undefined`. */
function leafAt(states: MetricsInput["states"], path: string): Json | undefined {
  let node: Json | undefined = states as unknown as Json;
  for (const key of path.split("/")) {
    if (Array.isArray(node)) node = node[Number(key)];
    else if (isJsonObject(node)) node = Object.hasOwn(node, key) ? node[key] : undefined;
    else return undefined;
  }
  return node;
}

/** A device number (`"26.500000"`, `63.8`); empty text and anything else non-numeric is none. */
function numberOf(raw: Json): number | undefined {
  if (typeof raw === "number") return Number.isFinite(raw) ? raw : undefined;
  if (typeof raw !== "string" || !/^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$/.test(raw)) {
    return undefined;
  }
  const n = Number(raw);
  return Number.isFinite(n) ? n : undefined;
}

/**
 * Twelve significant digits: `63.81944 / 100` is 0.6381944, not 0.6381944000000001. A value
 * that is endless once scaled (1e308 Wh in joules) is none.
 */
const tidy = (n: number) => Number.isFinite(n) ? Number(n.toPrecision(12)) : undefined;

const scaled = (factor: number): Convert => (raw) => {
  const n = numberOf(raw);
  return n === undefined ? undefined : tidy(n * factor);
};

/**
 * A magnitude whose direction the device reports as a `home/direction` flag: negative while
 * the flag is `1`. Taking the magnitude first keeps the sign right whether the firmware sends
 * the value signed or not.
 */
const negativeWhen = (flagPath: string, factor = 1): Convert => (raw, states) => {
  const n = numberOf(raw);
  if (n === undefined) return undefined;
  const flag = leafAt(states, flagPath);
  const negative = flag === "1" || flag === 1;
  return tidy((negative ? -1 : 1) * Math.abs(n) * factor);
};

const word: Convert = (raw) => typeof raw === "string" ? reportedWordValue(raw) : undefined;

const fastCharge: Convert = (raw) => {
  const strategy = strategyOfAlgSetting(raw);
  return strategy === undefined ? undefined : strategy === "fast-charge" ? 1 : 0;
};

const backupOn: Convert = (raw) => raw === "simple" ? 1 : word(raw, {});

const WH_IN_JOULES = 3600;

const src = (path: string, convert: Convert = scaled(1)): Source => ({ path, convert });
const watts = (path: string) => src(path);
/** ESS Home 15 sends powers in 0.1 kW. */
const deciKw = (path: string) => src(path, scaled(100));
const joules = (path: string) => src(path, scaled(WH_IN_JOULES));
const ratio = (path: string) => src(path, scaled(0.01));

const row = (
  name: string,
  help: string,
  sources: readonly Source[],
  labels?: Record<string, string>,
): MetricRow => labels ? { name, help, sources, labels } : { name, help, sources };

const energy = (name: string, what: string, today: string, month: string): MetricRow[] => [
  row(
    `ess_${name}_today_joules`,
    `${what} since local midnight, in joules (a gauge: it goes back to 0 every day).`,
    [joules(today)],
  ),
  row(
    `ess_${name}_month_joules`,
    `${what} since the first of the month, in joules (a gauge: it goes back to 0 every month).`,
    [joules(month)],
  ),
];

/**
 * Every metric ess exports besides `ess_up`, the poll times and `ess_info`, with the device
 * fields it reads (see PROTOCOL.md). Rows of one name follow each other.
 */
const METRIC_TABLE: readonly MetricRow[] = [
  row("ess_pv_power_watts", "Power the PV panels deliver, in watts.", [
    watts("home/statistics/pcs_pv_total_power"),
    deciKw("home/statistics/pv_total_power_01kW"),
  ]),
  row("ess_load_power_watts", "Power the house uses, in watts.", [
    watts("home/statistics/load_power"),
    deciKw("home/statistics/load_power_01kW"),
  ]),
  row(
    "ess_battery_power_watts",
    "Battery power in watts: positive while it discharges into the house, negative while it " +
      "charges.",
    [
      src("home/statistics/batconv_power", negativeWhen("home/direction/is_battery_charging_")),
      src(
        "home/statistics/batt_conv_power_01kW",
        negativeWhen("home/direction/is_battery_charging_", 100),
      ),
    ],
  ),
  row(
    "ess_grid_power_watts",
    "Grid power in watts: positive while the house buys from the grid, negative while it feeds " +
      "in.",
    [
      src("home/statistics/grid_power", negativeWhen("home/direction/is_grid_selling_")),
      src("home/statistics/grid_power_01kW", negativeWhen("home/direction/is_grid_selling_", 100)),
    ],
  ),
  row("ess_battery_soc_ratio", "Battery state of charge, 0 to 1.", [
    ratio("home/statistics/bat_user_soc"),
  ]),
  row(
    "ess_self_consumption_today_ratio",
    "Share of today's PV energy used in the house, 0 to 1.",
    [ratio("home/statistics/current_day_self_consumption")],
  ),
  // ESS Home 15 puts the strings in common/ess[0], voltages in 0.1 V and currents in 0.01 A.
  ...([["power", "watts", 1], ["voltage", "volts", 0.1], ["current", "amperes", 0.01]] as const)
    .flatMap(([quantity, unit, home15]) =>
      [1, 2, 3].map((n) =>
        row(
          `ess_pv_string_${quantity}_${unit}`,
          `PV ${quantity} per string, in ${unit}.`,
          [
            src(`common/PV/pv${n}_${quantity}`),
            src(`common/ess/0/PV/pv${n}_${quantity}`, scaled(home15)),
          ],
          { string: String(n) },
        )
      )
    ),
  row("ess_pv_capacity_watts", "Installed PV peak power, in watts.", [watts("common/PV/capacity")]),
  row("ess_grid_voltage_volts", "Grid voltage (phase A), in volts.", [src("common/GRID/a_phase")]),
  row("ess_grid_frequency_hertz", "Grid frequency, in hertz.", [src("common/GRID/freq")]),
  ...energy(
    "pv_generation",
    "PV energy generated",
    "common/PV/today_pv_generation_sum",
    "common/PV/today_month_pv_generation_sum",
  ),
  ...energy(
    "load_consumption",
    "Energy the house used",
    "common/LOAD/today_load_consumption_sum",
    "common/LOAD/month_load_consumption_sum",
  ),
  ...energy(
    "pv_direct_consumption",
    "PV energy used in the house directly",
    "common/LOAD/today_pv_direct_consumption_enegy",
    "common/LOAD/month_pv_direct_consumption_energy",
  ),
  ...energy(
    "grid_feed_in",
    "Energy fed into the grid",
    "common/GRID/today_grid_feed_in_energy",
    "common/GRID/month_grid_feed_in_energy",
  ),
  ...energy(
    "grid_purchase",
    "Energy bought from the grid",
    "common/GRID/today_grid_power_purchase_energy",
    "common/GRID/month_grid_power_purchase_energy",
  ),
  ...energy(
    "battery_charge",
    "Energy charged into the battery",
    "common/BATT/today_batt_charge_energy",
    "common/BATT/month_batt_charge_energy",
  ),
  ...energy(
    "battery_discharge",
    "Energy discharged from the battery",
    "common/BATT/today_batt_discharge_enery",
    "common/BATT/month_batt_discharge_energy",
  ),
  row("ess_battery_safety_soc_ratio", "The reserve the battery never goes below, 0 to 1.", [
    ratio("common/BATT/safty_soc"),
    ratio("batt/safty_soc"),
  ]),
  row("ess_backup_reserve_ratio", "The backup reserve kept for a power cut, 0 to 1.", [
    ratio("batt/backup_soc"),
  ]),
  row("ess_feed_in_limit_ratio", "Feed-in limit as a share of the PV capacity, 0 to 1.", [
    ratio("common/PCS/feed_in_limitation"),
  ]),
  row("ess_running", "1 while the system runs (operation start), 0 while it is stopped.", [
    src("home/operation/status", word),
  ]),
  row("ess_winter_mode_enabled", "1 when winter mode is set.", [
    src("batt/winter_setting", word),
    src("common/BATT/winter_setting", word),
  ]),
  row("ess_winter_mode_active", "1 while winter mode is in effect (in its season).", [
    src("home/wintermode/winter_status", word),
  ]),
  row("ess_fast_charge_enabled", "1 when the charge strategy is fast charge.", [
    src("batt/alg_setting", fastCharge),
  ]),
  row("ess_backup_mode_enabled", "1 when backup mode is on.", [
    src("batt/backup_setting", backupOn),
    src("batt/backup_status", backupOn),
  ]),
];

/** `\`, `"` and line feeds escaped, as label values need. */
export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

/** `\` and line feeds escaped, as HELP text needs. */
function escapeHelp(text: string): string {
  return text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

function labelText(labels: Readonly<Record<string, string>>): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabelValue(v)}"`);
  return `{${parts.join(",")}}`;
}

/** A device text for a label: at most 128 characters, so a hostile answer cannot bloat it. */
function labelValue(raw: Json | undefined): string | undefined {
  if (typeof raw === "number") return String(raw);
  if (typeof raw !== "string" || raw.trim() === "") return undefined;
  return raw.trim().slice(0, 128);
}

/** The device's serial number from `systeminfo` (Home 8/10 or Home 15), or `unknown`. */
function deviceSerial(states: MetricsInput["states"]): string {
  return labelValue(leafAt(states, "systeminfo/pms/serialno")) ??
    labelValue(leafAt(states, "systeminfo/ess/0/serialno")) ?? "unknown";
}

function infoLabels(states: MetricsInput["states"], serial: string): Record<string, string> {
  const labels: Record<string, string> = { serial };
  const fields: [string, string[]][] = [
    ["model", ["systeminfo/pms/model", "systeminfo/ess/0/model"]],
    ["pms_version", ["systeminfo/version/pms_version", "systeminfo/ess/0/version"]],
    ["pcs_version", ["systeminfo/version/pcs_version"]],
    ["bms_version", ["systeminfo/version/bms_version"]],
  ];
  for (const [label, paths] of fields) {
    const value = paths.map((p) => labelValue(leafAt(states, p))).find((v) => v !== undefined);
    if (value !== undefined) labels[label] = value;
  }
  return labels;
}

/** The value of a row: the first of its sources that has one. */
function valueOf(metric: MetricRow, states: MetricsInput["states"]): number | undefined {
  for (const source of metric.sources) {
    const raw = leafAt(states, source.path);
    if (raw === undefined) continue;
    const value = source.convert(raw, states);
    if (value !== undefined) return value;
  }
  return undefined;
}

/**
 * The main figures for the dashboard and `/api/state`: the value of every metric without extra
 * labels, named without `ess_` (`pv_power_watts`, `battery_soc_ratio`).
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * const states = { home: { statistics: { grid_power: "300" }, direction: { is_grid_selling_: "1" } } };
 * deepEqual(summaryValues(states), { grid_power_watts: -300 });
 * ```
 */
export function summaryValues(states: MetricsInput["states"]): Record<string, number> {
  const summary: Record<string, number> = {};
  for (const metric of METRIC_TABLE) {
    if (metric.labels) continue;
    const value = valueOf(metric, states);
    if (value !== undefined) summary[metric.name.replace(/^ess_/, "")] = value;
  }
  return summary;
}

/**
 * The exposition text for the latest answers at time `now` (ms since the epoch). Values that
 * are missing, empty or not numbers leave their sample out; a metric with no sample is left out
 * whole.
 *
 * @example
 * ```ts
 * import { match } from "node:assert/strict";
 * const text = renderMetrics({
 *   states: {
 *     home: { statistics: { pcs_pv_total_power: "2174" } },
 *     systeminfo: { pms: { serialno: "ESS0001", model: "LG ESS Home 10" } },
 *   },
 *   lastSuccess: 1_750_000_000_000,
 *   up: true,
 * }, 1_750_000_002_500);
 * match(text, /^ess_up\{serial="ESS0001"\} 1$/m);
 * match(text, /^ess_pv_power_watts\{serial="ESS0001"\} 2174$/m);
 * match(text, /^ess_last_success_age_seconds\{serial="ESS0001"\} 2.5$/m);
 * ```
 */
export function renderMetrics(input: MetricsInput, now: number): string {
  const { states } = input;
  const serial = deviceSerial(states);
  const base = { serial };
  const out: string[] = [];
  const family = (name: string, help: string, samples: [Record<string, string>, number][]) => {
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
  if (states["systeminfo"] === undefined) return out.join("\n") + "\n";
  family("ess_info", "The device's model and firmware versions; the value is always 1.", [
    [infoLabels(states, serial), 1],
  ]);
  for (let i = 0; i < METRIC_TABLE.length;) {
    const first = METRIC_TABLE[i]!;
    const samples: [Record<string, string>, number][] = [];
    for (; i < METRIC_TABLE.length && METRIC_TABLE[i]!.name === first.name; i++) {
      const metric = METRIC_TABLE[i]!;
      const value = valueOf(metric, states);
      if (value !== undefined) samples.push([{ ...base, ...metric.labels }, value]);
    }
    family(first.name, first.help, samples);
  }
  return out.join("\n") + "\n";
}
