/**
 * Configuration files in the format pyess's essmqtt read (ConfigArgParse): `key = value`,
 * `key: value`, `key value`, `--key value` or a bare `key` for a flag; `#` and `;` comments.
 * A `[device NAME]` line starts the options of one device of several (see {@link parseConfig});
 * any other `[section]` line is ignored, as ConfigArgParse did. Each entry remembers its file
 * and line, so that errors and warnings can point at them.
 *
 * @module
 */
import { resolve } from "node:path";
import { ConfigError } from "./errors.ts";

/** One `key = value` line of a config file. */
export interface ConfigEntry {
  /** The key as written, without a leading `--`. */
  key: string;
  /** The value, unquoted; `"true"` for a bare flag. */
  value: string;
  /** `file:line`, for messages. */
  origin: string;
  /** The `[device NAME]` section the line is in; absent for the lines before the first one. */
  device?: string;
  /** `file:line` of that section's header. */
  deviceOrigin?: string;
}

/**
 * How a device is named in a `[device NAME]` header, in topics (`ess/garage/…`) and in URLs
 * (`/api/control/garage/…`): a lowercase letter or digit, then up to 31 of those, `-` and `_`.
 */
export const DEVICE_NAME = /^[a-z0-9][a-z0-9_-]{0,31}$/;

/**
 * Names no device may have: the topics and paths that sit beside the devices' own
 * (`ess/status`, the process's status; `/api/state`'s `site`, the sum of all devices), and
 * pyess's first levels, so that a device's topics never mix with a single device's.
 */
export const RESERVED_DEVICE_NAMES: ReadonlySet<string> = new Set([
  "status",
  "control",
  "home",
  "common",
  "batt",
  "json",
  "reading",
  "surplus",
  "site",
  "bridge",
  "all",
]);

/** The most devices one config declares: one process bridges a household's, not a fleet's. */
export const MAX_DEVICES = 16;

/**
 * What two device names must not share: Home Assistant's entity ids spell `-` as `_`, so
 * `garage-1` and `garage_1` would collide there.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * equal(deviceNameKey("garage-1"), deviceNameKey("garage_1"));
 * ```
 */
export function deviceNameKey(name: string): string {
  return name.replaceAll("-", "_");
}

/** Why `name` cannot name a device, or `undefined` when it can. */
export function deviceNameProblem(name: string): string | undefined {
  if (!DEVICE_NAME.test(name)) {
    return `a device name is 1 to 32 lowercase letters, digits, "-" and "_", starting with a ` +
      `letter or digit (it becomes part of topics and URLs), not ${
        JSON.stringify(name.slice(0, 40))
      }`;
  }
  if (RESERVED_DEVICE_NAMES.has(name)) {
    return `"${name}" is taken by ess's own topics and pages; call the device something else`;
  }
  return undefined;
}

/**
 * A valid device name made of `text` (a registration number such as `DE1234567890`, a label):
 * lower case, any run of other characters a `-`, cut to fit, `ess` when nothing is left or the
 * name is reserved, then `-2`, `-3`, … until neither it nor its twin in `-` and `_`
 * ({@link deviceNameKey}) is one of `taken`.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * equal(deviceNameFrom("DE1234567890", new Set()), "de1234567890");
 * equal(deviceNameFrom("Status", new Set()), "ess");
 * equal(deviceNameFrom("de 12", new Set(["de-12"])), "de-12-2");
 * equal(deviceNameFrom("de_12", new Set(["de-12"])), "de_12-2");
 * ```
 */
export function deviceNameFrom(text: string, taken: ReadonlySet<string>): string {
  let base = text.toLowerCase().replace(/[^a-z0-9_-]+/g, "-").replace(/^[-_]+|-+$/g, "");
  base = base.slice(0, 28).replace(/-+$/, "");
  if (base === "" || deviceNameProblem(base) !== undefined) base = "ess";
  const keys = new Set([...taken].map(deviceNameKey));
  let name = base;
  for (let n = 2; keys.has(deviceNameKey(name)) || deviceNameProblem(name) !== undefined; n++) {
    name = `${base}-${n}`;
  }
  return name;
}

/** Where pyess looked for its config, in order; later files override earlier ones. */
export function defaultConfigPaths(home: string | undefined): string[] {
  const paths = ["/etc/essmqtt.conf"];
  if (home) paths.push(`${home}/.essmqtt.conf`, `${home}/essmqtt.conf`);
  return paths;
}

