/**
 * A small levelled logger. `lib/` logs through a {@link Logger} it is given; only the CLI edge
 * decides where lines go.
 *
 * @module
 */

/** Log levels, most verbose first. */
export const LOG_LEVELS = ["debug", "info", "warning", "error"] as const;
/** One of {@link LOG_LEVELS}. */
export type LogLevel = typeof LOG_LEVELS[number];

/** What `lib/` needs of a logger. */
export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  warning(message: string): void;
  error(message: string): void;
  /** Whether messages of this level are written. */
  enabled(level: LogLevel): boolean;
}

/** Accepts pyess/Python spellings too (`warn`, `WARNING`, `critical`). */
export function parseLogLevel(text: string): LogLevel | undefined {
  const t = text.trim().toLowerCase();
  if (t === "warn") return "warning";
  if (t === "critical" || t === "fatal") return "error";
  return (LOG_LEVELS as readonly string[]).includes(t) ? t as LogLevel : undefined;
}

/**
 * A logger that hands each line at or above `level` to `write`.
 *
 * @example
 * ```ts
 * const lines: string[] = [];
 * const log = createLogger("info", (line) => lines.push(line));
 * log.debug("hidden");
 * log.warning("shown");
 * ```
 */
export function createLogger(
  level: LogLevel,
  write: (line: string, level: LogLevel) => void,
  now: () => Date = () => new Date(),
  timestamps = false,
): Logger {
  const min = LOG_LEVELS.indexOf(level);
  const emit = (l: LogLevel) => (message: string) => {
    if (LOG_LEVELS.indexOf(l) < min) return;
    const stamp = timestamps ? `${now().toISOString()} ` : "";
    write(`${stamp}${l}: ${message}`, l);
  };
  return {
    debug: emit("debug"),
    info: emit("info"),
    warning: emit("warning"),
    error: emit("error"),
    enabled: (l) => LOG_LEVELS.indexOf(l) >= min,
  };
}

/** A logger that drops everything (the default inside `lib/`). */
export const silentLogger: Logger = createLogger("error", () => {}, undefined, false);
