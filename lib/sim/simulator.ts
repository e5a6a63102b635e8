/**
 * A simulated LG ESS that serves the device's HTTPS JSON API on loopback (or any address), for
 * the demo, for tests, and for anyone without the hardware. Behind the API is a house model
 * (see `SimDevice`); in front of it, faults on demand: expiring auth keys, nginx 502 pages,
 * latency and refused connections.
 *
 * @module
 */
import https from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { errorText, EssError } from "../errors.ts";
import { isJsonObject, type Json, type JsonObject } from "../device/flatten.ts";
import { type Logger, silentLogger } from "../log.ts";
import * as api from "../device/states.ts";
import type { StateName } from "../device/states.ts";
import { SIM_CERT, SIM_KEY } from "./_cert.ts";
import { SimDevice } from "./_device.ts";
import type { Firmware, SimModel } from "./_model.ts";
import { seededRandom } from "../backoff.ts";

export type { SimDevice } from "./_device.ts";
export type { Energy, Firmware, Flows, SimModel } from "./_model.ts";
export {
  BATTERY_MAX_W,
  BATTERY_WH,
  GRID_CHARGE_W,
  PV_CAPACITY,
  SIM_MODELS,
  WINTER_RESERVE,
} from "./_model.ts";

/** The simulator's password unless told otherwise: a made-up MAC address, like a real one. */
export const DEFAULT_PASSWORD = "a1b2c3d4e5f6";

/** What an mDNS announcer gets to know about the simulator (a subset of mdns_announce.ts's). */
export interface AnnounceInfo {
  /** Registration number: the instance is `LGE_ESS-<name>._pmsctrl._tcp.local.`. */
  name: string;
  /** Port of the HTTPS API. */
  port: number;
  /** IPv4 address for the A record: the one the simulator listens on, unless a wildcard. */
  address?: string;
  /** The interface to announce on, if not the default one. */
  interfaceAddress?: string;
}

/** Starts an mDNS announcement; the result says when it is on air and stops it. */
export type Announce = (info: AnnounceInfo) => { ready?: Promise<void>; close(): Promise<void> };

/** Options of {@link startSimulator}. */
export interface SimulatorOptions {
  /** Address to listen on; default `127.0.0.1`. */
  hostname?: string;
  /** Port to listen on; default 0, a free one. */
  port?: number;
  /** The password the device accepts; default {@link DEFAULT_PASSWORD}. */
  password?: string;
  /**
   * `classic` (default): login at `/v1/user/setting/login`, timesync, `alg_setting` `on`/`off`.
   * `new`: that login answers 404, login is `/v1/login`, no timesync (404), `alg_setting`
   * `0`/`1`/`2`. `words`: `new`'s endpoints with the Home 10 answers recorded as D010KE1N211
   * (`alg_setting` reported in words, written in digits; `safety_soc`).
   */
  firmware?: Firmware;
  /**
   * Whose answers, field for field: `home10` (default; the shape of the firmware), `home5`, or
   * `home15` (JSON numbers, 0.1 kW, `ess[]` units, `alg_setting` in words).
   */
  model?: SimModel;
  /** The clock the house lives by; a fast one makes a fast day. */
  now?: () => Date;
  /** Seed of everything random (readings, history, which answers fail); default 1. */
  seed?: number;
  /** Registration number; default `SIM` and the seed in ten digits. */
  name?: string;
  /** Peak power of the panels in W; default {@link PV_CAPACITY}. */
  pvCapacityW?: number;
  /** The household's draw relative to the usual one; default 1. */
  loadScale?: number;
  /** Auth keys expire this long after login; default never. */
  keyLifetimeSeconds?: number;
  /** Share (0 to 1) of answers that become nginx 502 pages; default 0. */
  errorRate?: number;
  /** Added to every answer, in ms; default 0. */
  latencyMs?: number;
  /**
   * Announce `LGE_ESS-<name>._pmsctrl._tcp.local.` by mDNS, on one interface if given. Off by
   * default: it sends multicast.
   */
  mdns?: boolean | { interfaceAddress?: string };
  /** The mDNS announcer that {@link SimulatorOptions.mdns} uses; default mdns_announce.ts's. */
  announce?: Announce;
  /** Where requests are logged (debug). */
  logger?: Logger;
  /**
   * Keep every request in {@link Simulator.requests}, for tests (default true). `ess simulate`
   * turns it off: it runs for days, and the list would only grow.
   */
  recordRequests?: boolean;
  /**
   * Keys added to the top level of each answer of a state, asked for at every request: for
   * tests and benchmarks of a device that sends odd keys, or new ones every poll.
   */
  extraKeys?: (state: StateName) => JsonObject | undefined;
}

