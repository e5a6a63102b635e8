/**
 * A hostile LG ESS for tests: an HTTPS server on 127.0.0.1 (a free port, the test certificate of
 * fixtures/tls) that answers like a device (login, timesync, the five states, graphs, controls)
 * until the test tells it to misbehave for a request: huge or endless answers, deep nesting,
 * interim answers without end, nginx error pages, reset or cut-off connections, secrets echoed
 * back, bytes dripped one at a time. It speaks HTTP/1.1 over `node:tls` itself, so a misbehaviour
 * can be anything at all on the wire.
 *
 * @module
 */
import tls from "node:tls";
import type { AddressInfo } from "node:net";
import { isJsonObject, type Json, type JsonObject } from "../lib/device/flatten.ts";
import { isStateName, STATE_PATHS, type StateName } from "../lib/device/states.ts";

const FIXTURES = new URL("../fixtures/", import.meta.url);
const KEY = Deno.readTextFileSync(new URL("tls/device.key", FIXTURES));
const CERT = Deno.readTextFileSync(new URL("tls/device.crt", FIXTURES));

/** The password the hostile device accepts unless told otherwise. */
export const HOSTILE_PASSWORD = "a1b2c3d4e5f6";
/** SHA-256 fingerprint of the test certificate (fixtures/tls/README.md). */
export const HOSTILE_FINGERPRINT =
  "12:1E:4C:D4:82:57:E0:A4:90:9B:94:D3:4D:EF:54:98:A8:41:EA:65:A6:ED:C9:39:B0:A5:88:86:51:56:F6:55";

/** One request as it reached the hostile device. */
export interface HostileRequest {
  method: string;
  /** The path, doubled slashes collapsed. */
  path: string;
  /** The JSON body, or `undefined` if there was none or it was not JSON. */
  body: JsonObject | undefined;
  /** How many requests came before this one (0 for the first). */
  index: number;
}

/** What the device does with one request: writes an answer to the socket, or breaks it. */
export type Behaviour = (socket: tls.TLSSocket) => void;

/** Options of {@link startHostileDevice}. */
export interface HostileDeviceOptions {
  /** The password it accepts (default {@link HOSTILE_PASSWORD}). */
  password?: string;
  /**
   * The answer to reading a state, given how many times it was read before (from 0): a test can
   * send a new key each poll, keys with control characters, anything. Default: the classic
   * fixture.
   */
  state?: (name: StateName, count: number) => Json;
  /** Chooses a misbehaviour for a request, or `undefined` for the device's proper answer. */
  misbehave?: (request: HostileRequest) => Behaviour | undefined;
}

/** A running hostile device. */
export interface HostileDevice {
  /** `127.0.0.1:PORT`, for `--host` and `EssClient`. */
  readonly host: string;
  readonly port: number;
  readonly password: string;
  /** Every request received, in order. */
  readonly requests: HostileRequest[];
  /** Every auth key handed out, in order. */
  readonly keys: string[];
  /** The misbehaviour chooser; may be replaced while the device runs. */
  misbehave: (request: HostileRequest) => Behaviour | undefined;
  /** Stops listening and drops every connection. */
  close(): Promise<void>;
}

const REASONS: Record<number, string> = {
  100: "Continue",
  200: "OK",
  404: "Not Found",
  405: "Method Not Allowed",
  500: "Internal Server Error",
  502: "Bad Gateway",
  504: "Gateway Time-out",
};

const head = (status: number, headers: Record<string, string | number>) =>
  `HTTP/1.1 ${status} ${REASONS[status] ?? "Status"}\r\n` +
  Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join("") + "\r\n";

/** An answer with `text` as its body. */
export function text(body: string, status = 200, contentType = "application/json"): Behaviour {
  return (socket) => {
    const bytes = new TextEncoder().encode(body);
    socket.write(head(status, { "content-type": contentType, "content-length": bytes.length }));
    socket.write(bytes);
  };
}

/** A JSON answer. */
export function json(body: Json, status = 200): Behaviour {
  return text(JSON.stringify(body, null, 4), status);
}

/** nginx's HTML error page, as the device sends it when busy. */
export function nginxPage(status: number): Behaviour {
  const title = `${status} ${REASONS[status] ?? "Error"}`;
  return text(
    `<html>\r\n<head><title>${title}</title></head>\r\n<body bgcolor="white">\r\n` +
      `<center><h1>${title}</h1></center>\r\n<hr><center>nginx/1.10.3</center>\r\n</body>\r\n` +
      `</html>\r\n`,
    status,
    "text/html",
  );
}

/** `wire`, exactly as given: a head (and body) framed however the test likes. */
export function raw(wire: string): Behaviour {
  return (socket) => socket.write(wire);
}

/** Resets the connection (TCP RST) instead of answering. */
export function reset(): Behaviour {
  return (socket) => socket.resetAndDestroy();
}

/** Sends the head and the first half of the body, then closes the connection. */
export function cutOff(body: string): Behaviour {
  return (socket) => {
    socket.write(head(200, { "content-type": "application/json", "content-length": body.length }));
    socket.end(body.slice(0, body.length >> 1));
  };
}

/** Never answers. */
export function silence(): Behaviour {
  return () => {};
}

