/**
 * The LG ESS client: login (classic and newer firmware), transparent re-login when the auth key
 * expires, the five readable states, the statistics graphs and the controls. It speaks through
 * any fetch-shaped function, so tests replay fixtures and the CLI uses the device transport.
 *
 * @module
 */
import {
  AnswerLimitError,
  AuthError,
  BadAnswerError,
  DeviceRefusedError,
  LoginPathNotFoundError,
  preview,
  UsageError,
  WrongPasswordError,
} from "../errors.ts";
import { exceededLimit, isJsonObject, type Json, type JsonObject } from "./flatten.ts";
import { MAX_AUTH_KEY_LENGTH, MAX_BODY_BYTES } from "./limits.ts";
import {
  type AlgForm,
  algSettingFor,
  algSettingForm,
  backupModeOf,
  BATT_SETTINGS,
  type ChargeStrategy,
} from "./vocabulary.ts";
import { type Logger, silentLogger } from "../log.ts";
import { Redactor } from "../redact.ts";
import {
  BATT_SETTING_PATH,
  type CalendarDate,
  graphDateField,
  type GraphDevice,
  graphPath,
  type GraphSpan,
  LOGIN_PATHS,
  OPERATION_PATH,
  PASSWORD_KEY,
  PASSWORD_PATH,
  STATE_NAMES,
  STATE_PATHS,
  type StateName,
  TIMESYNC_PATH,
} from "./states.ts";
import type { FetchLike } from "./transport.ts";

/** Options of {@link EssClient}. */
export interface EssClientOptions {
  /** Device address, `HOST` or `HOST:PORT` (IPv6 in brackets). */
  host: string;
  /** The device password (its LAN MAC address, lowercase, no colons). */
  password: string;
  /** How requests are sent: the device transport, a test stub, or anything fetch-shaped. */
  fetch: FetchLike;
  /**
   * Where the client logs re-logins and firmware quirks. The client adds the password and every
   * auth key it receives to the logger's redactor, which also cleans every text the client
   * quotes from the device in an error.
   */
  logger?: Logger | undefined;
  /** The clock for timesync. */
  now?: (() => Date) | undefined;
}

/** A statistics graph as the device answers it. */
export interface GraphAnswer extends JsonObject {
  loginfo: JsonObject[];
}

interface Answer {
  status: number;
  text: string;
  json: JsonObject | undefined;
}

/** The length of the auth keys a real device hands out (UUIDs), for messages. */
const AUTH_KEY_EXAMPLE_LENGTH = 36;

/** Auth keys kept in the redactor: the current one and a few before it, which the device may still echo. */
const REDACTED_KEYS = 4;

/**
 * `text` as JSON, or `undefined` if it is not JSON. An answer beyond the limits of limits.ts is
 * an {@link AnswerLimitError}, checked before anything walks it.
 */
function parseAnswer(text: string, host: string, what: string): Json | undefined {
  if (text.length > MAX_BODY_BYTES) {
    throw new AnswerLimitError(
      host,
      `${what} on ${host}: refusing an answer of more than ${MAX_BODY_BYTES} bytes`,
    );
  }
  let json: Json;
  try {
    json = JSON.parse(text);
  } catch {
    return undefined;
  }
  const why = exceededLimit(json);
  if (why !== undefined) {
    throw new AnswerLimitError(
      host,
      `${what} on ${host}: refusing the answer, ${why} (a real LG ESS answer is three levels ` +
        `deep with a few hundred values at most: is ${host} the ESS?)`,
    );
  }
  return json;
}

function isAuthFailure(answer: Answer): boolean {
  if (answer.status === 405) return true;
  const auth = answer.json?.["auth"];
  return typeof auth === "string" && /fail|timeout|expire/i.test(auth);
}

const pad = (n: number) => String(n).padStart(2, "0");

/** `YYYY-MM-DD HH:MM:SS` in UTC, as timesync wants it. */
export function utcStamp(date: Date): string {
  return `${date.getUTCFullYear()}-${pad(date.getUTCMonth() + 1)}-${pad(date.getUTCDate())} ` +
    `${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())}`;
}

/**
 * One LG ESS. Requests never overlap on the device: each waits for the one before it.
 *
 * @example
 * ```ts ignore
 * const client = new EssClient({ host: "192.168.1.20", password: "a1b2c3d4e5f6", fetch: createDeviceFetch() });
 * const home = await client.read("home");
 * await client.setWinterMode(true);
 * ```
 */
