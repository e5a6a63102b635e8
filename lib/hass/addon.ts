/**
 * ess as a Home Assistant add-on: the options the Supervisor writes to `/data/options.json`,
 * read as config entries, and the MQTT broker the Supervisor offers at `/services/mqtt`.
 *
 * @module
 */
import { type ConfigEntry, deviceNameProblem, MAX_DEVICES, readSmallTextFile } from "../config.ts";
import { readCappedBody } from "../capped_body.ts";
import { ConfigError, errorText, EssError } from "../errors.ts";

/** Where the Supervisor writes the add-on's options. */
export const ADDON_OPTIONS_PATH = "/data/options.json";

/** The largest options file ess reads: the add-on's has a dozen short values. */
const MAX_OPTIONS_BYTES = 64 * 1024;

/** The option that lists several devices, each as a `[device NAME]` section would. */
export const ADDON_DEVICES_OPTION = "devices";

/** What one entry of the add-on's `devices` list may set, besides its name. */
export const ADDON_DEVICE_KEYS: readonly string[] = ["host", "password", "fingerprint"];

/** A JSON value of an option as the text of a config entry; `undefined` for an unset one. */
function optionText(value: unknown, origin: string): string | undefined {
  if (value === null || value === "") return undefined;
  if (typeof value === "string" || typeof value === "boolean") return String(value);
  if (typeof value === "number" && Number.isFinite(value)) return String(value);
  throw new ConfigError(`${origin}: expected a string, a number or true/false`);
}

/**
 * The entries of the add-on's `devices` list: each item `{name, host, password, fingerprint?}`
 * becomes the entries of a `[device NAME]` section, validated as the config file's are (a
 * valid, unreserved and unique name, at most {@link MAX_DEVICES}, something set besides the
 * name), each error naming the item (`options.json: devices[1].name`).
 */
function deviceEntries(value: unknown, file: string): ConfigEntry[] {
  const origin = `${file}: ${ADDON_DEVICES_OPTION}`;
  if (value === null) return [];
  if (!Array.isArray(value)) throw new ConfigError(`${origin}: expected a list of devices`);
  if (value.length > MAX_DEVICES) {
    throw new ConfigError(`${origin}: at most ${MAX_DEVICES} devices, not ${value.length}`);
  }
  const entries: ConfigEntry[] = [];
  const seen = new Map<string, string>();
  value.forEach((item: unknown, i) => {
    const at = `${origin}[${i}]`;
    if (typeof item !== "object" || item === null || Array.isArray(item)) {
      throw new ConfigError(`${at}: expected an object with name, host and password`);
    }
    const { name, ...rest } = item as Record<string, unknown>;
    if (typeof name !== "string" || name === "") {
      throw new ConfigError(`${at}.name: each device needs a name, like garage`);
    }
    const problem = deviceNameProblem(name);
    if (problem !== undefined) throw new ConfigError(`${at}.name: ${problem}`);
    const first = seen.get(name);
    if (first !== undefined) {
      throw new ConfigError(`${at}.name: device ${name} is listed twice (first at ${first})`);
    }
    seen.set(name, at);
    let set = 0;
    for (const [key, raw] of Object.entries(rest)) {
      if (!ADDON_DEVICE_KEYS.includes(key)) {
        throw new ConfigError(
          `${at}.${key.slice(0, 40)}: a device takes ${ADDON_DEVICE_KEYS.join(", ")} and name`,
        );
      }
      const text = optionText(raw, `${at}.${key}`);
      if (text === undefined) continue;
      entries.push({ key, value: text, origin: `${at}.${key}`, device: name, deviceOrigin: at });
      set++;
    }
    if (set === 0) {
      throw new ConfigError(
        `${at}: device ${name} sets nothing: give at least its host and password`,
      );
    }
  });
  return entries;
}

/**
 * Turns the add-on's options (a JSON object of strings, numbers and booleans) into config
 * entries, each with the origin `FILE: KEY`, so that an error names the option. An empty string
 * or `null` leaves an option unset (an empty `ess_host` means: find the device by mDNS). Each
 * string is taken as it is: a password with `!`, `#`, quotes or blanks needs no quoting. The
 * `devices` list, for several devices, becomes the entries of one `[device NAME]` section per
 * item (see `deviceEntries`).
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * deepEqual(
 *   parseAddonOptions('{"ess_host": "", "ess_password": "a!b#c\\"d", "interval_seconds": 10}', "o.json"),
 *   [
 *     { key: "ess_password", value: 'a!b#c"d', origin: "o.json: ess_password" },
 *     { key: "interval_seconds", value: "10", origin: "o.json: interval_seconds" },
 *   ],
 * );
 * deepEqual(
 *   parseAddonOptions('{"devices": [{"name": "garage", "host": "192.168.1.20"}]}', "o.json"),
 *   [{
 *     key: "host",
 *     value: "192.168.1.20",
 *     origin: "o.json: devices[0].host",
 *     device: "garage",
 *     deviceOrigin: "o.json: devices[0]",
 *   }],
 * );
 * ```
 */
