/**
 * The answer shapes of the models the simulator imitates, field for field as real devices
 * answer (see fixtures/README.md for the recordings): the Home 8/10 shape the device model
 * (`_device.ts`) writes is turned into the Home 5's (the same shape, fewer settings) or the Home
 * 15's (JSON numbers, 0.1 kW powers, `ess[]` units with garbage in those not installed,
 * per-phase grid arrays, its own settings).
 *
 * @module
 */
import type { Json, JsonObject } from "../device/flatten.ts";
import type { StateName } from "../device/states.ts";
import type { Firmware, Settings, SimModel } from "./_model.ts";

/** What a model's answer needs besides the Home 8/10 answer. */
export interface ShapeContext {
  settings: Settings;
  /** The registration number. */
  name: string;
  /** The grid flow in W, positive while buying. */
  gridW: number;
  /** The firmware imitated (default `classic`). */
  firmware?: Firmware;
  /** Peak power of the panels in W. */
  pvCapacityW: number;
}

const n = (v: Json | undefined) => Number(v ?? 0) || 0;
const obj = (v: Json | undefined): JsonObject =>
  typeof v === "object" && v !== null && !Array.isArray(v) ? v : {};
/** W as 0.1 kW. */
const deciKw = (w: number) => Math.round(w / 100);

/** `base` (the Home 8/10 answer of `state`) in the shape of `model`. */
export function shapeAnswer(
  model: SimModel,
  state: StateName,
  base: JsonObject,
  ctx: ShapeContext,
): JsonObject {
  if (model === "home10") {
    return ctx.firmware === "words" ? home10Words(state, base, ctx.settings) : base;
  }
  if (model === "home5") return home5(state, base);
  switch (state) {
    case "home":
      return home15Home(base);
    case "common":
      return home15Common(base, ctx);
    case "batt":
      return home15Batt(ctx.settings);
    case "systeminfo":
      return home15Systeminfo(base, ctx);
    default:
      return base;
  }
}

/** The Home 5: the Home 8/10 answers, a smaller inverter, and no backup settings. */
function home5(state: StateName, base: JsonObject): JsonObject {
  if (state === "systeminfo") {
    const pms = obj(base["pms"]);
    return {
      ...base,
      pms: { ...pms, model: "D005KD1N111", ac_input_power: "6600", ac_output_power: "5" },
    };
  }
  if (state === "batt") {
    const keys = ["winter_setting", "winter_status", "alg_setting", "safty_soc", "startdate"];
    return Object.fromEntries([...keys, "stopdate"].map((k) => [k, base[k] ?? ""]));
  }
  return base;
}

/**
 * The newer Home 8/10 firmware recorded as D010KE1N211 (fixtures/home10/): the same values with
 * more fields, `safety_soc` spelt right, and the charge strategy (`settings.alg`) in words.
 */
function home10Words(state: StateName, base: JsonObject, s: Settings): JsonObject {
  const onOff = (on: boolean) => on ? "on" : "off";
  const backupOn = s.backup !== "off";
  switch (state) {
    case "home": {
      const running = obj(base["operation"])["status"] === "start";
      return {
        statistics: { ...obj(base["statistics"]), ac_output_power: "10" },
        direction: { ...obj(base["direction"]), is_discharging_to_grid_: "0" },
        operation: {
          ...obj(base["operation"]),
          pcs_standbymode: "false",
          drm_mode0: "0",
          remote_mode: "0",
          drm_control: "0",
        },
        wintermode: { winter_status: onOff(s.winter), backup_status: onOff(backupOn) },
        backupmode: "",
        pcs_fault: { pcs_status: "pcs_ok", pcs_op_status: running ? "pcs_run" : "pcs_stop" },
        heatpump: {
          heatpump_protocol: "0",
          heatpump_activate: "off",
          current_temp: "0",
          heatpump_working: "off",
        },
        evcharger: { ev_activate: "off", ev_power: "0" },
        gridWaitingTime: "0",
      };
    }
    case "common": {
      const { safty_soc: safety, ...batt } = obj(base["BATT"]);
      return {
        ...base,
        PV: {
          ...obj(base["PV"]),
          pv3_voltage: "0.000000",
          pv3_power: "0",
          pv3_current: "0.000000",
        },
        BATT: {
          ...batt,
          safety_soc: safety ?? String(s.saftySoc),
          backup_setting: s.backup,
          backup_status: onOff(backupOn),
          backup_soc: String(s.backupSoc),
        },
      };
    }
    case "batt": {
      const { safty_soc: safety, ...batt } = base;
      return {
        ...batt,
        safety_soc: safety ?? String(s.saftySoc),
        charging_from_grid_to_keep_soc: s.autoCharge ? "1" : "0",
        auto_charge: onOff(s.autoCharge),
        internet_connection: "connected",
        enervu_activated: "true",
        enervu_upload: "on",
      };
    }
    case "systeminfo": {
      const batt = obj(base["batt"]);
      return {
        ...base,
        batt: {
          capacity: batt["capacity"] ?? "98",
          type: "hbp",
          hbc_cycle_count_1: "412",
          hbc_cycle_count_2: "0",
          install_date: batt["install_date"] ?? "2021-04-12",
        },
        version: {
          ...obj(base["version"]),
          pms_version: "10.05.7501",
          pms_build_date: "2023-03-08 R7501",
        },
      };
    }
    default:
      return base;
  }
}