export class EssClient {
  /** Device address as given. */
  readonly host: string;
  #password: string;
  #fetch: FetchLike;
  #log: Logger;
  #redactor: Redactor;
  #keys: string[] = [];
  #now: () => Date;
  #authKey: string | undefined;
  #loginPath: string | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  #logins = 0;

  constructor(options: EssClientOptions) {
    this.host = options.host;
    this.#password = options.password;
    this.#fetch = options.fetch;
    this.#log = options.logger ?? silentLogger;
    this.#redactor = options.logger?.redactor ?? new Redactor();
    this.#redactor.add(options.password);
    this.#now = options.now ?? (() => new Date());
  }

  /** The login path that worked (`/v1/user/setting/login` or `/v1/login`), once known. */
  get loginPath(): string | undefined {
    return this.#loginPath;
  }

  /** How many successful logins this client has made. */
  get logins(): number {
    return this.#logins;
  }

  /** Forgets the auth key, so that the next request logs in again. */
  forgetSession(): void {
    this.#authKey = undefined;
  }

  /** Logs in now (requests also log in by themselves when needed). */
  login(): Promise<void> {
    return this.#exclusive(() => this.#login());
  }

  /** Reads one state, with the device's values unchanged. */
  read(state: StateName): Promise<JsonObject> {
    return this.#authed("POST", STATE_PATHS[state], {}, `Reading ${state}`);
  }

  /** Reads several states, in order, keyed by name. */
  async readAll(states: readonly StateName[] = STATE_NAMES): Promise<Record<string, JsonObject>> {
    const result: Record<string, JsonObject> = {};
    for (const state of states) result[state] = await this.read(state);
    return result;
  }

