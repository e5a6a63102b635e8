/**
 * Text output shared by the commands: aligned tables and terminal bar charts.
 *
 * @module
 */

/** Rows as aligned columns separated by two spaces; the last column is not padded. */
export function table(rows: readonly (readonly string[])[]): string {
  if (rows.length === 0) return "";
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, i) => widths[i] = Math.max(widths[i] ?? 0, cell.length));
  }
  return rows.map((row) =>
    row.map((cell, i) => i === row.length - 1 ? cell : cell.padEnd(widths[i]!)).join("  ")
      .trimEnd()
  ).join("\n") + "\n";
}

/**
 * A horizontal bar chart: one line per item, bars scaled to the largest value.
 *
 * @example
 * ```ts
 * barChart([["00:00", 0], ["12:00", 1800]], 20);
 * ```
 */
export function barChart(items: readonly (readonly [string, number])[], width = 50): string {
  const max = Math.max(0, ...items.map(([, v]) => Math.abs(v)));
  const labelWidth = Math.max(0, ...items.map(([l]) => l.length));
  return items.map(([label, value]) => {
    const eighths = max === 0 ? 0 : Math.round((Math.abs(value) / max) * width * 8);
    const bar = "█".repeat(Math.floor(eighths / 8)) +
      (eighths % 8 ? "▏▎▍▌▋▊▉"[(eighths % 8) - 1] : "");
    return `${label.padEnd(labelWidth)} │${bar} ${value}`;
  }).join("\n") + "\n";
}

/** A CSV field, quoted when it needs to be. */
export function csvField(text: string): string {
  return /[",\n\r]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}
