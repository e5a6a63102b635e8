/**
 * Configuration files in the format pyess's essmqtt read (ConfigArgParse): `key = value`,
 * `key: value`, `key value`, `--key value` or a bare `key` for a flag; `#` and `;` comments;
 * `[section]` lines are ignored. Each entry remembers its file and line, so that errors and
 * warnings can point at them.
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

/**
 * Parses config text. A line that is none of the accepted forms is a {@link ConfigError} naming
 * the file and line (but not the line's text, which may hold a password).
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
  text.split(/\r?\n/).forEach((raw, i) => {
    const origin = `${file}:${i + 1}`;
    const line = raw.trim();
    if (line === "" || /^[#;]/.test(line) || /^---/.test(line)) return;
    if (line.startsWith("[")) {
      if (/^\[[^\]]*\]$/.test(line)) return;
      throw new ConfigError(`${origin}: malformed section header (expected [name])`);
    }
    const entry = splitLine(line);
    if (!entry) {
      throw new ConfigError(`${origin}: cannot read this line (expected "key = value")`);
    }
    const { key, value } = entry;
    entries.push({ key, value: value === undefined ? "true" : unquote(value), origin });
  });
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