  /** Reads a statistics graph for the day, week, month or year that contains `date`. */
  async graph(device: GraphDevice, span: GraphSpan, date: CalendarDate): Promise<GraphAnswer> {
    const what = `Reading the ${device} ${span} graph`;
    const answer = await this.#authed(
      "POST",
      graphPath(device, span),
      graphDateField(span, date),
      what,
    );
    const rows = answer["loginfo"];
    return { ...answer, loginfo: Array.isArray(rows) ? rows.filter(isJsonObject) : [] };
  }

  /** Starts (`true`) or stops (`false`) the system. */
  setOperation(run: boolean): Promise<void> {
    return this.#control(
      OPERATION_PATH,
      { operation: run ? "start" : "stop" },
      run ? "Starting the system" : "Stopping the system",
    );
  }

  /** Switches winter mode on (`true`) or off (`false`). */
  setWinterMode(on: boolean): Promise<void> {
    return this.#control(
      BATT_SETTING_PATH,
      { [BATT_SETTINGS.winterMode.write]: on ? "on" : "off" },
      `Switching winter mode ${on ? "on" : "off"}`,
    );
  }

  /**
   * Switches fast charge on or off, in the form the device itself reports for `alg_setting`:
   * `on`/`off` on older firmware, `1` (fast charge) / `0` (battery care) on newer (see
   * {@link algSettingFor}).
   */
  async setFastCharge(on: boolean): Promise<void> {
    const value = algSettingFor(on ? "fast-charge" : "battery-care", await this.#algForm())!;
    await this.#control(
      BATT_SETTING_PATH,
      { [BATT_SETTINGS.chargeStrategy.write]: value },
      `Switching fast charge ${on ? "on" : "off"}`,
    );
  }

  /**
   * Sets the charge strategy. Older firmware only knows fast charge on/off, which stand for
   * `fast-charge` and `battery-care`; it has no weather forecast strategy.
   */
  async setChargeStrategy(strategy: ChargeStrategy): Promise<void> {
    const what = `Setting the charge strategy to ${strategy}`;
    const value = algSettingFor(strategy, await this.#algForm());
    if (value === undefined) {
      throw new DeviceRefusedError(
        this.host,
        `${what} on ${this.host}: this firmware only has fast charge on/off`,
      );
    }
    await this.#control(BATT_SETTING_PATH, { [BATT_SETTINGS.chargeStrategy.write]: value }, what);
  }

  /**
   * Switches backup mode on or off, optionally with the reserve to keep (0–100 %). Firmware
   * without backup mode is a {@link DeviceRefusedError} before anything is sent.
   */
  async setBackupMode(on: boolean, reservePercent?: number): Promise<void> {
    const what = `Switching backup mode ${on ? "on" : "off"}`;
    const body: JsonObject = { [BATT_SETTINGS.backupMode.write]: on ? "on" : "off" };
    if (reservePercent !== undefined) {
      if (!Number.isInteger(reservePercent) || reservePercent < 0 || reservePercent > 100) {
        throw new UsageError(
          `backup reserve must be a whole percentage 0-100, not ${reservePercent}`,
        );
      }
      body[BATT_SETTINGS.backupReserve.write] = String(reservePercent);
    }
    await this.#requireBackupMode(what);
    await this.#control(BATT_SETTING_PATH, body, what);
  }

  /**
   * Lets the device charge from the grid to keep the backup reserve (`true`) or not. Firmware
   * without backup mode has no reserve to keep: a {@link DeviceRefusedError} before anything is
   * sent.
   */
  async setGridCharge(on: boolean): Promise<void> {
    const what = `Switching grid charging ${on ? "on" : "off"}`;
    await this.#requireBackupMode(what);
    await this.#control(
      BATT_SETTING_PATH,
      { [BATT_SETTINGS.gridCharge.write]: on ? "1" : "0" },
      what,
    );
  }

  /** Refuses `what` unless the device's battery settings report a backup mode. */
  async #requireBackupMode(what: string): Promise<void> {
    if (backupModeOf(await this.read("batt")) !== undefined) return;
    throw new DeviceRefusedError(
      this.host,
      `${what} on ${this.host}: this firmware has no backup mode (its battery settings ` +
        `report neither ${BATT_SETTINGS.backupMode.read.join(" nor ")})`,
    );
  }

  /** The form the device reports `alg_setting` in; older firmware's when it reports none ess knows. */
  async #algForm(): Promise<AlgForm> {
    return algSettingForm((await this.read("batt"))[BATT_SETTINGS.chargeStrategy.read]) ?? "switch";
  }

  async #control(path: string, body: JsonObject, what: string): Promise<void> {
    const answer = await this.#authed("PUT", path, body, what);
    if (answer["status"] !== "success") {
      throw new DeviceRefusedError(
        this.host,
        `${what} on ${this.host} was refused: the device answered ${
          this.#describe(answer, JSON.stringify(answer))
        }`,
      );
    }
  }

  /**
   * What an answer says, for a message: its status word where it has one (`status "fail"`),
   * else the start of its text; redacted, then shortened.
   */
  #describe(json: JsonObject | undefined, text: string): string {
    const status = json?.["status"];
    if (typeof status === "string") return `status ${preview(this.#redactor.redact(status))}`;
    return preview(this.#redactor.redact(text));
  }

  /** Remembers an auth key as a secret, forgetting the oldest beyond {@link REDACTED_KEYS}. */
  #learnKey(key: string): void {
    if (this.#keys.includes(key)) return;
    this.#redactor.add(key);
    this.#keys.push(key);
    if (this.#keys.length > REDACTED_KEYS) this.#redactor.delete(this.#keys.shift()!);
  }

  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn);
    this.#queue = run.catch(() => {});
    return run;
  }

  #authed(method: string, path: string, body: JsonObject, what: string): Promise<JsonObject> {
    return this.#exclusive(async () => {
      if (this.#authKey === undefined) await this.#login();
      let answer = await this.#send(method, path, { ...body, auth_key: this.#authKey! }, what);
      if (isAuthFailure(answer)) {
        this.#log.debug(`auth key for ${this.host} expired; logging in again`);
        this.#authKey = undefined;
        await this.#login();
        answer = await this.#send(method, path, { ...body, auth_key: this.#authKey! }, what);
        if (isAuthFailure(answer)) {
          this.#authKey = undefined;
          throw new AuthError(
            this.host,
            `${what} on ${this.host}: the device refused a fresh auth key (is another client, ` +
              `such as the phone app, logging in all the time?)`,
          );
        }
      }
      return this.#expectObject(answer, what);
    });
  }

  #expectObject(answer: Answer, what: string): JsonObject {
    if (answer.json === undefined) {
      throw new BadAnswerError(
        this.host,
        what,
        answer.status,
        this.#redactor.redact(answer.text),
      );
    }
    if (answer.status < 200 || answer.status >= 300) {
      throw new DeviceRefusedError(
        this.host,
        `${what} on ${this.host} failed: HTTP ${answer.status}, ${
          this.#describe(answer.json, answer.text)
        }`,
      );
    }
    return answer.json;
  }

  async #send(method: string, path: string, body: JsonObject, what: string): Promise<Answer> {
    const res = await this.#fetch(`https://${this.host}${path}`, {
      method,
      headers: { "content-type": "application/json", "accept": "application/json" },
      body: JSON.stringify(body),
    });
    const text = await res.text();
    const json = parseAnswer(text, this.host, what);
    this.#log.debug(`${method} ${path} -> HTTP ${res.status}`);
    return { status: res.status, text, json: isJsonObject(json) ? json : undefined };
  }

  async #login(): Promise<void> {
    const paths = [...new Set([this.#loginPath ?? LOGIN_PATHS[0], ...LOGIN_PATHS])];
    for (const path of paths) {
      const answer = await this.#send("PUT", path, { password: this.#password }, "Login");
      const offered = answer.json?.["auth_key"];
      if (typeof offered === "string" && offered.length > MAX_AUTH_KEY_LENGTH) {
        // Neither learnt nor quoted: the answer is refused before anything can quote it.
        throw new AnswerLimitError(
          this.host,
          `Login on ${this.host}: refusing an auth key of ${offered.length} characters (the ` +
            `device hands out ${AUTH_KEY_EXAMPLE_LENGTH}-character keys, at most ` +
            `${MAX_AUTH_KEY_LENGTH} are taken): is ${this.host} the ESS?`,
        );
      }
      // Before anything can quote this answer: a key in a failed login is still a secret.
      if (typeof offered === "string") this.#learnKey(offered);
      if (answer.status === 404) {
        this.#log.debug(`no login at ${path} on ${this.host} (404)`);
        continue;
      }
      const json = this.#expectObject(answer, "Login");
      const status = json["status"];
      const key = json["auth_key"];
      if (status === "success" && typeof key === "string" && key !== "") {
        if (this.#loginPath !== path) this.#log.debug(`logging in to ${this.host} at ${path}`);
        this.#loginPath = path;
        this.#authKey = key;
        this.#logins++;
        await this.#timesync(key);
        return;
      }
      if (typeof status === "string" && /mismatch|wrong|invalid|incorrect/i.test(status)) {
        throw new WrongPasswordError(this.host);
      }
      throw new DeviceRefusedError(
        this.host,
        `Login on ${this.host} failed: the device answered ${this.#describe(json, answer.text)}`,
      );
    }
    throw new LoginPathNotFoundError(this.host, paths);
  }

  async #timesync(key: string): Promise<void> {
    const answer = await this.#send("PUT", TIMESYNC_PATH, {
      auth_key: key,
      by: "phone",
      date_time: utcStamp(this.#now()),
    }, "Timesync");
    if (answer.status === 404) {
      this.#log.debug(`no timesync on ${this.host} (404): not needed on this firmware`);
    } else if (answer.json?.["status"] !== "success") {
      this.#log.warning(
        `timesync on ${this.host} gave HTTP ${answer.status}, ${
          this.#describe(answer.json, answer.text)
        }`,
      );
    }
  }
}

/**
 * Reads the device password. The device only answers on its own Wi-Fi access point
 * (`192.168.23.1`).
 */
export async function readDevicePassword(fetch: FetchLike, host: string): Promise<string> {
  const res = await fetch(`https://${host}${PASSWORD_PATH}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ key: PASSWORD_KEY }),
  });
  const text = await res.text();
  const json = parseAnswer(text, host, "Reading the password");
  if (json === undefined) throw new BadAnswerError(host, "Reading the password", res.status, text);
  const password = isJsonObject(json) ? json["password"] : undefined;
  if (isJsonObject(json) && json["status"] === "success" && typeof password === "string") {
    return password;
  }
  throw new DeviceRefusedError(
    host,
    `${host} would not tell its password: connect to the device's own Wi-Fi ` +
      `("LGE_ESS-…") first, then run 'ess password' again`,
  );
}
