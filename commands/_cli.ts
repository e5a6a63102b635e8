/**
 * What every command shares: the option table and its parsing (command line > environment >
 * config file > defaults), help text, output, and the device connection.
 *
 * @module
 */
import { parseArgs } from "node:util";
import type { ConfigEntry } from "../lib/config.ts";
import { parseSwitchWord, SWITCH_WORDS_TEXT } from "../lib/device/vocabulary.ts";
import { flagValues, strayArgument } from "./_flags.ts";
import { ConfigError, errorText, EssError, preview, UsageError } from "../lib/errors.ts";
import { createLogger, type Logger, type LogLevel, parseLogLevel } from "../lib/log.ts";
import { Redactor } from "../lib/redact.ts";

/** Where output goes; tests and the CLI edge provide it. */
export interface Io {
  out(text: string): void;
  err(text: string): void;
  readonly stdoutIsTerminal: boolean;
  readonly stderrIsTerminal: boolean;
  env(name: string): string | undefined;
  /** Cleans every log line and error message of the secrets the command learns. */
  readonly redactor?: Redactor;
}

export { DEVICE_OPTIONS, DEVICE_SELECT_OPTION, GENERAL_OPTIONS, HELP_OPTION } from "./_options.ts";
import { HELP_OPTION, type OptionSpec, type OptionValue } from "./_options.ts";
export type { OptionSpec, OptionValue } from "./_options.ts";
import { fileEntries, sortEntries } from "./_entries.ts";

/** Options whose values are secrets: they are redacted wherever a message would quote them. */
const SECRET_OPTIONS = ["password", "mqtt-password", "control-token"];

function writeAll(file: { writeSync(p: Uint8Array): number }, text: string): void {
  let bytes = new TextEncoder().encode(text);
  while (bytes.length > 0) bytes = bytes.subarray(file.writeSync(bytes));
}

/**
 * The exit code when the reader of stdout went away (`ess data | head -c 10`): 128 + SIGPIPE, what
 * a shell reports for a Unix tool that SIGPIPE ended there.
 */
export const EXIT_STDOUT_CLOSED = 141;

/**
 * Writes to stdout; when its reader has gone, ends the process at once and without a word, as a
 * Unix tool does: nobody is left to read the rest, and the reason is no failure of ess's. Every
 * command's output goes through here, including a daemon's and one written from a callback.
 */
function writeStdout(text: string): void {
  try {
    writeAll(Deno.stdout, text);
  } catch (err) {
    if (err instanceof Deno.errors.BrokenPipe) Deno.exit(EXIT_STDOUT_CLOSED);
    throw err;
  }
}

/** The process's own stdout, stderr and environment (an empty variable counts as unset). */
export const processIo: Io = {
  out: writeStdout,
  err: (text) => writeAll(Deno.stderr, text),
  stdoutIsTerminal: Deno.stdout.isTerminal(),
  stderrIsTerminal: Deno.stderr.isTerminal(),
  env: (name) => Deno.env.get(name) || undefined,
};

const snake = (name: string) => name.replaceAll("-", "_");
const kebab = (name: string) => name.replaceAll("_", "-");
const namesOf = (spec: OptionSpec) => [
  ...new Set([spec.name, ...(spec.aliases ?? [])].flatMap((n) => [kebab(n), snake(n)])),
];

/** The names of `O`'s options of type `T`; any name where `O` is not known. */
type NamesOf<O extends readonly OptionSpec[], T extends OptionSpec["type"]> = string extends
  O[number]["name"] ? string : Extract<O[number], { readonly type: T }>["name"];

/**
 * The parsed command line of one command, with options resolved from every source. Only the
 * command's own options can be asked for: `p.string("hots")` does not compile.
 */
export interface Parsed<S extends string = string, F extends string = string> {
  positionals: string[];
  /** An option's value, if any source set it. */
  get(name: S | F): OptionValue | undefined;
  /** A string option's value. */
  string(name: S): string | undefined;
  /** Every value of a {@link OptionSpec.multiple} option given on the command line, in order. */
  all(name: S): OptionValue[];
  /** The config file's entries under an option's {@link OptionSpec.configPrefix}, in order. */
  prefixed(name: S): ConfigEntry[];
  /** Whether a flag is set. */
  flag(name: F): boolean;
  /** A whole number option within bounds; a bad value is a usage or config error. */
  integer(name: S, min: number, max: number): number | undefined;
  /**
   * A number of seconds, written in decimal (`10`, `2.5`), at least `min` (default: more than
   * 0) and at most a day.
   */
  seconds(name: S, min?: number): number | undefined;
  /**
   * The config file's `[device NAME]` sections, in order, each with the command's options as
   * that device sees them: command line, then environment, then its section, then the lines
   * above every section, then defaults. Empty when the config declares no device section.
   */
  devices: readonly DeviceView<S, F>[];
  log: Logger;
  logLevel: LogLevel;
  io: Io;
}

