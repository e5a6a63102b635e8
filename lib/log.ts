/**
 * A small levelled logger. `lib/` logs through a {@link Logger} it is given; only the CLI edge
 * decides where lines go. Every line passes through the logger's {@link Redactor}, at every
 * level, so a secret that reaches a message never reaches the log.
 *
 * @module
 */
import { Redactor } from "./redact.ts";

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
  /** Removes secrets from every line; code that learns a secret adds it here. */
  readonly redactor: Redactor;
}

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /** The redactor every line goes through; default a new, empty one. */
  redactor?: Redactor | undefined;
  /** The clock for timestamps. */
  now?: (() => Date) | undefined;
  /** Whether each line starts with an ISO timestamp (default no: journald adds its own). */
  timestamps?: boolean | undefined;
}

/** Accepts pyess/Python spellings too (`warn`, `WARNING`, `critical`). */
export function parseLogLevel(text: string): LogLevel | undefined {
  const t = text.trim().toLowerCase();
  if (t === "warn") return "warning";
  if (t === "critical" || t === "fatal") return "error";
  return (LOG_LEVELS as readonly string[]).includes(t) ? t as LogLevel : undefined;
}

/**
 * A logger that hands each line at or above `level`, redacted, to `write`.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * const lines: string[] = [];
 * const log = createLogger("info", (line) => lines.push(line));
 * log.redactor.add("a1b2c3d4e5f6");
 * log.debug("hidden");
 * log.warning("login with a1b2c3d4e5f6 failed");
 * deepEqual(lines, ["warning: login with *** failed"]);
 * ```
 */
export function createLogger(
  level: LogLevel,
  write: (line: string, level: LogLevel) => void,
  options: LoggerOptions = {},
): Logger {
  const min = LOG_LEVELS.indexOf(level);
  const redactor = options.redactor ?? new Redactor();
  const now = options.now ?? (() => new Date());
  const emit = (l: LogLevel) => (message: string) => {
    if (LOG_LEVELS.indexOf(l) < min) return;
    const stamp = options.timestamps ? `${now().toISOString()} ` : "";
    write(`${stamp}${l}: ${redactor.redact(message)}`, l);
  };
  return {
    debug: emit("debug"),
    info: emit("info"),
    warning: emit("warning"),
    error: emit("error"),
    enabled: (l) => LOG_LEVELS.indexOf(l) >= min,
    redactor,
  };
}

/** A logger that drops everything (the default inside `lib/`). */
export const silentLogger: Logger = createLogger("error", () => {});

/**
 * `log` with `label: ` before every message: each device of several logs through its own, so
 * that a line says which device it is about.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * const lines: string[] = [];
 * const log = labelledLogger(createLogger("info", (line) => lines.push(line)), "garage");
 * log.warning("cannot reach the device");
 * deepEqual(lines, ["warning: garage: cannot reach the device"]);
 * ```
 */
export function labelledLogger(log: Logger, label: string): Logger {
  return {
    debug: (message) => log.debug(`${label}: ${message}`),
    info: (message) => log.info(`${label}: ${message}`),
    warning: (message) => log.warning(`${label}: ${message}`),
    error: (message) => log.error(`${label}: ${message}`),
    enabled: (level) => log.enabled(level),
    redactor: log.redactor,
  };
}