function home15Home(base: JsonObject): JsonObject {
  const st = obj(base["statistics"]);
  const dir = obj(base["direction"]);
  const pv = n(st["pcs_pv_total_power"]);
  const battery = n(st["batconv_power"]);
  const charging = n(dir["is_battery_charging_"]) === 1;
  return {
    statistics: {
      pv_total_power_01kW: deciKw(pv),
      batt_conv_power_01kW: deciKw(battery),
      grid_power_01kW: deciKw(n(st["grid_power"])),
      load_power_01kW: deciKw(n(st["load_power"])),
      ac_active_power_01kW: deciKw(Math.max(0, pv + (charging ? -battery : battery))),
      bat_use: n(st["bat_use"]),
      bat_status: n(st["bat_status"]),
      bat_user_soc: Math.round(n(st["bat_user_soc"])),
    },
    direction: {
      is_direct_consuming_: n(dir["is_direct_consuming_"]),
      is_battery_charging_: n(dir["is_battery_charging_"]),
      is_battery_discharging_: n(dir["is_battery_discharging_"]),
      is_grid_selling_: n(dir["is_grid_selling_"]),
      is_grid_buying_: n(dir["is_grid_buying_"]),
      is_charging_from_grid_: n(dir["is_charging_from_grid_"]),
      is_discharging_to_grid_: 0,
    },
    operation: {
      status: obj(base["operation"])["status"] ?? "start",
      mode: 1,
      oper_status: 4,
      simple_status: 1,
      backup_mode: 2,
      remote_mode: 0,
      demo_mode: 0,
      tou_period: 1,
      ripple_control: "0",
      ripple_level: "0",
    },
    pcs_fault: { pcs_status: "pcs_ok", grid_fault: "0" },
    heatpump: {
      heatpump_protocol: "2",
      heatpump_installed: "no",
      heatpump_activate: "off",
      current_temp: 0,
      heatpump_working: "off",
    },
    evcharger: { ev_activate: "off", ev_power: 0 },
    gridWaitingTime: 0,
    coredump: "none",
    factory_test_mode: "none",
  };
}

/** An `ess[]` unit that is not installed: garbage, as real devices send it. */
function phantomUnit(salt: number): JsonObject {
  const g = (k: number) => ((salt * 2_654_435_761 + k * 40_503) >>> 0) % 2_127_000_000;
  return {
    installed: false,
    brand: "",
    ess_total_oper_simple_status: 1,
    oper_status: 0,
    pcs_func_mode_status: 0,
    pv_only_auto_mode_activated: 0,
    sum_of_pv_power: -g(1) % 40_000_000,
    sum_of_pv_capacity: 0,
    pv: [1, 2, 3].map((k) => ({
      installed: false,
      voltage: g(10 + k),
      power: g(20 + k),
      current: g(30 + k),
      capacity: 0,
    })),
    sum_of_batt_dc_power: g(2),
    batt: [1, 2].map((k) => ({
      installed: true,
      activated: k === 1,
      status: g(40 + k),
      soc: g(50 + k) % 300_000_000,
      dc_power: g(60 + k),
    })),
  };
}