/** One `[device NAME]` section of the config, and the options as they apply to it. */
export interface DeviceView<S extends string = string, F extends string = string> {
  /** The section's name: `garage` for `[device garage]`. */
  name: string;
  /** `file:line` of its header, for messages. */
  origin: string;
  /** The options, resolved for this device; its own {@link Parsed.devices} is empty. */
  p: Parsed<S, F>;
}

/** {@link Parsed} for the option table `O`. */
export type ParsedOf<O extends readonly OptionSpec[]> = Parsed<
  NamesOf<O, "string">,
  NamesOf<O, "boolean">
>;

/** A subcommand: its help, its options, and what it does with them once parsed. */
export interface Command<O extends readonly OptionSpec[] = readonly OptionSpec[]> {
  name: string;
  usage: string;
  description: string;
  options: O;
  examples: readonly string[];
  /** Whether it takes arguments besides options; without, {@link parseCommand} refuses any. */
  positionals?: boolean;
  /** Runs the command with its parsed options; returns the exit code. */
  run(p: ParsedOf<O>, io: Io): Promise<number>;
}

/**
 * Declares a command: inside the declaration, `run` can ask only for the options the command
 * has. The result is a plain {@link Command}, as the dispatcher sees every command; the
 * dispatcher parses exactly `options`, so the narrower `run` is safe to call with it.
 */
export function defineCommand<const O extends readonly OptionSpec[]>(
  command: Command<O>,
): Command {
  return command as unknown as Command;
}

/** Help text for a command, derived from its option table. */
export function helpText(command: Omit<Command, "run">): string {
  const lines = [`Usage: ess ${command.usage}`, "", command.description, ""];
  const groups = new Map<string, OptionSpec[]>();
  for (const spec of [...command.options, HELP_OPTION]) {
    const group = spec.group ?? "Options";
    groups.set(group, [...(groups.get(group) ?? []), spec]);
  }
  for (const [group, specs] of groups) {
    lines.push(`${group}:`);
    const rows = specs.map((s) => {
      const flag = `${s.short ? `-${s.short}, ` : ""}--${s.name}${s.arg ? ` ${s.arg}` : ""}`;
      const extra = [
        s.default !== undefined && s.default !== false ? `default: ${s.default}` : "",
        s.env ? `env ${s.env}` : "",
        s.aliases?.length ? `also --${s.aliases.join(", --")}` : "",
      ].filter(Boolean).join("; ");
      return [flag, extra ? `${s.help} (${extra})` : s.help] as const;
    });
    const width = Math.min(28, Math.max(...rows.map(([f]) => f.length)) + 2);
    for (const [flag, help] of rows) {
      lines.push(
        flag.length + 2 > width
          ? `  ${flag}\n  ${" ".repeat(width)}${help}`
          : `  ${flag.padEnd(width)}${help}`,
      );
    }
    lines.push("");
  }
  if (command.examples.length > 0) {
    lines.push("Examples:", ...command.examples.map((e) => `  ${e}`), "");
  }
  return lines.join("\n");
}

/** Whether an option's value came from a config file (`file:line`). */
export function fromConfigFile(origin: string): boolean {
  return origin.includes(":") && !origin.startsWith("--") && !origin.startsWith("env ");
}

/**
 * The error for a bad value from `origin`: a {@link ConfigError} naming the file and line for a
 * config file's value, a {@link UsageError} naming the option or variable otherwise.
 */
export function errorAt(origin: string, message: string): EssError {
  return fromConfigFile(origin)
    ? new ConfigError(`${origin}: ${message}`)
    : new UsageError(`${origin}: ${message}`);
}

/** What {@link parseCommand} needs besides the command line. */
export interface ParseContext {
  /**
   * Whether some other command of ess has an option called `key`. One config file serves every
   * command (`ess data` reads the daemon's /etc/essmqtt.conf), so only a key that no command
   * knows is worth a warning. Default: none does.
   */
  isKnownKey?: (key: string) => boolean | Promise<boolean>;
  /**
   * Whether some command of ess lets a `[device NAME]` section set `key` (kebab-case); a key
   * another command knows but no section may set is a config error in a section, whichever
   * command reads the file. Default: none does.
   */
  isDeviceKey?: (key: string) => boolean | Promise<boolean>;
  /** A known key close to the unknown `key` (kebab-case), for "did you mean". Default: none. */
  suggestKey?: (key: string) => string | undefined | Promise<string | undefined>;
  /** The folder relative `--config` paths start from (default: the working directory). */
  cwd?: string | undefined;
}

