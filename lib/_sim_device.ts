/**
 * The simulated LG ESS itself: PV inverter, battery and grid meter around a {@link House}, its
 * settings, energy counters and statistics. Its state advances by integrating the power flows
 * from the last update to the clock's `now()` whenever it is looked at, so a fast clock makes
 * a fast day.
 *
 * @module
 */
import type { JsonObject } from "./flatten.ts";
import {
  type CalendarDate,
  CHARGE_STRATEGIES,
  type GraphDevice,
  type GraphSpan,
  type StateName,
} from "./states.ts";
import { House } from "./_sim_house.ts";
import { counter, fixed6, flag, percent, stamp, whole } from "./_sim_format.ts";

/** Which firmware the simulator imitates. */
export type Firmware = "classic" | "new";

/** Peak power of the simulated panels in W. */
export const PV_CAPACITY = 6120;
/** Usable battery energy in Wh (systeminfo reports it as `"98"`, in 0.1 kWh). */
export const BATTERY_WH = 9800;
/** Most the battery charges or discharges with, in W. */
export const BATTERY_MAX_W = 4600;
/** Charge power when the battery charges from the grid (winter mode, backup reserve), in W. */
export const GRID_CHARGE_W = 1500;
/** Least state of charge winter mode keeps, in %. */
export const WINTER_RESERVE = 30;
/** Feed-in is capped at this share of the PV capacity (PCS `feed_in_limitation`). */
const FEED_IN_LIMIT = 0.7;
/** Longest integration step while running live; steps never cross a quarter hour either. */
const LIVE_STEP_MS = 60_000;
/** Integration step for days reconstructed before the simulator ran: one per graph row. */
const HISTORY_STEP_MS = 900_000;
const QUARTER_MS = 900_000;
const DAY_MS = 86_400_000;
/** Days of reconstructed history kept in memory. */
const HISTORY_CACHE_DAYS = 1000;

/** Power flows at one instant in W; every value is a magnitude (zero or more). */
export interface Flows {
  /** What the inverter takes from the panels (less than the sun offers when feed-in is capped). */
  pv: number;
  /** What the house draws. */
  load: number;
  /** Into the battery, from PV and, when {@link Flows.gridCharge} is not 0, from the grid. */
  charge: number;
  /** Out of the battery into the house. */
  discharge: number;
  /** Sold to the grid. */
  feedIn: number;
  /** Bought from the grid, for the house and for grid charging. */
  purchase: number;
  /** PV used by the house directly. */
  direct: number;
  /** The part of {@link Flows.charge} bought from the grid. */
  gridCharge: number;
}

/** Energy in Wh over a quarter hour, a day or a month. */
export interface Energy {
  pv: number;
  feedIn: number;
  purchase: number;
  charge: number;
  discharge: number;
  load: number;
  direct: number;
}

const ENERGY_KEYS = ["pv", "feedIn", "purchase", "charge", "discharge", "load", "direct"] as const;

const noEnergy = (): Energy => ({
  pv: 0,
  feedIn: 0,
  purchase: 0,
  charge: 0,
  discharge: 0,
  load: 0,
  direct: 0,
});

function addFlows(into: Energy, f: Flows, hours: number): void {
  for (const key of ENERGY_KEYS) into[key] += f[key] * hours;
}

function addEnergy(into: Energy, e: Energy): void {
  for (const key of ENERGY_KEYS) into[key] += e[key];
}

/** One quarter hour of statistics: its energy and the state of charge at its end. */
interface Bucket extends Energy {
  soc: number;
}

/** A day's 96 quarter hours; those not (yet) lived are missing. */
type DayRecord = (Bucket | undefined)[];

/** The settings a user can change, in the device's own spelling where it has one. */
interface Settings {
  running: boolean;
  winter: boolean;
  /** `on`/`off` (classic firmware) or `0`/`1`/`2` (newer). */
  alg: string;
  saftySoc: number;
  startdate: string;
  stopdate: string;
  backup: "on" | "off" | "simple";
  backupSoc: number;
  autoCharge: boolean;
}

