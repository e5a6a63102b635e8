/**
 * The battery settings (`/v1/user/setting/batt`) as ess's words. Every family answers with the
 * same kind of object; the keys and forms differ by firmware:
 *
 * | setting | Home 8/10 classic, Home 5 | Home 8/10 newer | Home 15 |
 * |---|---|---|---|
 * | winter mode | `winter_setting` on/off | same | same |
 * | charge strategy | `alg_setting` on/off | `0`..`2` or words | words |
 * | reserve | `safty_soc` % | `safty_soc` or `safety_soc` % | `reserved_soc` % |
 * | winter reserve | – | – | `winter_soc` % |
 * | backup mode | – | `backup_setting` / `backup_status` on/off | `backup_setting` (`simple`) |
 * | backup reserve | – | `backup_soc` % | – |
 * | grid charging | – | `auto_charge` on/off, `0`/`1` | – |
 * | winter season | `startdate`, `stopdate` MMDD | same | same |
 *
 * @module
 */
import type { JsonObject } from "../device/flatten.ts";
import {
  algSettingForm,
  backupModeOf,
  BATT_SETTINGS,
  isOnSetting,
  strategiesFor,
  strategyOfAlgSetting,
} from "../device/vocabulary.ts";
import type { FieldPattern } from "./_fields.ts";
import type { Reading } from "./reading.ts";
import { compact, flag, num, text } from "./_values.ts";

/** The batt fields ess understands, on any firmware. */
export const BATT_FIELDS: readonly FieldPattern[] = [
  "batt/winter_setting",
  "batt/winter_status",
  "batt/alg_setting",
  "batt/safty_soc",
  "batt/safety_soc",
  "batt/reserved_soc",
  "batt/winter_soc",
  "batt/backup_setting",
  "batt/backup_status",
  "batt/backup_soc",
  "batt/auto_charge",
  "batt/startdate",
  "batt/stopdate",
  // Known and published raw only: what they switch is not established.
  "batt/charging_from_grid_to_keep_soc",
  "batt/charge_from_grid_winter_and_backup_enabled",
  "batt/backup_installer_setting",
  "batt/internet_connection",
  "batt/enervu_activated",
  "batt/enervu_upload",
  "batt/thinq_registered",
];

const percent = (v: number | undefined) => v !== undefined && v >= 0 && v <= 100 ? v : undefined;
const monthDay = (v: string | undefined) => v !== undefined && /^\d{4}$/.test(v) ? v : undefined;

/**
 * The settings `batt` reports, falling back to `fallback` (the `BATT` group of `common` on Home
 * 8/10, which repeats some of them) for what `batt` lacks.
 */
export function readSettings(
  batt: JsonObject | undefined,
  fallback: JsonObject | undefined,
): Reading["settings"] {
  const get = (key: string) => batt?.[key] ?? fallback?.[key];
  const alg = get(BATT_SETTINGS.chargeStrategy.read);
  const form = algSettingForm(alg);
  const backup = (batt && backupModeOf(batt)) ?? (fallback && backupModeOf(fallback));
  const grid = get(BATT_SETTINGS.gridCharge.read);
  return compact({
    winterMode: flag(get(BATT_SETTINGS.winterMode.read)),
    chargeStrategy: strategyOfAlgSetting(alg),
    chargeStrategies: form && strategiesFor(form),
    backupMode: backup === undefined ? undefined : isOnSetting(backup),
    gridCharge: flag(grid),
    reservePct: percent(num(get("safty_soc") ?? get("safety_soc") ?? get("reserved_soc"))),
    backupReservePct: percent(num(get(BATT_SETTINGS.backupReserve.read))),
    winterReservePct: percent(num(get("winter_soc"))),
    winterStart: monthDay(text(get("startdate"))),
    winterStop: monthDay(text(get("stopdate"))),
  });
}
