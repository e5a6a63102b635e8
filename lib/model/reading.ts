/**
 * The normalised reading: what one poll of any LG ESS model means, in SI units and words, the
 * same on every family. The model layer (`lib/model/`) makes it from the raw answers; every
 * output (Home Assistant, the dashboard, `/metrics`, `/api/state`, `ess data --format reading`,
 * the MQTT reading topics, the control read-back, the surplus) reads it and nothing else.
 *
 * A field the model does not report is absent, never zero and never guessed.
 *
 * @module
 */

/** The device families ess tells apart, by the shape of their answers. */
export type Family =
  /** ESS Home 8/10, older firmware: strings, W, Wh, `alg_setting` as `on`/`off`. */
  | "home10-classic"
  /** ESS Home 8/10, newer firmware: strings, W, Wh, `alg_setting` as digits or words. */
  | "home10-new"
  /** ESS Home 15: JSON numbers, 0.1 kW / 0.1 V / 0.1 Hz / 0.01 A, `ess[]` units, per-phase grid. */
  | "home15"
  /** ESS Home 5. */
  | "home5"
  /** An answer ess does not recognise: published raw, with one warning, never with a unit. */
  | "unknown";

/** A device code as a word: `{ code: "1", word: "charging" }`; unknown codes say `unknown (7)`. */
export interface CodeWord {
  /** The code exactly as the device sent it, as text. */
  code: string;
  /** Its meaning as other LG ESS projects worked it out, or `unknown (<code>)`. */
  word: string;
}

/** The charge strategies, as ess names them on every firmware. */
export type ChargeStrategy = "battery-care" | "fast-charge" | "weather-forecast";

/** One PV string (MPP tracker input). */
export interface PvString {
  /** 1-based, as the device numbers them (`pv1`, `pv[0]` → 1). */
  index: number;
  powerW?: number;
  voltageV?: number;
  currentA?: number;
}

/** One grid phase (Home 15 reports three; Home 8/10 only phase A's voltage). */
export interface GridPhase {
  /** `a`, `b` or `c`. */
  phase: "a" | "b" | "c";
  voltageV?: number;
  /** Positive while buying, negative while feeding in. */
  powerW?: number;
}

/** An energy counter's two periods, in Wh. */
export interface EnergyCounter {
  /** Since local midnight. */
  todayWh?: number;
  /** Since the first of the month. */
  monthWh?: number;
  /**
   * Where the figures come from: the live answer (`device`), the device's graph endpoints
   * (`graph`), or ess integrating the polled power (`integrated`).
   */
  source: "device" | "graph" | "integrated";
}

/** The energy counters ess knows. */
export type EnergyName =
  | "pvGeneration"
  | "loadConsumption"
  | "pvDirectConsumption"
  | "gridFeedIn"
  | "gridPurchase"
  | "batteryCharge"
  | "batteryDischarge";

/** One poll of one device, normalised. */
export interface Reading {
  family: Family;
  /** The model code (`D015KE1N212`), where systeminfo gave it. */
  model?: string;
  serial?: string;

  /** Live power flows in W. Signs are the same on every model. */
  power: {
    /** What the PV panels deliver (≥ 0). */
    pvW?: number;
    /** What the house uses (≥ 0). */
    loadW?: number;
    /** Positive while the battery discharges, negative while it charges. */
    batteryW?: number;
    /** Positive while buying from the grid, negative while feeding in. */
    gridW?: number;
  };

  /** Battery state of charge, 0–100 %. */
  socPct?: number;

  pvStrings: PvString[];

  grid: {
    frequencyHz?: number;
    phases: GridPhase[];
  };

  /** Energy counters where the model has them (or ess derives them: see `source`). */
  energy: Partial<Record<EnergyName, EnergyCounter>>;

  /** Today's share of PV energy used in the house, 0–100 %. */
  selfConsumptionTodayPct?: number;

  /** States and modes as words. */
  status: {
    /** Whether the system runs (`operation: start`). */
    running?: boolean;
    operatingMode?: CodeWord;
    inverterStatus?: CodeWord;
    batteryStatus?: CodeWord;
    /** Winter mode in effect now (in its season). */
    winterActive?: boolean;
    batteryCharging?: boolean;
    gridSelling?: boolean;
  };

  /** The settings the user can change, read back in ess's words. */
  settings: {
    winterMode?: boolean;
    chargeStrategy?: ChargeStrategy;
    /** The strategies this firmware accepts, in ess's words. */
    chargeStrategies?: readonly ChargeStrategy[];
    backupMode?: boolean;
    /** Whether the battery may charge from the grid to keep the reserve. */
    gridCharge?: boolean;
    /** The reserve the battery never goes below (`safty_soc`, `safety_soc`, `reserved_soc`). */
    reservePct?: number;
    backupReservePct?: number;
    winterReservePct?: number;
    feedInLimitPct?: number;
    /** Winter season as `MMDD`. */
    winterStart?: string;
    winterStop?: string;
  };

  /** Installed PV peak power in W. */
  pvCapacityW?: number;

  versions: { pms?: string; pcs?: string; bms?: string };

  /** Raw paths (`common/LOAD/awhp`) ess read but does not understand: published raw only. */
  unknownFields: string[];
}