function defaultSettings(firmware: Firmware): Settings {
  return {
    running: true,
    winter: false,
    alg: firmware === "classic" ? "off" : CHARGE_STRATEGIES["battery-care"],
    saftySoc: 10,
    startdate: "1101",
    stopdate: "0315",
    backup: "off",
    backupSoc: 30,
    autoCharge: false,
  };
}

/** The least state of charge the battery discharges to under these settings. */
function reserveOf(s: Settings): number {
  return Math.max(
    s.saftySoc,
    s.winter ? WINTER_RESERVE : 0,
    s.backup === "off" ? 0 : s.backupSoc,
  );
}

/** The state of charge the battery buys grid power to reach (0: none). */
function gridTargetOf(s: Settings): number {
  return Math.max(
    s.winter ? WINTER_RESERVE : 0,
    s.backup !== "off" && s.autoCharge ? s.backupSoc : 0,
  );
}

/**
 * Most charge power the charge strategy allows: fast charge takes all it can, battery care
 * charges gently, weather forecast holds back in the morning so that the midday peak fills it.
 */
function chargeLimit(alg: string, hour: number): number {
  if (alg === "on" || alg === CHARGE_STRATEGIES["fast-charge"]) return BATTERY_MAX_W;
  if (alg === CHARGE_STRATEGIES["weather-forecast"]) {
    return hour < 11 ? 0.25 * BATTERY_MAX_W : BATTERY_MAX_W;
  }
  return 0.6 * BATTERY_MAX_W;
}

/**
 * The flows at `t` for a battery at `soc` %, over a step of `seconds` (so that the battery
 * never passes 100 % or its reserve within the step). Always balanced:
 * pv + discharge + purchase = load + charge + feedIn.
 */
function flowsAt(house: House, s: Settings, t: Date, soc: number, seconds: number): Flows {
  const load = house.load(t);
  if (!s.running) {
    return {
      pv: 0,
      load,
      charge: 0,
      discharge: 0,
      feedIn: 0,
      purchase: load,
      direct: 0,
      gridCharge: 0,
    };
  }
  const perStep = (percentPoints: number) =>
    Math.max(0, percentPoints) / 100 * BATTERY_WH * 3600 / seconds;
  const maxCharge = Math.min(chargeLimit(s.alg, t.getHours()), perStep(100 - soc));
  const maxDischarge = Math.min(BATTERY_MAX_W, perStep(soc - reserveOf(s)));
  let pv = house.pv(t);
  const direct = Math.min(pv, load);
  const surplus = pv - direct;
  const deficit = load - direct;
  let charge = Math.min(surplus, maxCharge);
  let feedIn = surplus - charge;
  const feedInLimit = FEED_IN_LIMIT * house.pvCapacity;
  if (feedIn > feedInLimit) {
    pv -= feedIn - feedInLimit;
    feedIn = feedInLimit;
  }
  const discharge = Math.min(deficit, maxDischarge);
  let purchase = deficit - discharge;
  let gridCharge = 0;
  if (soc < gridTargetOf(s)) {
    gridCharge = Math.min(GRID_CHARGE_W, Math.max(0, maxCharge - charge));
    charge += gridCharge;
    purchase += gridCharge;
  }
  return { pv, load, charge, discharge, feedIn, purchase, direct, gridCharge };
}

const dayKey = (d: CalendarDate) => d.year * 10000 + d.month * 100 + d.day;

function localDate(year: number, month: number, day: number, hour = 0, minute = 0): Date {
  const d = new Date(2000, 0, 1, hour, minute);
  d.setFullYear(year, month - 1, day);
  return d;
}

function calendarDay(t: Date): CalendarDate {
  return { year: t.getFullYear(), month: t.getMonth() + 1, day: t.getDate() };
}