/** One request as it reached the simulated device. */
export interface SimRequest {
  /** `POST`, `PUT`, … */
  method: string;
  /** The path with doubled slashes collapsed. */
  path: string;
  /** The parsed JSON body, or `undefined` if there was none or it was not JSON. */
  body: Json | undefined;
  /** The HTTP status it was answered with (0 while still being answered). */
  status: number;
}

/** Faults that can be changed while the simulator runs. */
export interface SimFaults {
  /** Share (0 to 1) of answers that become nginx 502 pages. */
  errorRate?: number;
  /** Added to every answer, in ms. */
  latencyMs?: number;
  /** Auth keys expire this long after login. */
  keyLifetimeSeconds?: number;
}

/** A running simulator. */
export interface Simulator {
  /** The address it listens on. */
  readonly hostname: string;
  /** The port it listens on (the one picked, if asked for port 0). */
  readonly port: number;
  /** `HOST:PORT` (IPv6 in brackets), as `EssClient` and `--host` take it. */
  readonly host: string;
  /** The password it accepts. */
  readonly password: string;
  /** SHA-256 fingerprint of its certificate, `AB:CD:…`, for `--fingerprint`. */
  readonly fingerprint: string;
  /** Which firmware it imitates. */
  readonly firmware: Firmware;
  /** Whose answers it gives. */
  readonly model: SimModel;
  /** Every request received, in order, for tests to check what reached the device (empty with
   * `recordRequests: false`). */
  readonly requests: SimRequest[];
  /** The device model, to inspect its state. */
  readonly device: SimDevice;
  /** Makes every auth key handed out so far invalid. */
  expireKeys(): void;
  /** Changes faults; omitted ones stay as they are. */
  setFaults(faults: SimFaults): void;
  /**
   * Stops listening, so that connections are refused, and listens again on the same port
   * after `ms`. Resolves as soon as connections are refused.
   */
  refuseConnections(ms: number): Promise<void>;
  /** Stops listening and any announcement. */
  close(): Promise<void>;
}

const NGINX = "nginx/1.10.3";
/** nginx's own default `client_max_body_size`: a larger body is answered 413, not kept. */
const MAX_REQUEST_BODY = 1024 * 1024;
/** Auth keys valid at once; logging in beyond that drops the oldest. */
const MAX_KEYS = 64;

/**
 * Connections held at once; one more is closed at once. Without a cap every idle connection
 * holds about 30 kB until the TLS handshake times out (2 minutes), and `ess simulate --host
 * 0.0.0.0` lets any machine open thousands.
 */
export const MAX_CONNECTIONS = 128;

function jsonAnswer(body: JsonObject, status = 200): Response {
  return new Response(`${JSON.stringify(body, null, 4)}\n`, {
    status,
    headers: { "content-type": "application/json", server: NGINX },
  });
}

/** An error page as the device's nginx sends it. */
function nginxPage(status: number, reason: string): Response {
  const title = `${status} ${reason}`;
  const html = `<html>\r\n<head><title>${title}</title></head>\r\n<body bgcolor="white">\r\n` +
    `<center><h1>${title}</h1></center>\r\n<hr><center>${NGINX}</center>\r\n</body>\r\n</html>\r\n`;
  return new Response(html, { status, headers: { "content-type": "text/html", server: NGINX } });
}

const SUCCESS = { status: "success" };
const FAIL = { status: "fail" };

function checkFaults(faults: SimFaults): void {
  const { errorRate, latencyMs, keyLifetimeSeconds } = faults;
  if (errorRate !== undefined && !(errorRate >= 0 && errorRate <= 1)) {
    throw new RangeError(`errorRate must be from 0 to 1, not ${errorRate}`);
  }
  if (latencyMs !== undefined && !(latencyMs >= 0)) {
    throw new RangeError(`latencyMs must be 0 or more, not ${latencyMs}`);
  }
  if (keyLifetimeSeconds !== undefined && !(keyLifetimeSeconds > 0)) {
    throw new RangeError(`keyLifetimeSeconds must be more than 0, not ${keyLifetimeSeconds}`);
  }
}