/** `100 Continue` after `100 Continue`, as fast as the connection takes them, never an answer. */
export function endlessInterim(): Behaviour {
  return (socket) => {
    const interim = head(100, {});
    const more = () => {
      while (!socket.destroyed && socket.write(interim));
      if (!socket.destroyed) socket.once("drain", more);
    };
    more();
  };
}

/** The answer `body`, one byte every `everyMs`. */
export function drip(body: string, everyMs: number): Behaviour {
  return (socket) => {
    const wire = head(200, { "content-type": "application/json", "content-length": body.length }) +
      body;
    let sent = 0;
    const timer = setInterval(() => {
      if (socket.destroyed || sent >= wire.length) return clearInterval(timer);
      socket.write(wire[sent++]!);
    }, everyMs);
    socket.once("close", () => clearInterval(timer));
  };
}

/** A JSON object with `count` keys (`{"k0":"0","k1":"1",…}`), as text. */
export function manyKeys(count: number): string {
  const parts: string[] = [];
  for (let i = 0; i < count; i++) parts.push(`"k${i}":"${i}"`);
  return `{${parts.join(",")}}`;
}

/** A JSON object nested `depth` levels deep (`{"a":{"a":…"x"…}}`), as text. */
export function deeplyNested(depth: number): string {
  return `${'{"a":'.repeat(depth)}"x"${"}".repeat(depth)}`;
}

function stateFixture(name: StateName): Json {
  return JSON.parse(Deno.readTextFileSync(new URL(`classic/${name}.json`, FIXTURES)));
}

/** Starts a hostile device; it behaves until `misbehave` says otherwise. */
export async function startHostileDevice(
  options: HostileDeviceOptions = {},
): Promise<HostileDevice> {
  const password = options.password ?? HOSTILE_PASSWORD;
  const state = options.state ?? ((name: StateName) => stateFixture(name));
  const requests: HostileRequest[] = [];
  const keys: string[] = [];
  const reads = new Map<StateName, number>();
  const statesByPath = new Map(
    Object.entries(STATE_PATHS).map(([name, path]) => [path as string, name]),
  );
  const sockets = new Set<tls.TLSSocket>();

  const proper = (request: HostileRequest): Behaviour => {
    const { method, path, body } = request;
    if (method === "PUT" && (path === "/v1/user/setting/login" || path === "/v1/login")) {
      if (body?.["password"] !== password) return json({ status: "password mismatched" });
      const key = crypto.randomUUID();
      keys.push(key);
      return json({ status: "success", auth_key: key, regnum: "HOSTILE01", role: "user" });
    }
    if (typeof body?.["auth_key"] !== "string" || !keys.includes(body["auth_key"])) {
      return json({ auth: "auth_key failed" }, 405);
    }
    const name = statesByPath.get(path);
    if (method === "POST" && name !== undefined && isStateName(name)) {
      const count = reads.get(name) ?? 0;
      reads.set(name, count + 1);
      return json(state(name, count));
    }
    if (method === "POST" && /^\/v1\/user\/graph\/\w+\/\w+$/.test(path)) {
      return json({ db: "success", loginfo: [] });
    }
    if (method === "PUT") return json({ status: "success" });
    return nginxPage(404);
  };

  const device: HostileDevice = {
    host: "",
    port: 0,
    password,
    requests,
    keys,
    misbehave: options.misbehave ?? (() => undefined),
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };

  const serve = (socket: tls.TLSSocket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    let pending = "";
    socket.setEncoding("latin1");
    socket.on("data", (chunk: string) => {
      pending += chunk;
      while (true) {
        const end = pending.indexOf("\r\n\r\n");
        if (end < 0) return;
        const lines = pending.slice(0, end).split("\r\n");
        const length = Number(/^content-length:\s*(\d+)/im.exec(lines.join("\n"))?.[1] ?? 0);
        if (pending.length < end + 4 + length) return;
        const raw = pending.slice(end + 4, end + 4 + length);
        pending = pending.slice(end + 4 + length);
        const [method = "", target = "/"] = (lines[0] ?? "").split(" ");
        let body: Json | undefined;
        try {
          body = JSON.parse(raw);
        } catch {
          body = undefined;
        }
        const request: HostileRequest = {
          method,
          path: target.replace(/\/{2,}/g, "/"),
          body: isJsonObject(body) ? body : undefined,
          index: requests.length,
        };
        requests.push(request);
        (device.misbehave(request) ?? proper(request))(socket);
      }
    });
  };

  const server = tls.createServer({ key: KEY, cert: CERT }, serve);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return Object.assign(device, { port, host: `127.0.0.1:${port}` });
}

/** Runs `fn` against a fresh hostile device that misbehaves as `misbehave` says, then closes it. */
export async function withHostileDevice(
  misbehave: (request: HostileRequest) => Behaviour | undefined,
  fn: (device: HostileDevice) => Promise<void>,
): Promise<void> {
  const device = await startHostileDevice({ misbehave });
  try {
    await fn(device);
  } finally {
    await device.close();
  }
}

/** Whether a request reads `home`, the state every poll reads. */
export const readsHome = (request: HostileRequest): boolean => request.path === STATE_PATHS.home;
