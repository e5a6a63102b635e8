/**
 * `ess graph`: the device's daily, weekly, monthly and yearly statistics.
 *
 * @module
 */
import type { GraphAnswer } from "../lib/device/client.ts";
import { UsageError } from "../lib/errors.ts";
import {
  type CalendarDate,
  GRAPH_DEVICES,
  GRAPH_FIELDS,
  GRAPH_SPANS,
  type GraphDevice,
  type GraphSpan,
} from "../lib/device/states.ts";
import {
  choose,
  type Command,
  DEVICE_OPTIONS,
  GENERAL_OPTIONS,
  type Io,
  parseCommand,
} from "./_cli.ts";
import { openDevice } from "./_device.ts";
import { barChart, csvField, table } from "./_format.ts";

const FORMATS = ["json", "csv", "table", "chart"] as const;

/** Parses `YYYY-MM-DD` into a real calendar date; anything else is a usage error. */
export function parseDate(text: string): CalendarDate {
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
export function today(now = new Date()): CalendarDate {
  return { year: now.getFullYear(), month: now.getMonth() + 1, day: now.getDate() };
}

/** The columns of a graph: the device's fields in its order, then any others its rows carry. */
export function graphColumns(device: GraphDevice, rows: GraphAnswer["loginfo"]): string[] {
  const seen = new Set<string>();
  for (const row of rows) for (const key of Object.keys(row)) seen.add(key);
  seen.delete("db");
  seen.delete("time");
  const known = GRAPH_FIELDS[device].filter((f) => seen.has(f));
  return ["time", ...known, ...[...seen].filter((f) => !known.includes(f))];
}

/** A row's `time` (`YYYYMMDDhhmmss`) as a label fitting the span. */
export function timeLabel(time: string, span: GraphSpan): string {
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})/.exec(time);
  if (!m) return time;
  const [, y, mo, d, h, mi] = m;
  if (span === "day") return `${h}:${mi}`;
  if (span === "year") return `${y}-${mo}`;
  return `${y}-${mo}-${d}`;
}

/** Output of `ess graph` in each format. */
export function renderGraph(
  answer: GraphAnswer,
  device: GraphDevice,
  span: GraphSpan,
  format: typeof FORMATS[number],
  field?: string,
): string {
  const rows = answer.loginfo;
  const columns = graphColumns(device, rows);
  const cell = (row: GraphAnswer["loginfo"][number], column: string) => {
    const v = row[column];
    return v === undefined || v === null ? "" : typeof v === "string" ? v : JSON.stringify(v);
  };
  switch (format) {
    case "json":
      return `${JSON.stringify(answer, null, 2)}\n`;
    case "csv":
      return [columns, ...rows.map((r) => columns.map((c) => cell(r, c)))]
        .map((line) => line.map(csvField).join(",") + "\n").join("");
    case "table":
      return table([
        columns,
        ...rows.map((r) =>
          columns.map((c) => c === "time" ? timeLabel(cell(r, c), span) : cell(r, c))
        ),
      ]);
    case "chart": {
      const name = field ?? GRAPH_FIELDS[device][0]!;
      if (!columns.includes(name) && rows.length > 0) {
        throw new UsageError(
          `no field ${JSON.stringify(name)} in the ${device} graph: one of ${
            columns.slice(1).join(", ")
          }`,
        );
      }
      if (rows.length === 0) return `no ${device} data for this ${span}\n`;
      const unit = /self_|soc/.test(name) ? "%" : "Wh";
      return `${device} ${name} (${unit}) per ${
        span === "day" ? "15 minutes" : span === "year" ? "month" : "day"
      }\n` +
        barChart(rows.map((r) => [timeLabel(cell(r, "time"), span), Number(cell(r, name)) || 0]));
    }
  }
}

const command: Command = {
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
    ...DEVICE_OPTIONS,
    ...GENERAL_OPTIONS,
  ],
  positionals: true,
  examples: [
    "ess graph pv day",
    "ess graph load month 2024-06-15 --format csv > load-2024-06.csv",
    "ess graph batt week --format chart --field discharge",
  ],
  async run(argv: string[], io: Io): Promise<number> {
    const p = await parseCommand(command, argv, io);
    if (!p) return 0;
    const [deviceArg, spanArg, dateArg, ...extra] = p.positionals;
    const device = choose(deviceArg, GRAPH_DEVICES, "graph device");
    const span = choose(spanArg, GRAPH_SPANS, "graph span");
    if (extra.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(extra[0])}`);
    const date = dateArg === undefined ? today() : parseDate(dateArg);
    const format = choose(p.string("format"), FORMATS, "format");
    const session = await openDevice(p, { retryOnce: true });
    try {
      const answer = await session.client.graph(device, span, date);
      io.out(renderGraph(answer, device, span, format, p.string("field")));
    } finally {
      session.close();
    }
    return 0;
  },
};

export default command;