/** Each name an option answers to, and what `node:util`'s parseArgs is told of it. */
interface OptionTable {
  byName: Map<string, OptionSpec>;
  flags: Map<string, OptionSpec>;
  options: Record<string, { type: "string" | "boolean"; short?: string; multiple?: boolean }>;
}

function optionTable(specs: readonly OptionSpec[]): OptionTable {
  const table: OptionTable = { byName: new Map(), flags: new Map(), options: {} };
  for (const spec of specs) {
    for (const n of namesOf(spec)) {
      table.byName.set(n, spec);
      table.options[n] = {
        type: spec.type,
        ...(spec.short && n === spec.name ? { short: spec.short } : {}),
        ...(spec.multiple ? { multiple: true } : {}),
      };
      if (spec.type === "boolean") {
        table.flags.set(n, spec);
        table.byName.set(`no-${n}`, spec);
        table.options[`no-${n}`] = { type: "boolean" };
      }
    }
  }
  return table;
}

/** `argv` parsed strictly; what parseArgs refuses becomes one usage error naming the option. */
function readArgv(name: string, argv: readonly string[], table: OptionTable) {
  try {
    return parseArgs({
      args: flagValues(argv, table.flags),
      options: table.options,
      strict: true,
      allowPositionals: true,
    });
  } catch (err) {
    const text = errorText(err);
    const option = /'(-[^' ]+)/.exec(text)?.[1] ?? "";
    const code = (err as { code?: string }).code;
    const why = code === "ERR_PARSE_ARGS_UNKNOWN_OPTION"
      ? `unknown option ${option}`
      : /argument missing/.test(text)
      ? `option ${option} needs a value`
      : /ambiguous/.test(text)
      ? `option ${option} needs a value (write ${option}=-N for one that starts with "-")`
      : /does not take an argument/.test(text)
      ? `option ${option} takes no value`
      : text.split("\n")[0];
    throw new UsageError(`ess ${name}: ${why}; see 'ess ${name} --help'`);
  }
}

/** The command line's values by option name; a repeatable option's values in a list. */
function cliValues(
  parsed: Record<string, string | boolean | (string | boolean)[] | undefined>,
  byName: ReadonlyMap<string, OptionSpec>,
) {
  const cli = new Map<string, OptionValue>();
  const repeated = new Map<string, OptionValue[]>();
  for (const [key, value] of Object.entries(parsed)) {
    const spec = byName.get(key);
    if (!spec || value === undefined) continue;
    if (Array.isArray(value)) {
      const list = repeated.get(spec.name) ?? [];
      list.push(...value.map((v) => ({ value: v, origin: `--${key}` })));
      repeated.set(spec.name, list);
      continue;
    }
    const negated = key.startsWith("no-") && !namesOf(spec).includes(key);
    cli.set(spec.name, { value: negated ? !value : value, origin: `--${key}` });
  }
  return { cli, repeated };
}

/** Each option's value: command line, then environment, then file, then default. */
function resolveValues(
  specs: readonly OptionSpec[],
  cli: ReadonlyMap<string, OptionValue>,
  fromFile: ReadonlyMap<string, OptionValue>,
  io: Io,
): Map<string, OptionValue> {
  const values = new Map<string, OptionValue>();
  for (const spec of specs) {
    const envValue = spec.env ? io.env(spec.env) : undefined;
    const v = cli.get(spec.name) ??
      (envValue === undefined ? undefined : { value: envValue, origin: `env ${spec.env}` }) ??
      fromFile.get(spec.name) ??
      (spec.default === undefined ? undefined : { value: spec.default, origin: "default" });
    if (v === undefined) continue;
    if (spec.type === "boolean" && typeof v.value === "string") {
      const b = parseSwitchWord(v.value);
      if (b === undefined) {
        throw errorAt(v.origin, `${spec.name} must be one of ${SWITCH_WORDS_TEXT}`);
      }
      values.set(spec.name, { value: b, origin: v.origin });
    } else values.set(spec.name, v);
  }
  return values;
}

function logLevelOf(values: ReadonlyMap<string, OptionValue>): LogLevel {
  const value = values.get("log-level");
  if (!value || typeof value.value !== "string") return "info";
  const level = parseLogLevel(value.value);
  if (!level) throw errorAt(value.origin, "log level must be debug, info, warning or error");
  return level;
}

/** Reads a number option: `undefined` if unset, an error naming the source if not `what`. */
function numberReader(values: ReadonlyMap<string, OptionValue>) {
  return (name: string, pattern: RegExp, check: (n: number) => boolean, what: string) => {
    const v = values.get(name);
    if (v === undefined) return undefined;
    const text = String(v.value).trim();
    const n = Number(text);
    if (!pattern.test(text) || !Number.isFinite(n) || !check(n)) {
      throw errorAt(
        v.origin,
        `${name} must be ${what}, not ${text === "" ? "empty" : preview(text, 40)}`,
      );
    }
    return n;
  };
}

