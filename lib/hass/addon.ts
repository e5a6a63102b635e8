/**
 * ess as a Home Assistant add-on: the options the Supervisor writes to `/data/options.json`,
 * read as config entries, and the MQTT broker the Supervisor offers at `/services/mqtt`.
 *
 * @module
 */
import { type ConfigEntry, readSmallTextFile } from "../config.ts";
import { readCappedBody } from "../capped_body.ts";
import { ConfigError, errorText, EssError } from "../errors.ts";

/** Where the Supervisor writes the add-on's options. */
export const ADDON_OPTIONS_PATH = "/data/options.json";

/** The largest options file ess reads: the add-on's has a dozen short values. */
const MAX_OPTIONS_BYTES = 64 * 1024;

/**
 * Turns the add-on's options (a JSON object of strings, numbers and booleans) into config
 * entries, each with the origin `FILE: KEY`, so that an error names the option. An empty string
 * or `null` leaves an option unset (an empty `ess_host` means: find the device by mDNS). Each
 * string is taken as it is: a password with `!`, `#`, quotes or blanks needs no quoting.
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
  for (const [key, value] of Object.entries(options)) {
    const origin = `${file}: ${key}`;
    if (value === null || value === "") continue;
    if (typeof value === "string" || typeof value === "boolean") {
      entries.push({ key, value: String(value), origin });
    } else if (typeof value === "number" && Number.isFinite(value)) {
      entries.push({ key, value: String(value), origin });
    } else {
      throw new ConfigError(`${origin}: expected a string, a number or true/false`);
    }
  }
  return entries;
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