/** A key at the start of a line, after an optional `--`. */
const KEY = /^(?:--)?([A-Za-z][A-Za-z0-9_.-]*)/;
/** What separates a key from its value: `=` or `:` with blanks around, or blanks alone. */
const SEPARATOR = /^\s*[=:]\s*|^\s+/;

/**
 * A trimmed line's key and its value (`undefined` for a bare flag), or `undefined` when the line
 * is none of the forms. A value ends at a blank followed by `#` or `;` (a trailing comment).
 * Each step is a regular expression that cannot backtrack, so a line of a million blanks
 * costs a million steps, not a million squared.
 */
function splitLine(line: string): { key: string; value: string | undefined } | undefined {
  const key = KEY.exec(line);
  if (!key) return undefined;
  const rest = line.slice(key[0].length);
  if (rest === "") return { key: key[1]!, value: undefined };
  const separator = SEPARATOR.exec(rest);
  if (!separator) return undefined;
  const value = rest.slice(separator[0].length);
  // The blank right before the comment is the last of its run: trimEnd() drops the others.
  const comment = value.search(/\s[#;]/);
  return { key: key[1]!, value: comment < 0 ? value : value.slice(0, comment).trimEnd() };
}

function unquote(value: string): string {
  const m = /^(["'])(.*)\1$/.exec(value);
  return m ? m[2]! : value;
}

/** A `[device NAME]` header's name (`undefined` for any other section), or a problem with it. */
function sectionDevice(
  line: string,
  origin: string,
  seen: Map<string, string>,
): string | undefined {
  const header = /^\[\s*device(?:\s+(.*?))?\s*\]$/i.exec(line);
  if (!header) return undefined;
  const name = header[1];
  if (name === undefined || name === "") {
    throw new ConfigError(`${origin}: a device section needs a name, like [device garage]`);
  }
  const problem = deviceNameProblem(name);
  if (problem !== undefined) throw new ConfigError(`${origin}: ${problem}`);
  const first = seen.get(name);
  if (first !== undefined) {
    throw new ConfigError(`${origin}: device ${name} is declared twice (first at ${first})`);
  }
  const twin = [...seen.keys()].find((other) => deviceNameKey(other) === deviceNameKey(name));
  if (twin !== undefined) {
    throw new ConfigError(
      `${origin}: device ${name} and device ${twin} (at ${seen.get(twin)}) differ only in ` +
        `"-" and "_", which Home Assistant's entity ids do not tell apart: rename one`,
    );
  }
  if (seen.size >= MAX_DEVICES) {
    throw new ConfigError(`${origin}: at most ${MAX_DEVICES} devices in one config`);
  }
  seen.set(name, origin);
  return name;
}

/**
 * Parses config text. A line that is none of the accepted forms is a {@link ConfigError} naming
 * the file and line (but not the line's text, which may hold a password).
 *
 * Several devices are declared each in its own `[device NAME]` section: the lines after the
 * header, up to the next section, carry its name in {@link ConfigEntry.device}. Any other
 * section header ends the device's lines and is otherwise ignored.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * deepEqual(parseConfig("ess_host = 192.168.1.20\n", "/etc/essmqtt.conf"), [
 *   { key: "ess_host", value: "192.168.1.20", origin: "/etc/essmqtt.conf:1" },
 * ]);
 * ```
 */
export function parseConfig(text: string, file: string): ConfigEntry[] {
  const entries: ConfigEntry[] = [];
  const devices = new Map<string, string>();
  let device: string | undefined;
  let deviceOrigin = "";
  let deviceLines = 0;
  /** A device section ends: it must have set something, or it declares a device it cannot reach. */
  const endSection = () => {
    if (device !== undefined && deviceLines === 0) {
      throw new ConfigError(
        `${deviceOrigin}: [device ${device}] sets nothing: give at least its host and password`,
      );
    }
  };
  text.split(/\r?\n/).forEach((raw, i) => {
    const origin = `${file}:${i + 1}`;
    const line = raw.trim();
    if (line === "" || /^[#;]/.test(line) || /^---/.test(line)) return;
    if (line.startsWith("[")) {
      if (!/^\[[^\]]*\]$/.test(line)) {
        throw new ConfigError(`${origin}: malformed section header (expected [name])`);
      }
      endSection();
      device = sectionDevice(line, origin, devices);
      deviceOrigin = origin;
      deviceLines = 0;
      return;
    }
    const entry = splitLine(line);
    if (!entry) {
      throw new ConfigError(`${origin}: cannot read this line (expected "key = value")`);
    }
    const { key, value } = entry;
    deviceLines++;
    entries.push({
      key,
      value: value === undefined ? "true" : unquote(value),
      origin,
      ...(device === undefined ? {} : { device, deviceOrigin }),
    });
  });
  endSection();
  return entries;
}

/** The largest config file ess reads: a real one is a few hundred bytes. */
export const MAX_CONFIG_BYTES = 1024 * 1024;

/** What a file that is not a regular file is, for a message. */
function kindOf(info: Deno.FileInfo): string {
  if (info.isDirectory) return "a directory";
  if (info.isFifo) return "a named pipe (FIFO)";
  if (info.isSocket) return "a socket";
  if (info.isCharDevice || info.isBlockDevice) return "a device";
  return "not a regular file";
}

/** Reads at most `max` + 1 bytes of `path`, so that a file that grew after `stat` stays bounded. */
async function readBounded(path: string, max: number): Promise<Uint8Array> {
  using file = await Deno.open(path);
  const buffer = new Uint8Array(max + 1);
  let length = 0;
  while (length < buffer.length) {
    const n = await file.read(buffer.subarray(length));
    if (n === null) break;
    length += n;
  }
  return buffer.subarray(0, length);
}

/** Why a file cannot be read, before the caller says which file it is. */
class Unreadable extends Error {}

/**
 * The text of a small regular file. Only a regular file of at most `maxBytes` in UTF-8 is read;
 * anything else (a directory, a FIFO, which would block the read until a writer comes,
 * `/dev/zero`, which never ends, a file too large, a missing or unreadable one) is the error
 * `refuse` makes of why (`it is a directory, not a regular file`), raised before the file is
 * opened wherever `stat` can tell. `what` names such a file in the size limit's message.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * const refuse = (why: string) => new Error(`Cannot read /dev/zero: ${why}`);
 * const error = await readSmallTextFile("/dev/zero", 1024, "a CA file", refuse).catch((e) => e);
 * equal(error.message, "Cannot read /dev/zero: it is a device, not a regular file");
 * ```
 */
export async function readSmallTextFile(
  path: string,
  maxBytes: number,
  what: string,
  refuse: (why: string) => Error,
): Promise<string> {
  let bytes: Uint8Array;
  try {
    const info = await Deno.stat(path);
    if (!info.isFile) throw new Unreadable(`it is ${kindOf(info)}, not a regular file`);
    if (info.size > maxBytes) {
      throw new Unreadable(`it is ${info.size} bytes; ${what} may have at most ${maxBytes}`);
    }
    bytes = await readBounded(path, maxBytes);
  } catch (err) {
    throw refuse(
      err instanceof Unreadable
        ? err.message
        : err instanceof Deno.errors.NotFound
        ? "no such file"
        : err instanceof Deno.errors.PermissionDenied
        ? "permission denied"
        : (err as Error).message,
    );
  }
  if (bytes.length > maxBytes) throw refuse(`it grew past ${maxBytes} bytes while being read`);
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw refuse("it is not UTF-8 text");
  }
}

/**
 * Reads and parses one config file: a regular file of at most {@link MAX_CONFIG_BYTES} in
 * UTF-8 (see {@link readSmallTextFile}), or `/dev/null`, the usual way to say "no file". A file
 * it cannot read is a {@link ConfigError} naming the absolute path and why.
 */
export async function loadConfigFile(path: string): Promise<ConfigEntry[]> {
  const absolute = resolve(path);
  if (absolute === "/dev/null") return [];
  const text = await readSmallTextFile(
    absolute,
    MAX_CONFIG_BYTES,
    "a config file",
    (why) => new ConfigError(`Cannot read config file ${absolute}: ${why}`),
  );
  return parseConfig(text, path);
}

/** Reads every default config file that exists, in order. */
export async function loadDefaultConfig(home: string | undefined): Promise<ConfigEntry[]> {
  const entries: ConfigEntry[] = [];
  for (const path of defaultConfigPaths(home)) {
    try {
      await Deno.stat(path);
    } catch {
      continue;
    }
    entries.push(...await loadConfigFile(path));
  }
  return entries;
}
