/**
 * What every command shares: the option table and its parsing (command line > environment >
 * config file > defaults), help text, output, and the device connection.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { type ConfigEntry, loadConfigFile, loadDefaultConfig } from "../lib/config.ts";
import { parseSwitchWord, SWITCH_WORDS_TEXT } from "../lib/device/vocabulary.ts";
import { ConfigError, EssError, UsageError } from "../lib/errors.ts";
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

/** Options whose values are secrets: they are redacted wherever a message would quote them. */
const SECRET_OPTIONS = ["password", "mqtt-password"];

function writeAll(file: { writeSync(p: Uint8Array): number }, text: string): void {
  let bytes = new TextEncoder().encode(text);
  while (bytes.length > 0) bytes = bytes.subarray(file.writeSync(bytes));
}

/** The process's own stdout, stderr and environment (an empty variable counts as unset). */
export const processIo: Io = {
  out: (text) => writeAll(Deno.stdout, text),
  err: (text) => writeAll(Deno.stderr, text),
  stdoutIsTerminal: Deno.stdout.isTerminal(),
  stderrIsTerminal: Deno.stderr.isTerminal(),
  env: (name) => Deno.env.get(name) || undefined,
};

/** One option of a command. Long names are kebab-case; each also answers to its snake_case. */
export interface OptionSpec {
  name: string;
  type: "string" | "boolean";
  help: string;
  /** Placeholder in help (`HOST[:PORT]`). */
  arg?: string;
  /** Other long names (pyess's spellings). */
  aliases?: readonly string[];
  short?: string;
  /** Environment variable that sets it. */
  env?: string;
  /** Whether a config file may set it (default true). */
  config?: boolean;
  default?: string | boolean;
  /** Section heading in help. */
  group?: string;
}

/** An option's value and where it came from, for error messages. */
export interface OptionValue {
  value: string | boolean;
  origin: string;
}

const snake = (name: string) => name.replaceAll("-", "_");
const kebab = (name: string) => name.replaceAll("_", "-");
const namesOf = (spec: OptionSpec) => [
  ...new Set([spec.name, ...(spec.aliases ?? [])].flatMap((n) => [kebab(n), snake(n)])),
];

/** Options shared by all commands. */
export const HELP_OPTION: OptionSpec = {
  name: "help",
  short: "h",
  type: "boolean",
  help: "show this help",
  config: false,
  group: "General",
};

/** `--config`, `--log-level`: every command but `simulate` takes them. */
export const GENERAL_OPTIONS: readonly OptionSpec[] = [
  {
    name: "config",
    aliases: ["config-file"],
    type: "string",
    arg: "FILE",
    help:
      "config file (default: /etc/essmqtt.conf, then ~/.essmqtt.conf and ~/essmqtt.conf where present)",
    config: false,
    env: "ESS_CONFIG",
    group: "General",
  },
  {
    name: "log-level",
    aliases: ["loglevel"],
    type: "string",
    arg: "LEVEL",
    help: "debug, info, warning or error",
    default: "info",
    env: "ESS_LOG_LEVEL",
    group: "General",
  },
];

/** Options of every command that talks to the device. */
export const DEVICE_OPTIONS: readonly OptionSpec[] = [
  {
    name: "host",
    aliases: ["ess-host"],
    type: "string",
    arg: "HOST[:PORT]",
    help: "the ESS's address (default: find it by mDNS)",
    env: "ESS_HOST",
    group: "Device",
  },
  {
    name: "name",
    aliases: ["ess-name"],
    type: "string",
    arg: "NAME",
    help: "without --host: the ESS to find by mDNS when several answer (LGE_ESS-NAME)",
    env: "ESS_NAME",
    group: "Device",
  },
  {
    name: "password",
    aliases: ["ess-password"],
    type: "string",
    arg: "PASSWORD",
    help: "device password: its wired LAN MAC, lowercase, no colons (see 'ess password')",
    env: "ESS_PASSWORD",
    group: "Device",
  },
  {
    name: "fingerprint",
    type: "string",
    arg: "SHA256",
    help: "accept only the device certificate with this fingerprint (see --show-fingerprint)",
    env: "ESS_FINGERPRINT",
    group: "Device",
  },
  {
    name: "timeout",
    type: "string",
    arg: "SECONDS",
    help: "give up on a device request after this long",
    default: "10",
    group: "Device",
  },
];

