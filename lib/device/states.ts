/**
 * The device's API surface in one place: state names and paths, graph devices and spans, and
 * the control endpoints. Everything else derives from these tables.
 *
 * @module
 */

/** The readable states and their paths (`POST` with the auth key). */
export const STATE_PATHS = {
  home: "/v1/user/essinfo/home",
  common: "/v1/user/essinfo/common",
  network: "/v1/user/setting/network",
  systeminfo: "/v1/user/setting/systeminfo",
  batt: "/v1/user/setting/batt",
} as const;

/** A readable state name. */
export type StateName = keyof typeof STATE_PATHS;
/** All state names, in the order ess prints them. */
export const STATE_NAMES = Object.keys(STATE_PATHS) as StateName[];

/** Whether `name` is a readable state. */
export function isStateName(name: string): name is StateName {
  return Object.hasOwn(STATE_PATHS, name);
}

/**
 * The shortest poll interval ess accepts, in seconds: the device is a small embedded box, and
 * its own app polls no faster.
 */
export const MIN_POLL_SECONDS = 1;

/** Login, in the order tried: classic firmware first, newer firmware (PMS 10.05.74xx+) second. */
export const LOGIN_PATHS = ["/v1/user/setting/login", "/v1/login"] as const;
/** Clock sync the app does right after login; newer firmware may not have it (404). */
export const TIMESYNC_PATH = "/v1/user/setting/timesync";
/** Reads the device password; answers only on the device's own Wi-Fi. */
export const PASSWORD_PATH = "/v1/user/setting/read/password";
/** The fixed key the app sends to read the password. */
export const PASSWORD_KEY = "lgepmsuser!@#";
/** The device's address on its own Wi-Fi access point. */
export const DEVICE_WIFI_HOST = "192.168.23.1";
/** Start / stop the system (`PUT {"operation": "start" | "stop"}`). */
export const OPERATION_PATH = "/v1/user/operation/status";
/** Battery settings: winter mode, charge strategy, backup (`PUT`). */
export const BATT_SETTING_PATH = "/v1/user/setting/batt";

/** Devices with statistics graphs. */
export const GRAPH_DEVICES = ["pv", "load", "batt"] as const;
/** One of {@link GRAPH_DEVICES}. */
export type GraphDevice = typeof GRAPH_DEVICES[number];
/** Graph spans. */
export const GRAPH_SPANS = ["day", "week", "month", "year"] as const;
/** One of {@link GRAPH_SPANS}. */
export type GraphSpan = typeof GRAPH_SPANS[number];

/** The path of one statistics graph. */
export function graphPath(device: GraphDevice, span: GraphSpan): string {
  return `/v1/user/graph/${device}/${span}`;
}

/** A calendar date without a time zone. */
export interface CalendarDate {
  year: number;
  month: number;
  day: number;
}

const pad = (n: number, width = 2) => String(n).padStart(width, "0");

/**
 * The date field a graph request carries for its span.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * deepEqual(graphDateField("month", { year: 2024, month: 6, day: 15 }), { year_month: "202406" });
 * ```
 */
export function graphDateField(span: GraphSpan, date: CalendarDate): Record<string, string> {
  const y = pad(date.year, 4);
  switch (span) {
    case "day":
    case "week":
      return { year_month_day: `${y}${pad(date.month)}${pad(date.day)}` };
    case "month":
      return { year_month: `${y}${pad(date.month)}` };
    case "year":
      return { year: y };
  }
}

/** The row fields of each graph device, in the order the device sends them. */
export const GRAPH_FIELDS: Record<GraphDevice, readonly string[]> = {
  pv: ["generation", "feed_in", "self_consum", "total_generation", "total_Feed_in"],
  load: ["consumption", "purchase", "self_suffi", "total_consumption", "total_purchase"],
  batt: ["charge", "discharge", "total_charge", "total_discharge", "soc"],
};