async function sha256Fingerprint(pem: string): Promise<string> {
  const base64 = pem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, "");
  const der = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", der));
  return [...digest].map((b) => b.toString(16).padStart(2, "0").toUpperCase()).join(":");
}

type Handler = (body: JsonObject) => Response;

/** Stops listening and drops every open connection. */
function stopServer(server: https.Server | undefined): Promise<void> {
  if (!server) return Promise.resolve();
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

class RunningSimulator implements Simulator {
  readonly hostname: string;
  readonly password: string;
  readonly fingerprint: string;
  readonly firmware: Firmware;
  readonly model: SimModel;
  readonly requests: SimRequest[] = [];
  readonly device: SimDevice;
  #port: number;
  #server: https.Server | undefined;
  #reopenTimer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;
  #announcement: ReturnType<Announce> | undefined;
  #errorRate: number;
  #latencyMs: number;
  #keyLifetimeSeconds: number | undefined;
  #keys = new Map<string, number>();
  #random: () => number;
  #now: () => Date;
  #log: Logger;
  #routes = new Map<string, Handler>();
  #record: boolean;
  #extraKeys: SimulatorOptions["extraKeys"];

  constructor(options: SimulatorOptions, fingerprint: string) {
    const seed = options.seed ?? 1;
    this.hostname = options.hostname ?? "127.0.0.1";
    this.#port = options.port ?? 0;
    this.password = options.password ?? DEFAULT_PASSWORD;
    this.firmware = options.firmware ?? "classic";
    this.model = options.model ?? "home10";
    this.fingerprint = fingerprint;
    this.#now = options.now ?? (() => new Date());
    this.#log = options.logger ?? silentLogger;
    this.#random = seededRandom(seed ^ 0x5eed);
    this.#errorRate = options.errorRate ?? 0;
    this.#latencyMs = options.latencyMs ?? 0;
    this.#record = options.recordRequests ?? true;
    this.#extraKeys = options.extraKeys;
    this.#keyLifetimeSeconds = options.keyLifetimeSeconds;
    this.device = new SimDevice({
      firmware: this.firmware,
      model: this.model,
      seed,
      now: this.#now,
      name: options.name ?? `SIM${String(seed >>> 0).padStart(10, "0")}`,
      pvCapacityW: options.pvCapacityW,
      loadScale: options.loadScale,
    });
    this.#addRoutes();
  }

  get port(): number {
    return this.#port;
  }

  get host(): string {
    const name = this.hostname.includes(":") ? `[${this.hostname}]` : this.hostname;
    return `${name}:${this.#port}`;
  }

  expireKeys(): void {
    this.#keys.clear();
  }

  setFaults(faults: SimFaults): void {
    checkFaults(faults);
    this.#errorRate = faults.errorRate ?? this.#errorRate;
    this.#latencyMs = faults.latencyMs ?? this.#latencyMs;
    this.#keyLifetimeSeconds = faults.keyLifetimeSeconds ?? this.#keyLifetimeSeconds;
  }

  async refuseConnections(ms: number): Promise<void> {
    if (this.#closed) throw new Error("the simulator is closed");
    clearTimeout(this.#reopenTimer);
    const server = this.#server;
    this.#server = undefined;
    await stopServer(server);
    this.#log.debug(`refusing connections for ${ms} ms`);
    this.#reopenTimer = setTimeout(() => void this.#reopen(), ms);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#reopenTimer);
    const server = this.#server;
    this.#server = undefined;
    await Promise.all([stopServer(server), this.#announcement?.close()]);
  }

  /**
   * Starts listening; on the first call this also picks the port. The server is node:https
   * rather than Deno.serve: like nginx on the device it sends an answer without waiting on
   * Nagle's algorithm, where Deno.serve's TLS writes stall ~40 ms on a delayed ACK.
   */
  async listen(): Promise<void> {
    const server = https.createServer(
      { cert: SIM_CERT, key: SIM_KEY },
      (req, res) =>
        this.#serve(req, res).catch((err) => {
          this.#log.error(`simulator: ${errorText(err)}`);
          res.destroy();
        }),
    );
    try {
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(this.#port, this.hostname, () => {
          server.off("error", reject);
          resolve();
        });
      });
    } catch (err) {
      throw new EssError(
        `Cannot listen on ${this.host}: ${errorText(err)}`,
        { cause: err },
      );
    }
    server.maxConnections = MAX_CONNECTIONS;
    this.#port = (server.address() as AddressInfo).port;
    this.#server = server;
  }

  async #serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Uint8Array[] = [];
    let size = 0;
    try {
      for await (const chunk of req) {
        size += (chunk as Uint8Array).byteLength;
        if (size <= MAX_REQUEST_BODY) chunks.push(chunk as Uint8Array);
      }
    } catch (err) {
      // A client that hung up in the middle of its body: nobody is left to answer.
      this.#log.warning(
        `simulator: ${req.method ?? "?"} ${req.url ?? "/"} was cut off before its body was ` +
          `complete (${errorText(err)}); still serving`,
      );
      res.destroy();
      return;
    }
    const method = req.method ?? "GET";
    let response: Response;
    if (size > MAX_REQUEST_BODY) {
      response = nginxPage(413, "Request Entity Too Large");
      this.#log.debug(`${method} ${req.url ?? "/"} -> 413 (a body of ${size} bytes)`);
    } else {
      response = await this.#answerRequest(req, method, chunks);
    }
    const body = new Uint8Array(await response.arrayBuffer());
    res.writeHead(response.status, Object.fromEntries(response.headers));
    res.end(body);
  }

  async #answerRequest(
    req: IncomingMessage,
    method: string,
    chunks: Uint8Array[],
  ): Promise<Response> {
    try {
      return await this.#handle(
        new Request(`https://${this.host}${req.url ?? "/"}`, {
          method,
          body: method === "GET" || method === "HEAD" ? null : Buffer.concat(chunks),
        }),
      );
    } catch (err) {
      this.#log.error(`simulator: ${errorText(err)}`);
      return nginxPage(500, "Internal Server Error");
    }
  }

  async announce(announce: Announce, interfaceAddress: string | undefined): Promise<void> {
    const info: AnnounceInfo = { name: this.device.name, port: this.#port };
    if (/^\d+\.\d+\.\d+\.\d+$/.test(this.hostname) && this.hostname !== "0.0.0.0") {
      info.address = this.hostname;
    }
    if (interfaceAddress !== undefined) info.interfaceAddress = interfaceAddress;
    this.#announcement = announce(info);
    await this.#announcement.ready;
  }

  async #reopen(): Promise<void> {
    this.#reopenTimer = undefined;
    if (this.#closed) return;
    try {
      await this.listen();
      if (this.#closed) return await stopServer(this.#server);
      this.#log.debug(`accepting connections on ${this.host} again`);
    } catch (err) {
      this.#log.warning(`${(err as Error).message}; trying again`);
      this.#reopenTimer = setTimeout(() => void this.#reopen(), 250);
    }
  }

  async #handle(request: Request): Promise<Response> {
    const path = new URL(request.url).pathname.replace(/\/{2,}/g, "/");
    const text = await request.text();
    let body: Json | undefined;
    try {
      body = text.trim() === "" ? undefined : JSON.parse(text);
    } catch {
      body = undefined;
    }
    const record: SimRequest = { method: request.method, path, body, status: 0 };
    if (this.#record) this.requests.push(record);
    if (this.#latencyMs > 0) {
      await new Promise((resolve) => setTimeout(resolve, this.#latencyMs));
    }
    const response = this.#answer(request.method, path, body);
    record.status = response.status;
    this.#log.debug(`${request.method} ${path} -> ${response.status}`);
    return response;
  }

  #answer(method: string, path: string, body: Json | undefined): Response {
    if (this.#errorRate > 0 && this.#random() < this.#errorRate) {
      return nginxPage(502, "Bad Gateway");
    }
    const handler = this.#routes.get(`${method} ${path}`);
    if (!handler) return nginxPage(404, "Not Found");
    if (!isJsonObject(body)) return nginxPage(400, "Bad Request");
    return handler(body);
  }

  #addRoutes(): void {
    const route = (method: string, path: string, handler: Handler) =>
      this.#routes.set(`${method} ${path}`, handler);
    const authed = (method: string, path: string, handler: Handler) =>
      route(method, path, (body) => {
        const key = body["auth_key"];
        if (typeof key !== "string" || !this.#validKey(key)) {
          return jsonAnswer({ auth: "auth_key failed" }, 405);
        }
        return handler(body);
      });
    const classic = this.firmware === "classic";

    route("PUT", classic ? api.LOGIN_PATHS[0] : api.LOGIN_PATHS[1], (body) => this.#login(body));
    if (classic) {
      authed("PUT", api.TIMESYNC_PATH, (body) => {
        const dateTime = body["date_time"];
        if (typeof dateTime !== "string") return jsonAnswer(FAIL);
        this.device.timesync(dateTime);
        return jsonAnswer(SUCCESS);
      });
    }
    route("POST", api.PASSWORD_PATH, (body) =>
      jsonAnswer(
        body["key"] === api.PASSWORD_KEY ? { status: "success", password: this.password } : FAIL,
      ));
    for (const state of api.STATE_NAMES) {
      authed(
        "POST",
        api.STATE_PATHS[state],
        () => jsonAnswer({ ...this.device.read(state), ...this.#extraKeys?.(state) }),
      );
    }
    for (const device of api.GRAPH_DEVICES) {
      for (const span of api.GRAPH_SPANS) {
        authed("POST", api.graphPath(device, span), (body) => {
          const graph = this.device.graph(device, span, body);
          return graph ? jsonAnswer(graph) : jsonAnswer(FAIL, 400);
        });
      }
    }
    authed(
      "PUT",
      api.OPERATION_PATH,
      (body) => jsonAnswer(this.device.operate(body["operation"]) ? SUCCESS : FAIL),
    );
    authed(
      "PUT",
      api.BATT_SETTING_PATH,
      (body) => jsonAnswer(this.device.changeSettings(body) ? SUCCESS : FAIL),
    );
  }

  #login(body: JsonObject): Response {
    if (body["password"] !== this.password) return jsonAnswer({ status: "password mismatched" });
    const key = crypto.randomUUID();
    this.#keys.set(key, this.#now().getTime());
    // Keys never used again would pile up in a simulator that runs for weeks; the device
    // itself keeps only a few sessions.
    if (this.#keys.size > MAX_KEYS) this.#keys.delete(this.#keys.keys().next().value!);
    return jsonAnswer({ status: "success", auth_key: key, regnum: this.device.name, role: "user" });
  }

  #validKey(key: string): boolean {
    const issued = this.#keys.get(key);
    if (issued === undefined) return false;
    const lifetime = this.#keyLifetimeSeconds;
    if (lifetime !== undefined && this.#now().getTime() - issued >= lifetime * 1000) {
      this.#keys.delete(key);
      return false;
    }
    return true;
  }
}

/**
 * Starts a simulated LG ESS and resolves once it listens (and, with `mdns`, announces itself).
 *
 * @example
 * ```ts
 * import { ok } from "node:assert/strict";
 * import { EssClient } from "../device/client.ts";
 * import { createDeviceFetch } from "../device/transport.ts";
 * const sim = await startSimulator({ firmware: "new" });
 * const fetch = createDeviceFetch({ fingerprint: sim.fingerprint });
 * const client = new EssClient({ host: sim.host, password: sim.password, fetch });
 * const home = await client.read("home");
 * ok("statistics" in home);
 * fetch.close();
 * await sim.close();
 * ```
 */
export async function startSimulator(options: SimulatorOptions = {}): Promise<Simulator> {
  checkFaults(options);
  // Loaded only when asked for, so that a simulator without mDNS never loads multicast code.
  const announce = options.mdns
    ? options.announce ?? (await import("../device/mdns_announce.ts")).announce
    : undefined;
  const sim = new RunningSimulator(options, await sha256Fingerprint(SIM_CERT));
  await sim.listen();
  if (announce) {
    const where = typeof options.mdns === "object" ? options.mdns.interfaceAddress : undefined;
    try {
      await sim.announce(announce, where);
    } catch (err) {
      await sim.close();
      throw err;
    }
  }
  return sim;
}
