/**
 * The simulated LG ESS itself: PV inverter, battery and grid meter around a {@link House}, its
 * settings, energy counters and statistics. Its state advances by integrating the power flows
 * from the last update to the clock's `now()` whenever it is looked at, so a fast clock makes
 * a fast day.
 *
 * @module
 */
import type { JsonObject } from "../device/flatten.ts";
import {
  type CalendarDate,
  type GraphDevice,
  type GraphSpan,
  type StateName,
} from "../device/states.ts";
import { algSettingFor, CHARGE_STRATEGIES, CHARGE_STRATEGY_OPTIONS } from "../device/vocabulary.ts";
import { shapeAnswer } from "./_shapes.ts";
import { House } from "./_house.ts";
import { counter, fixed6, flag, percent, stamp, whole } from "./_format.ts";
import {
  addDays,
  addEnergy,
  addFlows,
  algFormOf,
  BATTERY_WH,
  batteryStatus,
  calendarDay,
  dayKey,
  type DayRecord,
  daysInMonth,
  defaultSettings,
  type Energy,
  FEED_IN_LIMIT,
  type Firmware,
  type Flows,
  flowsAt,
  graphDate,
  graphRows,
  HISTORY_CACHE_DAYS,
  HISTORY_STEP_MS,
  integrate,
  isMonthDay,
  LIVE_STEP_MS,
  localDate,
  noEnergy,
  PV_CAPACITY,
  quarterAt,
  recordStep,
  reserveOf,
  selfConsumption,
  type Settings,
  type SimModel,
  sumDay,
} from "./_model.ts";

/** Options of {@link SimDevice}. */
export interface SimDeviceOptions {
  /** Which firmware it imitates. */
  firmware: Firmware;
  /** Which model's answers it gives (default `home10`). */
  model?: SimModel | undefined;
  /** Seed of the weather, the household and the history. */
  seed: number;
  /** The clock it lives by. */
  now: () => Date;
  /** The registration number, also the mDNS instance name after `LGE_ESS-`. */
  name: string;
  /** Peak power of its panels in W (default {@link PV_CAPACITY}). */
  pvCapacityW?: number | undefined;
  /** Its household's draw relative to the usual one (default 1). */
  loadScale?: number | undefined;
}

/**
 * The simulated device. Every look at it (a state, a graph, a getter) first advances it to
 * the clock's `now()`.
 */
export class SimDevice {
  /** Which firmware it imitates. */
  readonly firmware: Firmware;
  /** Which model's answers it gives. */
  readonly model: SimModel;
  /** Registration number (`regnum` in the login answer). */
  readonly name: string;
  readonly #house: House;
  readonly #now: () => Date;
  readonly #settings: Settings;
  #soc: number;
  #time: number;
  #today: { key: number; energy: Energy };
  #month: { key: number; energy: Energy };
  /** The day the simulator started; it lived every day since. */
  readonly #firstDay: number;
  readonly #records = new Map<number, DayRecord>();
  readonly #history = new Map<number, { record: DayRecord; endSoc: number }>();
  #lastTimesync: string | undefined;

  /** Starts the device at today's midnight and lives it up to `now()`. */
  constructor(options: SimDeviceOptions) {
    this.firmware = options.firmware;
    this.model = options.model ?? "home10";
    this.name = options.name;
    this.#now = options.now;
    this.#house = new House(
      options.seed,
      options.pvCapacityW ?? PV_CAPACITY,
      options.loadScale ?? 1,
    );
    this.#settings = defaultSettings(options.firmware, this.model);
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
    this.#firstDay = dayKey(today);
    this.#today = { key: this.#firstDay, energy: noEnergy() };
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
    this.#catchUp();
    return this.#soc;
  }

  /** The power flows now. */
  get flows(): Flows {
    this.#catchUp();
    return this.#flowsNow();
  }

  /** Energy since local midnight, in Wh. */
  get today(): Energy {
    this.#catchUp();
    return { ...this.#today.energy };
  }

  /** Energy since the first of the month, in Wh. */
  get month(): Energy {
    this.#catchUp();
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

  /** A state as the device answers it, in its model's shape. */
  read(state: StateName): JsonObject {
    this.#catchUp();
    const f = this.#flowsNow();
    const ctx = {
      settings: this.#settings,
      name: this.name,
      gridW: f.purchase - f.feedIn,
      firmware: this.firmware,
      pvCapacityW: this.#house.pvCapacity,
    };
    return shapeAnswer(this.model, state, this.#base(state), ctx);
  }

  /** A state in the Home 8/10 shape. */
  #base(state: StateName): JsonObject {
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
    this.#catchUp();
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
          const form = algFormOf(this.firmware, this.model);
          const allowed = CHARGE_STRATEGIES.map((name) => algSettingFor(name, form));
          if (typeof value !== "string" || !allowed.includes(value)) return false;
          // Firmware that reports words takes digits (see algSettingFor) and reports the word.
          next.alg = form === "words" ? CHARGE_STRATEGY_OPTIONS[Number(value)]! : value;
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
    this.#catchUp();
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

  #catchUp(): void {
    this.#advance(this.#now().getTime());
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
        this.#rollOver(day);
        addFlows(this.#today.energy, f, hours);
        addFlows(this.#month.energy, f, hours);
      },
    );
    this.#time = to;
    this.#rollOver(quarterAt(to).day);
  }

  /** Starts new day and month counters when `day` is a new day or month. */
  #rollOver(day: CalendarDate): void {
    const key = dayKey(day);
    if (this.#today.key !== key) this.#today = { key, energy: noEnergy() };
    const month = day.year * 100 + day.month;
    if (this.#month.key !== month) this.#month = { key: month, energy: noEnergy() };
  }

  #flowsNow(): Flows {
    return flowsAt(this.#house, this.#settings, this.#now(), this.#soc, LIVE_STEP_MS / 1000);
  }

  /** A day as lived, or reconstructed if before the simulator ran; none after today. */
  #dayRecord(day: CalendarDate, today: CalendarDate): DayRecord | undefined {
    const key = dayKey(day);
    if (key > dayKey(today)) return undefined;
    if (key < this.#firstDay) return this.#historyDay(day).record;
    return this.#records.get(key) ?? [];
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
    const settings = defaultSettings(this.firmware, this.model);
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
    const sun = this.#house.pv(now) / this.#house.pvCapacity;
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
        capacity: whole(this.#house.pvCapacity),
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