function addDays(d: CalendarDate, n: number): CalendarDate {
  return calendarDay(localDate(d.year, d.month, d.day + n));
}

function daysInMonth(year: number, month: number): number {
  return localDate(year, month + 1, 0).getDate();
}

/**
 * The quarter hour an instant falls in, and when the next one begins. Reads the time zone once
 * and does the rest in UTC arithmetic (time zone offsets are whole quarter hours).
 */
function quarterAt(t: number): { day: CalendarDate; index: number; next: number } {
  const local = t - new Date(t).getTimezoneOffset() * 60_000;
  const msOfDay = ((local % DAY_MS) + DAY_MS) % DAY_MS;
  const midnight = new Date(local - msOfDay);
  return {
    day: {
      year: midnight.getUTCFullYear(),
      month: midnight.getUTCMonth() + 1,
      day: midnight.getUTCDate(),
    },
    index: Math.floor(msOfDay / QUARTER_MS),
    next: t - (msOfDay % QUARTER_MS) + QUARTER_MS,
  };
}

/**
 * Integrates the flows from `from` to `to` (ms since the epoch) in steps of at most `maxStepMs`
 * that never cross a quarter hour; returns the state of charge at `to`.
 */
function integrate(
  house: House,
  settings: Settings,
  soc: number,
  from: number,
  to: number,
  maxStepMs: number,
  onStep: (day: CalendarDate, quarter: number, flows: Flows, hours: number, soc: number) => void,
): number {
  let t = from;
  while (t < to) {
    const q = quarterAt(t);
    const end = Math.min(to, q.next, t + maxStepMs);
    const seconds = (end - t) / 1000;
    const f = flowsAt(house, settings, new Date((t + end) / 2), soc, seconds);
    soc += (f.charge - f.discharge) * seconds / 3600 / BATTERY_WH * 100;
    soc = Math.min(100, Math.max(0, soc));
    onStep(q.day, q.index, f, seconds / 3600, soc);
    t = end;
  }
  return soc;
}

function recordStep(record: DayRecord, quarter: number, f: Flows, hours: number, soc: number) {
  const bucket = record[quarter] ?? { ...noEnergy(), soc };
  addFlows(bucket, f, hours);
  bucket.soc = soc;
  record[quarter] = bucket;
}

function sumDay(record: DayRecord): Energy {
  const sum = noEnergy();
  for (const bucket of record) if (bucket) addEnergy(sum, bucket);
  return sum;
}

/** Options of {@link SimDevice}. */
export interface SimDeviceOptions {
  firmware: Firmware;
  seed: number;
  now: () => Date;
  /** The registration number, also the mDNS instance name after `LGE_ESS-`. */
  name: string;
}

/**
 * The simulated device. Every look at it (a state, a graph, a getter) first advances it to
 * the clock's `now()`.
 */
export class SimDevice {
  /** Which firmware it imitates. */
  readonly firmware: Firmware;
  /** Registration number (`regnum` in the login answer). */
  readonly name: string;
  readonly #house: House;
  readonly #now: () => Date;
  readonly #settings: Settings;
  #soc: number;
  #time: number;
  #today: { key: number; energy: Energy };
  #month: { key: number; energy: Energy };
  readonly #records = new Map<number, DayRecord>();
  readonly #history = new Map<number, { record: DayRecord; endSoc: number }>();
  #lastTimesync: string | undefined;

