/**
 * Configuration files in the format pyess's essmqtt read (ConfigArgParse): `key = value`,
 * `key: value`, `key value`, `--key value` or a bare `key` for a flag; `#` and `;` comments;
 * `[section]` lines are ignored. Each entry remembers its file and line, so that errors and
 * warnings can point at them.
 *
 * @module
 */
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

const KEY = "[A-Za-z][A-Za-z0-9_.-]*";
const LINE = new RegExp(`^(?:--)?(${KEY})(?:\\s*[=:]\\s*(.*?)|\\s+(.*?))?(?:\\s+[#;].*)?$`);

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
 * parseConfig("ess_host = 192.168.1.20\n", "/etc/essmqtt.conf");
 * // [{ key: "ess_host", value: "192.168.1.20", origin: "/etc/essmqtt.conf:1" }]
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
    const m = LINE.exec(line);
    if (!m) {
      throw new ConfigError(`${origin}: cannot read this line (expected "key = value")`);
    }
    const value = m[2] ?? m[3];
    entries.push({ key: m[1]!, value: value === undefined ? "true" : unquote(value), origin });
  });
  return entries;
}

/** Reads and parses one config file; a missing or unreadable file is a {@link ConfigError}. */
export async function loadConfigFile(path: string): Promise<ConfigEntry[]> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    const why = err instanceof Deno.errors.NotFound
      ? "no such file"
      : err instanceof Deno.errors.PermissionDenied
      ? "permission denied"
      : (err as Error).message;
    throw new ConfigError(`Cannot read config file ${path}: ${why}`);
  }
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