export function parseAddonOptions(text: string, file: string): ConfigEntry[] {
  let options: unknown;
  try {
    options = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`${file}: not JSON (${errorText(err)})`);
  }
  if (typeof options !== "object" || options === null || Array.isArray(options)) {
    throw new ConfigError(`${file}: expected a JSON object of options`);
  }
  const entries: ConfigEntry[] = [];
  const devices: ConfigEntry[] = [];
  for (const [key, value] of Object.entries(options)) {
    if (key === ADDON_DEVICES_OPTION) {
      devices.push(...deviceEntries(value, file));
      continue;
    }
    const text = optionText(value, `${file}: ${key}`);
    if (text !== undefined) entries.push({ key, value: text, origin: `${file}: ${key}` });
  }
  // As in the config file, the lines for every device come before the devices' sections.
  return [...entries, ...devices];
}

/** Reads and parses the add-on's options file; a file it cannot read is a {@link ConfigError}. */
export async function loadAddonOptions(path: string): Promise<ConfigEntry[]> {
  const text = await readSmallTextFile(
    path,
    MAX_OPTIONS_BYTES,
    "an add-on options file",
    (why) => new ConfigError(`Cannot read the add-on options ${path}: ${why}`),
  );
  return parseAddonOptions(text, path);
}

/** The broker the Supervisor offers (the Mosquitto broker add-on, usually). */
export interface SupervisorMqtt {
  host: string;
  port: number;
  ssl: boolean;
  username: string | undefined;
  password: string | undefined;
}

/** What {@link supervisorMqtt} needs. */
export interface SupervisorOptions {
  /** The Supervisor's API, `http://supervisor` inside an add-on. */
  baseUrl: string;
  /** The add-on's `SUPERVISOR_TOKEN`. */
  token: string;
  /** A `fetch`-shaped function; default the global one. */
  fetch?: typeof fetch;
  /** Give up after this long, in ms (default 10 s). */
  timeoutMs?: number;
}

/** The largest answer taken from the Supervisor: its MQTT answer is a few hundred bytes. */
const MAX_ANSWER_BYTES = 64 * 1024;

/** The error for a Supervisor that offers no usable broker. */
function noBroker(why: string): EssError {
  return new EssError(
    `the Supervisor offers no MQTT broker (${why}): install and start the Mosquitto broker ` +
      "add-on, or give mqtt_server in the add-on's options",
  );
}

/** A string field of the answer's `data`, if it is one. */
function stringField(data: Record<string, unknown>, key: string): string | undefined {
  const value = data[key];
  return typeof value === "string" && value !== "" ? value : undefined;
}

/**
 * Asks the Supervisor for its MQTT service (`GET /services/mqtt` with the add-on's token), as an
 * add-on with `services: mqtt:want` may. A Supervisor that has none, refuses the token, or
 * answers anything else is an {@link EssError} that says what to do; the error never quotes the
 * answer, which holds the broker's password.
 */
export async function supervisorMqtt(options: SupervisorOptions): Promise<SupervisorMqtt> {
  const url = `${options.baseUrl.replace(/\/+$/, "")}/services/mqtt`;
  let answer: Response;
  try {
    answer = await (options.fetch ?? fetch)(url, {
      headers: { authorization: `Bearer ${options.token}` },
      signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
    });
  } catch (err) {
    throw noBroker(`${url} could not be reached: ${errorText(err)}`);
  }
  const text = await readCappedBody(answer, MAX_ANSWER_BYTES);
  if (answer.status === 401 || answer.status === 403) {
    throw noBroker(`${url} refused the add-on's token, HTTP ${answer.status}`);
  }
  if (!answer.ok) throw noBroker(`${url} answered HTTP ${answer.status}`);
  if (text === undefined) throw noBroker(`${url} sent more than ${MAX_ANSWER_BYTES} bytes`);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw noBroker(`${url} did not answer JSON`);
  }
  const data = (body as { data?: unknown } | null)?.data;
  if (typeof data !== "object" || data === null) throw noBroker(`${url} sent no data`);
  const fields = data as Record<string, unknown>;
  const host = stringField(fields, "host");
  const port = fields["port"];
  if (host === undefined || typeof port !== "number" || !Number.isInteger(port)) {
    throw noBroker(`${url} named no host and port`);
  }
  if (port < 1 || port > 65535) throw noBroker(`${url} named port ${port}`);
  return {
    host,
    port,
    ssl: fields["ssl"] === true,
    username: stringField(fields, "username"),
    password: stringField(fields, "password"),
  };
}
