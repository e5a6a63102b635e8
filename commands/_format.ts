/**
 * Text output shared by the commands: aligned tables, terminal bar charts, and the output of
 * `ess data` and `ess graph` (which the demo prints too).
 *
 * @module
 */
import type { GraphAnswer } from "../lib/device/client.ts";
import { flatten, type JsonObject, ownValue } from "../lib/device/flatten.ts";
import { GRAPH_FIELDS, type GraphDevice, type GraphSpan } from "../lib/device/states.ts";
import { EssError, preview, printable, UsageError } from "../lib/errors.ts";
import { codeMeaning } from "../lib/model/codes.ts";
import { normalise } from "../lib/model/normalise.ts";
import { readingTopics, readingUnit } from "../lib/model/topics.ts";

/**
 * The widest a column is padded to. The cells come from the device: one odd key of 500 kB would
 * otherwise pad every row to its length, thousands of rows times 500 kB, far past the 64 MB heap.
 * A longer cell sticks out of the alignment instead; real keys are under 40 characters.
 */
export const MAX_PADDED_WIDTH = 60;

/**
 * Rows as aligned columns separated by two spaces; the last column is not padded, nor is any
 * column wider than {@link MAX_PADDED_WIDTH}. The cells come from the device: a character that
 * would steer the terminal or break the line shows as `?` ({@link printable}).
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * equal(table([["a", "1"], ["bcd", "2"]]), "a    1\nbcd  2\n");
 * equal(table([["x".repeat(100), "1"], ["y", "2"]]), `${"x".repeat(100)}  1\n${"y".padEnd(60)}  2\n`);
 * equal(table([["a\nb", "\u001b[2J"]]), "a?b  ?[2J\n");
 * ```
 */
export function table(rows: readonly (readonly string[])[]): string {
  if (rows.length === 0) return "";
  const cells = rows.map((row) => row.map(printable));
  const widths: number[] = [];
  for (const row of cells) {
    row.forEach((cell, i) =>
      widths[i] = Math.max(widths[i] ?? 0, Math.min(cell.length, MAX_PADDED_WIDTH))
    );
  }
  return cells.map((row) =>
    row.map((cell, i) => i === row.length - 1 ? cell : cell.padEnd(widths[i]!)).join("  ")
      .trimEnd()
  ).join("\n") + "\n";
}

/**
 * A horizontal bar chart: one line per item, bars scaled to the largest value, labels padded
 * to the longest (at most {@link MAX_PADDED_WIDTH}).
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * equal(barChart([["00:00", 0], ["12:00", 1800]], 20), "00:00 │ 0\n12:00 │" + "█".repeat(20) + " 1800\n");
 * ```
 */
export function barChart(items: readonly (readonly [string, number])[], width = 50): string {
  const max = Math.max(0, ...items.map(([, v]) => Math.abs(v)));
  const labelWidth = Math.max(0, ...items.map(([l]) => Math.min(l.length, MAX_PADDED_WIDTH)));
  return items.map(([label, value]) => {
    const eighths = max === 0 ? 0 : Math.round((Math.abs(value) / max) * width * 8);
    const bar = "█".repeat(Math.floor(eighths / 8)) +
      (eighths % 8 ? "▏▎▍▌▋▊▉"[(eighths % 8) - 1] : "");
    return `${printable(label).padEnd(labelWidth)} │${bar} ${value}`;
  }).join("\n") + "\n";
}

/** What a spreadsheet takes for the start of a formula when a cell begins with it. */
const FORMULA_START = /^[=+\-@\t\r]/;
/** A plain decimal number, which a spreadsheet reads as the number it is. */
const PLAIN_NUMBER = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/;

/**
 * A CSV field, quoted when it needs to be. The cells come from the device: one that a
 * spreadsheet would run as a formula (`=`, `+`, `-`, `@`, a tab or a carriage return first) gets
 * a `'` in front, so that it shows as the text it is; a number such as `-12.5` stays a number.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * equal(csvField("-12.5"), "-12.5");
 * equal(csvField("=HYPERLINK(\"http://x\")"), `"'=HYPERLINK(""http://x"")"`);
 * equal(csvField("@SUM(A1)"), "'@SUM(A1)");
 * ```
 */
