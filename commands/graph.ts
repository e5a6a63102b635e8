/**
 * `ess graph`: the device's daily, weekly, monthly and yearly statistics.
 *
 * @module
 */
import { UsageError } from "../lib/errors.ts";
import {
  type CalendarDate,
  GRAPH_DEVICES,
  GRAPH_SPANS,
  type GraphSpan,
} from "../lib/device/states.ts";
import {
  choose,
  defineCommand,
  DEVICE_OPTIONS,
  DEVICE_SELECT_OPTION,
  GENERAL_OPTIONS,
} from "./_cli.ts";
import { openDevice } from "./_device.ts";
import { chosenDevice } from "./_devices.ts";
import { GRAPH_FORMATS, renderGraph } from "./_format.ts";

/** Parses `YYYY-MM-DD` into a real calendar date; anything else is a usage error. */
function parseDate(text: string): CalendarDate {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text.trim());
  const date = m ? { year: Number(m[1]), month: Number(m[2]), day: Number(m[3]) } : undefined;
  if (date) {
    const check = new Date(Date.UTC(date.year, date.month - 1, date.day));
    if (
      check.getUTCFullYear() === date.year && check.getUTCMonth() === date.month - 1 &&
      check.getUTCDate() === date.day
    ) return date;
  }
  throw new UsageError(`bad date ${JSON.stringify(text)}: use YYYY-MM-DD, e.g. 2024-06-15`);
}

/** Today in local time. */
function today(now = new Date()): CalendarDate {
  return { year: now.getFullYear(), month: now.getMonth() + 1, day: now.getDate() };
}

/**
 * Refuses a request for statistics that cannot exist yet: a day or week after today, a month or
 * year after the current one. The device answers those with no rows, which read like a day
 * without sun and exited 0.
 */
function refuseFuture(date: CalendarDate, span: GraphSpan, now: CalendarDate): void {
  const parts = span === "year" ? 1 : span === "month" ? 2 : 3;
  const label = (d: CalendarDate) =>
    [
      String(d.year).padStart(4, "0"),
      String(d.month).padStart(2, "0"),
      String(d.day).padStart(2, "0"),
    ]
      .slice(0, parts).join("-");
  // Zero-padded, the labels compare as the dates do.
  if (label(date) <= label(now)) return;
  const current = span === "year" ? "this year" : span === "month" ? "this month" : "today";
  throw new UsageError(
    `${label(date)} is after ${current} (${label(now)}): the device has no statistics for it yet`,
  );
}

const command = defineCommand({
  name: "graph",
  usage: "graph <pv|load|batt> <day|week|month|year> [YYYY-MM-DD] [--format json|csv|table|chart]",
  description: "Reads one statistics graph for the day, week, month or year that contains the " +
    "date (default: today).\nDay rows are 15 minutes, week and month rows are days, year rows " +
    "are months. Energy in Wh.",
  options: [
    {
      name: "format",
      type: "string",
      arg: "FORMAT",
      help: "json (as the device sent it), csv, table or chart",
      default: "table",
      config: false,
    },
    {
      name: "field",
      type: "string",
      arg: "FIELD",
      help: "what --format chart draws (default: generation, consumption or charge)",
      config: false,
    },
    DEVICE_SELECT_OPTION,
    ...DEVICE_OPTIONS,
    ...GENERAL_OPTIONS,
  ],
  positionals: true,
  examples: [
    "ess graph pv day",
    "ess graph load month 2024-06-15 --format csv > load-2024-06.csv",
    "ess graph batt week --format chart --field discharge",
    "ess graph pv day --device garage",
  ],
  async run(p, io) {
    const [deviceArg, spanArg, dateArg, ...extra] = p.positionals;
    const device = choose(deviceArg, GRAPH_DEVICES, "graph device");
    const span = choose(spanArg, GRAPH_SPANS, "graph span");
    if (extra.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(extra[0])}`);
    const date = dateArg === undefined ? today() : parseDate(dateArg);
    refuseFuture(date, span, today());
    const format = choose(p.string("format"), GRAPH_FORMATS, "format");
    const session = await openDevice(chosenDevice(p, p.string("device")).p, { retryOnce: true });
    try {
      const answer = await session.client.graph(device, span, date);
      io.out(renderGraph(answer, device, span, format, p.string("field")));
    } finally {
      session.close();
    }
    return 0;
  },
});

export default command;
