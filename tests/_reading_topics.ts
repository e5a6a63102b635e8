/**
 * The MQTT topics of a normalised reading, written down from the documented layout
 * (docs/mqtt.md, "The reading") independently of the bridge, so that the Home Assistant tests can
 * say which entities a model gets and what they show, and a bridge that strays from the layout
 * shows up in the tests that run both.
 *
 * @module
 */
import type { EnergyName, Reading } from "../lib/model/reading.ts";

const ENERGY: Readonly<Record<EnergyName, string>> = {
  pvGeneration: "pv_generation",
  loadConsumption: "load_consumption",
  pvDirectConsumption: "pv_direct_consumption",
  gridFeedIn: "grid_feed_in",
  gridPurchase: "grid_purchase",
  batteryCharge: "battery_charge",
  batteryDischarge: "battery_discharge",
};

/** Topic → payload of every figure `reading` has, under `<prefix>/reading/`. */
export function readingTopics(prefix: string, r: Reading): Map<string, string> {
  const out = new Map<string, string>();
  const put = (path: string, value: number | string | boolean | undefined) => {
    if (value === undefined) return;
    out.set(
      `${prefix}/reading/${path}`,
      typeof value === "boolean" ? (value ? "on" : "off") : String(value),
    );
  };
  put("power/pv", r.power.pvW);
  put("power/load", r.power.loadW);
  put("power/battery", r.power.batteryW);
  put("power/grid", r.power.gridW);
  put("battery/soc", r.socPct);
  for (const s of r.pvStrings) {
    put(`pv/${s.index}/power`, s.powerW);
    put(`pv/${s.index}/voltage`, s.voltageV);
    put(`pv/${s.index}/current`, s.currentA);
  }
  put("pv/capacity", r.pvCapacityW);
  put("grid/frequency", r.grid.frequencyHz);
  for (const p of r.grid.phases) {
    put(`grid/${p.phase}/voltage`, p.voltageV);
    put(`grid/${p.phase}/power`, p.powerW);
  }
  for (const [name, counter] of Object.entries(r.energy)) {
    const part = ENERGY[name as EnergyName];
    put(`energy/${part}/today`, counter?.todayWh);
    put(`energy/${part}/month`, counter?.monthWh);
  }
  put("self_consumption/today", r.selfConsumptionTodayPct);
  put("status/running", r.status.running);
  put("status/winter_active", r.status.winterActive);
  put("status/battery_charging", r.status.batteryCharging);
  put("status/grid_selling", r.status.gridSelling);
  put("status/operating_mode", r.status.operatingMode?.word);
  put("status/inverter", r.status.inverterStatus?.word);
  put("status/battery", r.status.batteryStatus?.word);
  const s = r.settings;
  put("settings/winter_mode", s.winterMode);
  put("settings/backup_mode", s.backupMode);
  put("settings/grid_charge", s.gridCharge);
  put("settings/charge_strategy", s.chargeStrategy);
  put("settings/reserve", s.reservePct);
  put("settings/backup_reserve", s.backupReservePct);
  put("settings/winter_reserve", s.winterReservePct);
  put("settings/feed_in_limit", s.feedInLimitPct);
  put("settings/winter_start", s.winterStart);
  put("settings/winter_stop", s.winterStop);
  put("info/model", r.model);
  put("info/serial", r.serial);
  put("info/family", r.family);
  put("version/pms", r.versions.pms);
  put("version/pcs", r.versions.pcs);
  put("version/bms", r.versions.bms);
  return out;
}