export function csvField(text: string): string {
  const safe = FORMULA_START.test(text) && !PLAIN_NUMBER.test(text) ? `'${text}` : text;
  return /[",\n\r]/.test(safe) ? `"${safe.replaceAll('"', '""')}"` : safe;
}

/** The formats of `ess data`. */
export const DATA_FORMATS = ["json", "table", "flat", "reading", "reading-json"] as const;

/**
 * Output of `ess data` in each format: `json` exactly as the device sent it, `table` (with the
 * meaning of each code) and `flat` one line per value, `reading` the normalised reading as a
 * table in SI units and words, `reading-json` as JSON; characters that would steer the terminal
 * or break the line show as `?`.
 */
export function renderData(
  data: Record<string, JsonObject>,
  format: typeof DATA_FORMATS[number],
): string {
  if (format === "json") return `${JSON.stringify(data, null, 2)}\n`;
  if (format === "reading-json") return `${JSON.stringify(normalise(data), null, 2)}\n`;
  if (format === "reading") {
    return table([
      ["READING", "VALUE", "UNIT"],
      ...readingTopics(normalise(data)).map(([topic, value]) => [
        topic,
        value,
        readingUnit(topic) ?? "",
      ]),
    ]);
  }
  const leaves = Object.entries(data).flatMap(([state, answer]) =>
    flatten(answer, [state]).map(({ path, value }) => [path, value] as const)
  );
  if (format === "flat") {
    return leaves.map(([path, value]) => `${printable(`${path.join("/")} ${value}`)}\n`).join("");
  }
  return table([
    ["STATE", "FIELD", "VALUE", "MEANING"],
    ...leaves.map(([path, value]) => {
      const [state = "", ...rest] = path;
      return [state, rest.join("/"), value, codeMeaning(path.join("/"), value) ?? ""];
    }),
  ]);
}

/** The formats of `ess graph`. */
export const GRAPH_FORMATS = ["json", "csv", "table", "chart"] as const;

/**
 * The most columns a graph table, CSV or chart is made of. A real graph has six (`time` and the
 * device's five fields); a table costs rows times columns, and 5,000 rows with a field of their
 * own each, within every answer limit, once took `ess graph` past the 64 MB heap.
 */
export const MAX_GRAPH_COLUMNS = 32;

/** The columns of a graph: the device's fields in its order, then any others its rows carry. */
function graphColumns(device: GraphDevice, rows: GraphAnswer["loginfo"]): string[] {
  const seen = new Set<string>();
  for (const row of rows) for (const key of Object.keys(row)) seen.add(key);
  seen.delete("db");
  seen.delete("time");
  const known = GRAPH_FIELDS[device].filter((f) => seen.has(f));
  return ["time", ...known, ...[...seen].filter((f) => !known.includes(f))];
}

/**
 * A row's `time` (`YYYYMMDDhhmmss`, the device's local time) as a label fitting the span: the
 * table's and the chart's `hh:mm`, `YYYY-MM-DD` or `YYYY-MM`, or, with `full`, a date a
 * spreadsheet reads (`YYYY-MM-DD hh:mm` for day rows). A time in another shape stays as it came.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * equal(timeLabel("20261130001500", "day"), "00:15");
 * equal(timeLabel("20261130001500", "day", true), "2026-11-30 00:15");
 * equal(timeLabel("20261130000000", "month", true), "2026-11-30");
 * equal(timeLabel("20261100000000", "year", true), "2026-11");
 * ```
 */
export function timeLabel(time: string, span: GraphSpan, full = false): string {
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})/.exec(time);
  if (!m) return time;
  const [, y, mo, d, h, mi] = m;
  if (span === "day") return full ? `${y}-${mo}-${d} ${h}:${mi}` : `${h}:${mi}`;
  if (span === "year") return `${y}-${mo}`;
  return `${y}-${mo}-${d}`;
}

/** Output of `ess graph` in each format. */
export function renderGraph(
  answer: GraphAnswer,
  device: GraphDevice,
  span: GraphSpan,
  format: typeof GRAPH_FORMATS[number],
  field?: string,
): string {
  const rows = answer.loginfo;
  const columns = graphColumns(device, rows);
  if (format !== "json" && columns.length > MAX_GRAPH_COLUMNS) {
    throw new EssError(
      `the ${device} graph has ${columns.length - 1} fields, more than ess puts in a ${format} ` +
        `(a real one has ${GRAPH_FIELDS[device].length}): --format json prints it as it came`,
    );
  }
  // Own keys only: a row without `valueOf` has no value there, not Object.prototype's function.
  const cell = (row: GraphAnswer["loginfo"][number], column: string) => {
    const v = ownValue(row, column);
    return v === undefined || v === null ? "" : typeof v === "string" ? v : JSON.stringify(v);
  };
  switch (format) {
    case "json":
      return `${JSON.stringify(answer, null, 2)}\n`;
    case "csv":
      return [
        columns,
        ...rows.map((r) =>
          columns.map((c) => c === "time" ? timeLabel(cell(r, c), span, true) : cell(r, c))
        ),
      ].map((line) => line.map(csvField).join(",") + "\n").join("");
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
            columns.slice(1).map((c) => preview(c, 40)).join(", ")
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