function home15Common(base: JsonObject, ctx: ShapeContext): JsonObject {
  const { settings: s, gridW, pvCapacityW } = ctx;
  const pv = obj(base["PV"]);
  const batt = obj(base["BATT"]);
  const grid = obj(base["GRID"]);
  const capacities = [Math.round(pvCapacityW * 0.45), Math.round(pvCapacityW * 0.55)];
  const strings = [1, 2].map((i) => ({
    installed: true,
    voltage: Math.round(n(pv[`pv${i}_voltage`]) * 10),
    power: n(pv[`pv${i}_power`]),
    current: Math.round(n(pv[`pv${i}_current`]) * 100),
    capacity: capacities[i - 1]!,
  }));
  const home = obj(base["LOAD"]);
  // The grid flow, positive while buying, split over three phases.
  const signedGrid = Math.round(gridW);
  const a = Math.round(signedGrid * 0.3);
  const b = Math.round(signedGrid * 0.5);
  const volts = n(grid["a_phase"]);
  return {
    ess_installed: 1,
    ess: [
      {
        installed: true,
        brand: "",
        ess_total_oper_simple_status: 1,
        oper_status: 4,
        pcs_func_mode_status: 0,
        pv_only_auto_mode_activated: 0,
        sum_of_pv_power: strings.reduce((sum, x) => sum + x.power, 0),
        sum_of_pv_capacity: capacities.reduce((sum, c) => sum + c, 0),
        pv: [...strings, { installed: false, voltage: 0, power: 0, current: 0, capacity: 0 }],
        sum_of_batt_dc_power: n(batt["dc_power"]),
        batt: [
          {
            installed: true,
            activated: true,
            status: n(batt["status"]),
            soc: Math.round(n(batt["soc"])),
            dc_power: n(batt["dc_power"]),
          },
          { installed: false, activated: true, status: 3, soc: 0, dc_power: 0 },
        ],
      },
      phantomUnit(1),
      phantomUnit(2),
    ],
    winter_setting: s.winter ? "on" : "off",
    winter_status: s.winter ? "on" : "off",
    GRID: {
      total_active_power: signedGrid,
      active_power: [a, b, signedGrid - a - b],
      a_phase: [0, 0.8, -1.1].map((d) => Math.round((volts + d) * 10)),
      freq: Math.round(n(grid["freq"]) * 10),
    },
    PCS: {
      pcs_stauts: obj(base["PCS"])["pcs_stauts"] ?? "4",
      feed_in_limitation: obj(base["PCS"])["feed_in_limitation"] ?? "100",
      operation_mode: "0",
    },
    LOAD: {
      load_power: deciKw(n(home["load_power"])),
      evc_onoff: 0,
      ev_power: 0,
      hp_onoff: 0,
      awhp: "Normal",
    },
  };
}

function home15Batt(s: Settings): JsonObject {
  return {
    winter_setting: s.winter ? "on" : "off",
    winter_soc: 20,
    backup_setting: s.backup === "off" ? "off" : "simple",
    reserved_soc: s.saftySoc,
    backup_installer_setting: 2,
    startdate: s.startdate,
    stopdate: s.stopdate,
    alg_setting: s.alg,
    charge_from_grid_winter_and_backup_enabled: s.autoCharge ? "on" : "off",
    internet_connection: "internet_connected",
    thinq_registered: 1,
  };
}

function home15Systeminfo(base: JsonObject, { name, pvCapacityW }: ShapeContext): JsonObject {
  const pms = obj(base["pms"]);
  // A battery pack: `serials` for one with pack details (real or, in a unit not installed,
  // empty), none for an empty slot.
  const pack = (installed: boolean, serials?: string[], count = 0) => ({
    installed,
    model_name: count ? "BUELSIM0001HBE2KET00001" : "",
    model_name_bcu: count ? "BUELSIM0001" : "",
    sw_version: count ? "0106" : "",
    cycle_count: count,
    full_charge_capacity: count && 36_000,
    remained_capacity: count && 35_600,
    cycle_count_dup: count,
    self_discharing_rates: count && 150,
    pack_serial_manually_entered_v1: "",
    ...Object.fromEntries(
      (serials ?? []).flatMap((serial, i) => [
        [`pack_serial_manually_entered_v2_${i + 1}`, serial],
        [`date_of_manufacture_of_pack${i + 1}`, serial && "2024-11-20"],
      ]),
    ),
    barcode: serials ?? [],
    charged_energy: count && 412_000,
    discharged_energy: count && 388_000,
    total_energy: count && 800_000,
    charge_capacity_throughput: count && 9_600,
    discharge_capacity_throughput: count && 9_000,
    total_capacity_throughput: count && 18_600,
    deep_discharge_counter: 0,
    over_charge_counter: 0,
  });
  const serials = [1, 2, 3, 4].map((i) => `BPLGSIM000${i}`);
  const empty = ["", "", "", ""];
  const unit = (installed: boolean) => ({
    installed,
    model: "D015KE1N212",
    ac_output_power: installed ? 15_000 : 6_000,
    pcs_serial_no: "",
    sw_version: installed ? "LG P21 01.00.01.00 R80 56.10" : "",
    ess_serial_no: installed ? `${name}U` : "",
    batt_info: {
      install_date: installed ? "2025-03-14" : "2023-01-01",
      capacity: installed ? 15_000 : 26_726,
      batt: installed
        ? [pack(true, serials, 41), pack(false)]
        : [pack(true, empty), pack(true, empty)],
    },
  });
  return {
    pms: {
      model: "D015KE1N212",
      serialno: pms["serialno"] ?? `${name}S`,
      pv_capacity_power: pvCapacityW,
      install_date: "2025-03-14",
    },
    version: {
      pms_version: "1.1.2960",
      pms_certi_version: "01.00",
      pms_build_date: "2024-10-02",
      lge_app_sw_version: "1.2.1002",
      lge_app_fw_version: "LG P21 01.00.01.00 R80 56.10 / 0106,00040004",
      pcs_version: "LG P21 01.00.01.00 R80 56.10",
    },
    ess_installed: 1,
    ess: [unit(true), unit(false), unit(false)],
  };
}