/**
 * Parses `argv` for `command`: strict (unknown options are a {@link UsageError}), then fills in
 * each option from the command line, its environment variable, the config file or its default.
 * Returns `"help"` for `--help`, without reading any config.
 */
export async function parseCommand<O extends readonly OptionSpec[]>(
  command: Omit<Command<O>, "run">,
  argv: readonly string[],
  io: Io,
  context: ParseContext = {},
): Promise<ParsedOf<O> | "help"> {
  const specs: readonly OptionSpec[] = [...command.options, HELP_OPTION];
  const table = optionTable(specs);
  const parsed = readArgv(command.name, argv, table);
  const { cli, repeated } = cliValues(parsed.values, table.byName);
  if (cli.get("help")?.value === true) return "help";
  if (!command.positionals && parsed.positionals.length > 0) {
    throw strayArgument(command.name, argv, parsed.positionals[0]!, table.flags);
  }
  const entries = await fileEntries(specs, cli, io, context.cwd ?? Deno.cwd());
  const { fromFile, unknown, prefixed, sections } = await sortEntries(
    entries,
    specs,
    table.byName,
    context,
  );
  const values = resolveValues(specs, cli, fromFile, io);
  const logLevel = logLevelOf(values);
  const redactor = io.redactor ?? new Redactor();
  const sectionValues = [...sections].map(([name, section]) => ({
    name,
    origin: section.origin,
    values: resolveValues(specs, cli, new Map([...fromFile, ...section.fromFile]), io),
  }));
  for (const resolved of [values, ...sectionValues.map((s) => s.values)]) {
    for (const name of SECRET_OPTIONS) {
      const secret = resolved.get(name)?.value;
      if (typeof secret === "string") redactor.add(secret);
    }
  }
  const log = createLogger(logLevel, (line) => io.err(`ess: ${line}\n`), { redactor });
  for (const entry of unknown) {
    const near = await context.suggestKey?.(kebab(entry.key));
    log.warning(
      `${entry.origin}: unknown key "${entry.key}" ignored` +
        (near === undefined ? "" : ` (did you mean ${near}?)`),
    );
  }
  const common = { positionals: parsed.positionals, repeated, prefixed, log, logLevel, io };
  const devices = sectionValues.map(({ name, origin, values }) => ({
    name,
    origin,
    p: parsedOver(values, [], common),
  }));
  return parsedOver(values, devices, common) as ParsedOf<O>;
}

/** What every {@link Parsed} of one command line shares, whichever device it resolves for. */
interface ParsedCommon {
  positionals: string[];
  repeated: ReadonlyMap<string, OptionValue[]>;
  prefixed: ReadonlyMap<string, ConfigEntry[]>;
  log: Logger;
  logLevel: LogLevel;
  io: Io;
}

/** The {@link Parsed} over resolved `values`. */
function parsedOver(
  values: ReadonlyMap<string, OptionValue>,
  devices: readonly DeviceView[],
  { positionals, repeated, prefixed, log, logLevel, io }: ParsedCommon,
): Parsed {
  const numberOf = numberReader(values);
  return {
    positionals,
    get: (name) => values.get(name),
    string: (name) => {
      const v = values.get(name)?.value;
      return typeof v === "string" ? v : undefined;
    },
    all: (name) => repeated.get(name) ?? [],
    prefixed: (name) => prefixed.get(name) ?? [],
    flag: (name) => values.get(name)?.value === true,
    integer: (name, min, max) =>
      numberOf(
        name,
        /^[-+]?\d{1,15}$/,
        (n) => n >= min && n <= max,
        `a whole number from ${min} to ${max}`,
      ),
    seconds: (name, min) =>
      numberOf(
        name,
        /^\d{1,9}(\.\d{1,9})?$/,
        (n) => (min === undefined ? n > 0 : n >= min) && n <= 86400,
        min === undefined
          ? "a number of seconds, like 10 or 2.5"
          : `a number of seconds from ${min} to 86400, like 10 or 2.5`,
      ),
    devices,
    log,
    logLevel,
    io,
  };
}

/** Throws a usage error unless `value` is one of `choices`. */
export function choose<T extends string>(
  value: string | undefined,
  choices: readonly T[],
  what: string,
): T {
  if (value !== undefined && (choices as readonly string[]).includes(value)) return value as T;
  throw new UsageError(
    value === undefined
      ? `missing ${what}: one of ${choices.join(", ")}`
      : `unknown ${what} ${JSON.stringify(value)}: one of ${choices.join(", ")}`,
  );
}