/** A subcommand as `main.ts` sees it. */
export interface Command {
  name: string;
  usage: string;
  description: string;
  options: readonly OptionSpec[];
  examples: readonly string[];
  /** Whether it takes arguments besides options; without, {@link parseCommand} refuses any. */
  positionals?: boolean;
  run(argv: string[], io: Io): Promise<number>;
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

/** The parsed command line of one command, with options resolved from every source. */
export interface Parsed {
  positionals: string[];
  /** An option's value, if any source set it. */
  get(name: string): OptionValue | undefined;
  string(name: string): string | undefined;
  flag(name: string): boolean;
  /** A whole number option within bounds; a bad value is a usage or config error. */
  integer(name: string, min: number, max: number): number | undefined;
  /** A positive number of seconds (fractions allowed). */
  seconds(name: string): number | undefined;
  log: Logger;
  logLevel: LogLevel;
  io: Io;
}

function errorAt(origin: string, message: string): EssError {
  return origin.includes(":") && !origin.startsWith("--") && !origin.startsWith("env ")
    ? new ConfigError(`${origin}: ${message}`)
    : new UsageError(`${origin}: ${message}`);
}

/**
 * Whether any command of ess has an option called `key`. One config file serves every command
 * (`ess data` reads the daemon's /etc/essmqtt.conf), so only a key no command knows is worth a
 * warning. The other commands load only when a key is foreign to the running one.
 */
async function isKnownKey(key: string): Promise<boolean> {
  const { COMMANDS } = await import("./_registry.ts");
  for (const entry of Object.values(COMMANDS)) {
    const { options } = (await entry.load()).default;
    if ([...options, HELP_OPTION].some((spec) => namesOf(spec).includes(kebab(key)))) return true;
  }
  return false;
}

/**
 * Parses `argv` for `command`: strict (unknown options are a {@link UsageError}), then fills in
 * each option from the command line, its environment variable, the config file or its default.
 * Returns `undefined` after printing help for `--help`.
 */
export async function parseCommand(
  command: Omit<Command, "run">,
  argv: string[],
  io: Io,
): Promise<Parsed | undefined> {
  const specs = [...command.options, HELP_OPTION];
  const byName = new Map<string, OptionSpec>();
  const options: Record<string, { type: "string" | "boolean"; short?: string }> = {};
  for (const spec of specs) {
    for (const n of namesOf(spec)) {
      byName.set(n, spec);
      options[n] = spec.short && n === spec.name
        ? { type: spec.type, short: spec.short }
        : { type: spec.type };
      if (spec.type === "boolean") {
        byName.set(`no-${n}`, spec);
        options[`no-${n}`] = { type: "boolean" };
      }
    }
  }
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: argv, options, strict: true, allowPositionals: true });
  } catch (err) {
    const text = (err as Error).message;
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
    throw new UsageError(`ess ${command.name}: ${why}; see 'ess ${command.name} --help'`);
  }

  const cli = new Map<string, OptionValue>();
  for (const [key, value] of Object.entries(parsed.values)) {
    const spec = byName.get(key);
    if (!spec || value === undefined) continue;
    const negated = key.startsWith("no-") && !namesOf(spec).includes(key);
    cli.set(spec.name, {
      value: negated ? !value : value as string | boolean,
      origin: `--${key}`,
    });
  }
  if (cli.get("help")?.value === true) {
    io.out(helpText(command));
    return undefined;
  }
  if (!command.positionals && parsed.positionals.length > 0) {
    throw new UsageError(
      `ess ${command.name} takes no arguments (got ${JSON.stringify(parsed.positionals[0])})`,
    );
  }

  const configSpec = specs.find((s) => s.name === "config");
  let entries: ConfigEntry[] = [];
  if (configSpec) {
    const path = cli.get("config")?.value ?? io.env("ESS_CONFIG");
    entries = typeof path === "string"
      ? await loadConfigFile(path)
      : await loadDefaultConfig(io.env("HOME"));
  }
  const fromFile = new Map<string, OptionValue>();
  const unknown: ConfigEntry[] = [];
  for (const entry of entries) {
    const spec = byName.get(kebab(entry.key)) ?? byName.get(snake(entry.key));
    if (spec && spec.config !== false) {
      fromFile.set(spec.name, { value: entry.value, origin: entry.origin });
    } else if (!spec && !await isKnownKey(entry.key)) unknown.push(entry);
  }

  const resolve = (spec: OptionSpec): OptionValue | undefined => {
    const fromCli = cli.get(spec.name);
    if (fromCli) return fromCli;
    const envValue = spec.env ? io.env(spec.env) : undefined;
    if (envValue !== undefined) {
      return { value: envValue, origin: `env ${spec.env}` };
    }
    const file = fromFile.get(spec.name);
    if (file) return file;
    return spec.default === undefined ? undefined : { value: spec.default, origin: "default" };
  };
  const values = new Map<string, OptionValue>();
  for (const spec of specs) {
    const v = resolve(spec);
    if (v === undefined) continue;
    if (spec.type === "boolean" && typeof v.value === "string") {
      const b = parseSwitchWord(v.value);
      if (b === undefined) {
        throw errorAt(v.origin, `${spec.name} must be one of ${SWITCH_WORDS_TEXT}`);
      }
      values.set(spec.name, { value: b, origin: v.origin });
    } else values.set(spec.name, v);
  }

  const levelValue = values.get("log-level");
  let logLevel: LogLevel = "info";
  if (levelValue && typeof levelValue.value === "string") {
    const level = parseLogLevel(levelValue.value);
    if (!level) {
      throw errorAt(levelValue.origin, "log level must be debug, info, warning or error");
    }
    logLevel = level;
  }
  const redactor = io.redactor ?? new Redactor();
  for (const name of SECRET_OPTIONS) {
    const secret = values.get(name)?.value;
    if (typeof secret === "string") redactor.add(secret);
  }
  const log = createLogger(logLevel, (line) => io.err(`ess: ${line}\n`), { redactor });
  for (const entry of unknown) log.warning(`${entry.origin}: unknown key "${entry.key}" ignored`);

  const string = (name: string) => {
    const v = values.get(name)?.value;
    return typeof v === "string" ? v : undefined;
  };
  const numberOf = (name: string, check: (n: number) => boolean, what: string) => {
    const v = values.get(name);
    if (v === undefined) return undefined;
    const text = String(v.value).trim();
    const n = Number(text);
    if (text === "" || !Number.isFinite(n) || !check(n)) {
      throw errorAt(v.origin, `${name} must be ${what}, not ${JSON.stringify(text)}`);
    }
    return n;
  };
  return {
    positionals: parsed.positionals,
    get: (name) => values.get(name),
    string,
    flag: (name) => values.get(name)?.value === true,
    integer: (name, min, max) =>
      numberOf(
        name,
        (n) => Number.isInteger(n) && n >= min && n <= max,
        `a whole number from ${min} to ${max}`,
      ),
    seconds: (name) => numberOf(name, (n) => n > 0 && n <= 86400, "a number of seconds"),
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