  constructor(options: SimDeviceOptions) {
    this.firmware = options.firmware;
    this.name = options.name;
    this.#now = options.now;
    this.#house = new House(options.seed, PV_CAPACITY);
    this.#settings = defaultSettings(options.firmware);
    // Begin at today's midnight with the month so far reconstructed, then live up to now.
    const start = options.now();
    const today = calendarDay(start);
    const yesterday = addDays(today, -1);
    const monthSoFar = noEnergy();
    for (let day = 1; day < today.day; day++) {
      addEnergy(monthSoFar, sumDay(this.#historyDay({ ...today, day }).record));
    }
    this.#soc = this.#historyDay(yesterday).endSoc;
    this.#time = localDate(today.year, today.month, today.day).getTime();
    this.#today = { key: dayKey(today), energy: noEnergy() };
    this.#month = { key: today.year * 100 + today.month, energy: monthSoFar };
    this.#advance(start.getTime());
  }

  /** `"start"` or `"stop"`, as `home.operation.status` shows it. */
  get operation(): "start" | "stop" {
    return this.#settings.running ? "start" : "stop";
  }

  /** Whether winter mode is set. */
  get winterMode(): boolean {
    return this.#settings.winter;
  }

  /** The charge strategy as the device reports it: `on`/`off` (classic) or `0`/`1`/`2`. */
  get algSetting(): string {
    return this.#settings.alg;
  }

  /** Backup mode: `on`, `off` or `simple`. */
  get backupMode(): "on" | "off" | "simple" {
    return this.#settings.backup;
  }

  /** The backup reserve in %. */
  get backupSoc(): number {
    return this.#settings.backupSoc;
  }

  /** Whether the battery may charge from the grid to keep the backup reserve. */
  get autoCharge(): boolean {
    return this.#settings.autoCharge;
  }

  /** The safety reserve (`safty_soc`) in %: the state of charge never goes below it. */
  get safetySoc(): number {
    return this.#settings.saftySoc;
  }

  /** The battery's state of charge now, in %. */
  get soc(): number {
    this.#advance(this.#now().getTime());
    return this.#soc;
  }

  /** The power flows now. */
  get flows(): Flows {
    this.#advance(this.#now().getTime());
    return this.#flowsNow();
  }

  /** Energy since local midnight, in Wh. */
  get today(): Energy {
    this.#advance(this.#now().getTime());
    return { ...this.#today.energy };
  }

  /** Energy since the first of the month, in Wh. */
  get month(): Energy {
    this.#advance(this.#now().getTime());
    return { ...this.#month.energy };
  }

  /** The `date_time` of the last timesync, if any. */
  get lastTimesync(): string | undefined {
    return this.#lastTimesync;
  }

  /** Remembers a timesync (the simulator keeps following its own clock). */
  timesync(dateTime: string): void {
    this.#lastTimesync = dateTime;
  }

  /** A state as the device answers it. */
  read(state: StateName): JsonObject {
    this.#advance(this.#now().getTime());
    switch (state) {
      case "home":
        return this.#home();
      case "common":
        return this.#common();
      case "network":
        return {
          type: "wired",
          setting: "auto",
          ip: "192.168.178.47",
          mask: "255.255.255.0",
          gateway: "192.168.178.1",
          dns: "192.168.178.1",
        };
      case "systeminfo":
        return this.#systeminfo();
      case "batt":
        return this.#batt();
    }
  }

  /** Starts (`"start"`) or stops (`"stop"`) the system; `false` for any other value. */
  operate(value: unknown): boolean {
    if (value !== "start" && value !== "stop") return false;
    this.#advance(this.#now().getTime());
    this.#settings.running = value === "start";
    return true;
  }

  /**
   * Applies a `PUT /v1/user/setting/batt` body: `wintermode`, `alg_setting` (in this firmware's
   * form), `backupmode`, `backup_soc`, `autocharge`, `startdate`/`stopdate`. All or nothing:
   * `false` if any value is wrong or nothing is set.
   */
  changeSettings(body: JsonObject): boolean {
    const next: Settings = { ...this.#settings };
    let changed = false;
    const onOff = (v: unknown) => v === "on" ? true : v === "off" ? false : undefined;
    for (const [key, value] of Object.entries(body)) {
      switch (key) {
        case "wintermode": {
          const on = onOff(value);
          if (on === undefined) return false;
          next.winter = on;
          break;
        }
        case "alg_setting": {
          const allowed = this.firmware === "classic"
            ? ["on", "off"]
            : Object.values(CHARGE_STRATEGIES) as string[];
          if (typeof value !== "string" || !allowed.includes(value)) return false;
          next.alg = value;
          break;
        }
        case "backupmode":
          if (value !== "on" && value !== "off" && value !== "simple") return false;
          next.backup = value;
          break;
        case "backup_soc": {
          const n = typeof value === "string" && /^\d{1,3}$/.test(value) ? Number(value) : NaN;
          if (!(n >= 0 && n <= 100)) return false;
          next.backupSoc = n;
          break;
        }
        case "autocharge":
          if (value !== "0" && value !== "1") return false;
          next.autoCharge = value === "1";
          break;
        case "startdate":
        case "stopdate": {
          if (typeof value !== "string" || !isMonthDay(value)) return false;
          next[key] = value;
          break;
        }
        default:
          continue;
      }
      changed = true;
    }
    if (!changed) return false;
    this.#advance(this.#now().getTime());
    Object.assign(this.#settings, next);
    return true;
  }

  /**
   * A statistics graph for the day, week, month or year named by the request's date field
   * (`year_month_day`, `year_month` or `year`); `undefined` if the field is missing or no
   * date. Past periods have every row; the current one has rows up to now (the last one still
   * filling); later ones have none.
   */
  graph(device: GraphDevice, span: GraphSpan, body: JsonObject): JsonObject | undefined {
    const date = graphDate(span, body);
    if (!date) return undefined;
    const now = this.#now();
    this.#advance(now.getTime());
    const today = calendarDay(now);
    let from: string;
    let to: string;
    let periods: { time: string; energy: Energy; soc?: number }[];
    if (span === "day") {
      const next = addDays(date, 1);
      from = stamp(date.year, date.month, date.day);
      to = stamp(next.year, next.month, next.day);
      const record = this.#dayRecord(date, today);
      periods = [];
      record?.forEach((bucket, i) => {
        if (bucket) {
          const time = stamp(date.year, date.month, date.day, Math.floor(i / 4), (i % 4) * 15);
          periods.push({ time, energy: bucket, soc: bucket.soc });
        }
      });
    } else if (span === "week") {
      const weekday = (localDate(date.year, date.month, date.day).getDay() + 6) % 7;
      const monday = addDays(date, -weekday);
      const sunday = addDays(monday, 6);
      from = stamp(monday.year, monday.month, monday.day);
      to = stamp(sunday.year, sunday.month, sunday.day, 23, 45);
      periods = this.#days(Array.from({ length: 7 }, (_, i) => addDays(monday, i)), today);
    } else if (span === "month") {
      const last = daysInMonth(date.year, date.month);
      from = stamp(date.year, date.month, 1);
      to = stamp(date.year, date.month, last, 23, 45);
      periods = this.#days(
        Array.from({ length: last }, (_, i) => ({ ...date, day: i + 1 })),
        today,
      );
    } else {
      from = stamp(date.year, 1, 1);
      to = stamp(date.year, 12, 31, 23, 45);
      periods = [];
      for (let month = 1; month <= 12; month++) {
        const days = Array.from(
          { length: daysInMonth(date.year, month) },
          (_, i) => ({ year: date.year, month, day: i + 1 }),
        );
        const lived = this.#days(days, today);
        if (lived.length === 0) continue;
        const energy = noEnergy();
        for (const d of lived) addEnergy(energy, d.energy);
        periods.push({ time: stamp(date.year, month, 1), energy });
      }
    }
    return {
      m_timeFrom: from,
      m_timeTo: to,
      db: "success",
      loginfo: graphRows(device, span, periods),
    };
  }

  #advance(to: number): void {
    if (to <= this.#time) return;
    this.#soc = integrate(
      this.#house,
      this.#settings,
      this.#soc,
      this.#time,
      to,
      LIVE_STEP_MS,
      (day, quarter, f, hours, soc) => {
        const key = dayKey(day);
        let record = this.#records.get(key);
        if (!record) this.#records.set(key, record = []);
        recordStep(record, quarter, f, hours, soc);
        if (this.#today.key !== key) this.#today = { key, energy: noEnergy() };
        const month = day.year * 100 + day.month;
        if (this.#month.key !== month) this.#month = { key: month, energy: noEnergy() };
        addFlows(this.#today.energy, f, hours);
        addFlows(this.#month.energy, f, hours);
      },
    );
    this.#time = to;
  }

  #flowsNow(): Flows {
    return flowsAt(this.#house, this.#settings, this.#now(), this.#soc, LIVE_STEP_MS / 1000);
  }

  /** A day as lived, or reconstructed if before the simulator ran; none after today. */
  #dayRecord(day: CalendarDate, today: CalendarDate): DayRecord | undefined {
    const key = dayKey(day);
    if (key > dayKey(today)) return undefined;
    return this.#records.get(key) ?? this.#historyDay(day).record;
  }

  #days(days: CalendarDate[], today: CalendarDate): { time: string; energy: Energy }[] {
    return days.flatMap((day) => {
      const record = this.#dayRecord(day, today);
      return record ? [{ time: stamp(day.year, day.month, day.day), energy: sumDay(record) }] : [];
    });
  }

  /**
   * A day before the simulator ran, reconstructed: the house with default settings from a
   * seeded morning state of charge. The same seed always gives the same history.
   */
  #historyDay(day: CalendarDate): { record: DayRecord; endSoc: number } {
    const key = dayKey(day);
    const cached = this.#history.get(key);
    if (cached) return cached;
    const midnight = localDate(day.year, day.month, day.day);
    const settings = defaultSettings(this.firmware);
    const record: DayRecord = [];
    const next = addDays(day, 1);
    const endSoc = integrate(
      this.#house,
      settings,
      this.#house.startSoc(midnight, reserveOf(settings)),
      midnight.getTime(),
      localDate(next.year, next.month, next.day).getTime(),
      HISTORY_STEP_MS,
      (_day, quarter, f, hours, soc) => recordStep(record, quarter, f, hours, soc),
    );
    if (this.#history.size >= HISTORY_CACHE_DAYS) this.#history.clear();
    this.#history.set(key, { record, endSoc });
    return { record, endSoc };
  }

  #home(): JsonObject {
    const f = this.#flowsNow();
    const s = this.#settings;
    const today = this.#today.energy;
    const battery = Math.max(f.charge, f.discharge);
    return {
      statistics: {
        pcs_pv_total_power: whole(f.pv),
        batconv_power: whole(battery),
        bat_use: flag(s.running),
        bat_status: batteryStatus(f),
        bat_user_soc: percent(this.#soc),
        load_power: whole(f.load),
        load_today: "0.0",
        grid_power: whole(Math.max(f.feedIn, f.purchase)),
        current_day_self_consumption: selfConsumption(today).toFixed(1),
        current_pv_generation_sum: counter(today.pv),
        current_grid_feed_in_energy: counter(today.feedIn),
      },
      direction: {
        is_direct_consuming_: flag(Math.round(f.direct) > 0),
        is_battery_charging_: flag(Math.round(f.charge) > 0),
        is_battery_discharging_: flag(Math.round(f.discharge) > 0),
        is_grid_selling_: flag(Math.round(f.feedIn) > 0),
        is_grid_buying_: flag(Math.round(f.purchase) > 0),
        is_charging_from_grid_: flag(Math.round(f.gridCharge) > 0),
      },
      operation: { status: this.operation, mode: "1" },
      wintermode: { winter_status: s.winter ? "on" : "off" },
      pcs_fault: { pcs_status: "pcs_ok" },
    };
  }

  #common(): JsonObject {
    const now = this.#now();
    const f = this.#flowsNow();
    const s = this.#settings;
    const today = this.#today.energy;
    const month = this.#month.energy;
    const sun = this.#house.pv(now) / PV_CAPACITY;
    const strings = [
      { share: 0.45, volts: sun > 0 ? 190 + 110 * Math.min(1, sun) ** 0.3 : 0 },
      { share: 0.55, volts: sun > 0 ? 240 + 85 * Math.min(1, sun) ** 0.3 : 0 },
    ].map(({ share, volts }) => {
      const power = Math.round(f.pv * share);
      const v = Math.round(volts * 10) / 10;
      return { power, volts: v, amps: v > 0 ? Math.round(power / v * 100) / 100 : 0 };
    });
    const [pv1, pv2] = strings as [typeof strings[0], typeof strings[0]];
    const grid = Math.round(Math.max(f.feedIn, f.purchase) * 100) / 100;
    return {
      PV: {
        brand: "LGE-SOLAR",
        capacity: whole(PV_CAPACITY),
        pv1_voltage: fixed6(pv1.volts),
        pv2_voltage: fixed6(pv2.volts),
        pv1_power: whole(pv1.power),
        pv2_power: whole(pv2.power),
        pv1_current: fixed6(pv1.amps),
        pv2_current: fixed6(pv2.amps),
        today_pv_generation_sum: counter(today.pv),
        today_month_pv_generation_sum: counter(month.pv),
      },
      BATT: {
        status: batteryStatus(f),
        soc: this.#soc.toFixed(1),
        dc_power: whole(Math.max(f.charge, f.discharge)),
        winter_setting: s.winter ? "on" : "off",
        winter_status: s.winter ? "on" : "off",
        safty_soc: whole(s.saftySoc),
        today_batt_discharge_enery: counter(today.discharge),
        today_batt_charge_energy: counter(today.charge),
        month_batt_charge_energy: counter(month.charge),
        month_batt_discharge_energy: counter(month.discharge),
      },
      GRID: {
        active_power: fixed6(grid),
        a_phase: fixed6(this.#house.voltage(now)),
        freq: fixed6(this.#house.frequency(now)),
        today_grid_feed_in_energy: counter(today.feedIn),
        today_grid_power_purchase_energy: counter(today.purchase),
        month_grid_feed_in_energy: counter(month.feedIn),
        month_grid_power_purchase_energy: counter(month.purchase),
      },
      LOAD: {
        load_power: whole(f.load),
        today_load_consumption_sum: counter(today.load),
        today_pv_direct_consumption_enegy: counter(today.direct),
        today_batt_discharge_enery: counter(today.discharge),
        today_grid_power_purchase_energy: counter(today.purchase),
        month_load_consumption_sum: counter(month.load),
        month_pv_direct_consumption_energy: counter(month.direct),
        month_batt_discharge_energy: counter(month.discharge),
        month_grid_power_purchase_energy: counter(month.purchase),
      },
      PCS: {
        today_self_consumption: selfConsumption(today).toFixed(1),
        month_co2_reduction_accum: counter(month.pv * 0.7),
        today_pv_generation_sum: counter(today.pv),
        month_pv_generation_sum: counter(month.pv),
        today_grid_feed_in_energy: counter(today.feedIn),
        month_grid_feed_in_energy: counter(month.feedIn),
        pcs_stauts: s.running ? "3" : "1",
        feed_in_limitation: whole(FEED_IN_LIMIT * 100),
        operation_mode: "0",
      },
    };
  }

  #systeminfo(): JsonObject {
    const classic = this.firmware === "classic";
    return {
      pms: {
        model: "D010KE1N211",
        serialno: `${this.name}S`,
        ac_input_power: "10000",
        ac_output_power: "10",
        install_date: "2021-04-12",
      },
      batt: { capacity: whole(BATTERY_WH / 100), install_date: "2021-04-12" },
      version: {
        pms_version: classic ? "10.05.6210" : "10.05.7421",
        pms_build_date: classic ? "2021-02-17" : "2024-03-05",
        pcs_version: "LG P1 02.00.03.00 R1801",
        bms_version: "LGBMS.01.02.00.00",
        bms_unit1_version: "",
        bms_unit2_version: "",
      },
    };
  }

  #batt(): JsonObject {
    const s = this.#settings;
    return {
      winter_setting: s.winter ? "on" : "off",
      winter_status: s.winter ? "on" : "off",
      alg_setting: s.alg,
      safty_soc: whole(s.saftySoc),
      startdate: s.startdate,
      stopdate: s.stopdate,
      backup_setting: s.backup,
      backup_status: s.backup === "off" ? "off" : "on",
      backup_soc: whole(s.backupSoc),
      auto_charge: flag(s.autoCharge),
    };
  }
}

function batteryStatus(f: Flows): string {
  if (Math.round(f.charge) > 0) return "1";
  if (Math.round(f.discharge) > 0) return "2";
  return "0";
}

/** Share of the PV generation used at home, in %. */
function selfConsumption(e: Energy): number {
  return e.pv > 0 ? Math.max(0, (e.pv - e.feedIn) / e.pv) * 100 : 0;
}

function isMonthDay(text: string): boolean {
  const m = /^(\d\d)(\d\d)$/.exec(text);
  if (!m) return false;
  const month = Number(m[1]);
  const day = Number(m[2]);
  return month >= 1 && month <= 12 && day >= 1 && day <= daysInMonth(2024, month);
}

/** The date a graph request names, if it is a real one. */
function graphDate(span: GraphSpan, body: JsonObject): CalendarDate | undefined {
  const field = span === "day" || span === "week"
    ? body["year_month_day"]
    : span === "month"
    ? body["year_month"]
    : body["year"];
  const digits = span === "day" || span === "week" ? 8 : span === "month" ? 6 : 4;
  if (typeof field !== "string" || !new RegExp(`^\\d{${digits}}$`).test(field)) return undefined;
  const year = Number(field.slice(0, 4));
  const month = digits > 4 ? Number(field.slice(4, 6)) : 1;
  const day = digits > 6 ? Number(field.slice(6, 8)) : 1;
  if (year < 1970 || month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) {
    return undefined;
  }
  return { year, month, day };
}

/** Graph rows as the device sends them: whole Wh, running totals, percentages, `db` index. */
function graphRows(
  device: GraphDevice,
  span: GraphSpan,
  periods: { time: string; energy: Energy; soc?: number }[],
): JsonObject[] {
  let total1 = 0;
  let total2 = 0;
  const share = (part: number, of: number) => percent(of > 0 ? (Math.max(0, part) / of) * 100 : 0);
  return periods.map(({ time, energy, soc }, i) => {
    const [a, b] = device === "pv"
      ? [energy.pv, energy.feedIn]
      : device === "load"
      ? [energy.load, energy.purchase]
      : [energy.charge, energy.discharge];
    const v1 = Math.round(a);
    const v2 = Math.round(b);
    total1 += v1;
    total2 += v2;
    const row: JsonObject = { db: String(i), time };
    if (device === "pv") {
      Object.assign(row, {
        generation: String(v1),
        feed_in: String(v2),
        self_consum: share(v1 - v2, v1),
        total_generation: String(total1),
        // The device spells this field differently in its month graph.
        [span === "month" ? "total_feed_in" : "total_Feed_in"]: String(total2),
      });
    } else if (device === "load") {
      Object.assign(row, {
        consumption: String(v1),
        purchase: String(v2),
        self_suffi: share(v1 - v2, v1),
        total_consumption: String(total1),
        total_purchase: String(total2),
      });
    } else {
      Object.assign(row, {
        charge: String(v1),
        discharge: String(v2),
        total_charge: String(total1),
        total_discharge: String(total2),
      });
      if (soc !== undefined) row["soc"] = percent(soc);
    }
    return row;
  });
}
