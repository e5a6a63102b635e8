/**
 * A fetch-shaped stub that replays the fixtures in `fixtures/` the way an LG ESS answers:
 * login per firmware generation, auth keys that can be expired, states, graphs and controls.
 *
 * @module
 */
import type { JsonObject } from "../lib/device/flatten.ts";
import type { FetchLike } from "../lib/device/transport.ts";

/** Which fixture set and login behaviour the stub follows. */
export type StubFirmware = "classic" | "new" | "home15";

/** One request the stub received. */
export interface StubRequest {
  method: string;
  path: string;
  body: JsonObject;
}

/** What a test gets: the fetch function and handles to steer and inspect the stub. */
export interface StubDevice {
  fetch: FetchLike;
  requests: StubRequest[];
  /** Makes the current auth key invalid, as when the phone app logs in. */
  expire(): void;
  /** Answers the next request to `path` with `response` instead. */
  queue(path: string, response: () => Response): void;
  /** Paths requested, in order. */
  paths(): string[];
}

const FIXTURES = new URL("../fixtures/", import.meta.url);

/** A fixture file as JSON. */
export function fixture(name: string): JsonObject {
  return JSON.parse(Deno.readTextFileSync(new URL(name, FIXTURES)));
}

const json = (body: unknown, status = 200) =>
  new Response(JSON.stringify(body, null, 2), {
    status,
    headers: { "content-type": "application/json" },
  });

/** nginx's HTML error page, as the device sends it when busy. */
export const htmlPage = (status: number, reason: string): Response =>
  new Response(
    `<html>\r\n<head><title>${status} ${reason}</title></head>\r\n<body bgcolor="white">\r\n` +
      `<center><h1>${status} ${reason}</h1></center>\r\n<hr><center>nginx/1.10.3</center>\r\n` +
      `</body>\r\n</html>\r\n`,
    { status, headers: { "content-type": "text/html" } },
  );

/** A stub device with password `password`. */
export function stubDevice(
  firmware: StubFirmware = "classic",
  password = "a1b2c3d4e5f6",
): StubDevice {
  const requests: StubRequest[] = [];
  const queued = new Map<string, (() => Response)[]>();
  let key: string | undefined;
  let issued = 0;
  const loginPath = firmware === "new" ? "/v1/login" : "/v1/user/setting/login";
  const stateFile = (name: string) => {
    const own = new URL(`${firmware}/${name}.json`, FIXTURES);
    try {
      Deno.statSync(own);
      return fixture(`${firmware}/${name}.json`);
    } catch {
      return fixture(`classic/${name}.json`);
    }
  };

  const answer = (method: string, path: string, body: JsonObject): Response => {
    const next = queued.get(path)?.shift();
    if (next) return next();
    if (path === "/v1/user/setting/login" || path === "/v1/login") {
      if (path !== loginPath) return htmlPage(404, "Not Found");
      if (body["password"] !== password) return json({ status: "password mismatched" });
      key = `stub-key-${++issued}`;
      return json({ status: "success", auth_key: key, regnum: "STUB01", role: "user" });
    }
    if (path === "/v1/user/setting/read/password") {
      return json(
        body["key"] === "lgepmsuser!@#" ? { status: "success", password } : { status: "fail" },
      );
    }
    if (body["auth_key"] !== key || key === undefined) {
      return json({ auth: "auth_key failed" }, 405);
    }
    if (path === "/v1/user/setting/timesync") {
      return firmware === "new" ? htmlPage(404, "Not Found") : json({ status: "success" });
    }
    const state = /^\/v1\/user\/(?:essinfo|setting)\/(\w+)$/.exec(path)?.[1];
    if (method === "POST" && state) return json(stateFile(state));
    const graph = /^\/v1\/user\/graph\/(\w+)\/(\w+)$/.exec(path);
    if (method === "POST" && graph) return json(fixture(`graph/${graph[1]}_${graph[2]}.json`));
    if (
      method === "PUT" && (path === "/v1/user/setting/batt" || path === "/v1/user/operation/status")
    ) {
      return json({ status: "success" });
    }
    return htmlPage(404, "Not Found");
  };

  const fetch: FetchLike = async (input, init) => {
    const url = new URL(String(input));
    const text = typeof init?.body === "string" ? init.body : "";
    const body = text === "" ? {} : JSON.parse(text);
    const method = init?.method ?? "GET";
    requests.push({ method, path: url.pathname, body });
    return await Promise.resolve(answer(method, url.pathname, body));
  };
  return {
    fetch,
    requests,
    expire: () => key = undefined,
    queue: (path, response) => queued.set(path, [...(queued.get(path) ?? []), response]),
    paths: () => requests.map((r) => r.path),
  };
}

/** A stub device served over HTTPS on 127.0.0.1 with the test certificate, for CLI tests. */
export interface StubServer {
  /** `127.0.0.1:PORT`. */
  host: string;
  close(): Promise<void>;
}

/** Serves `stub` over HTTPS on a free loopback port. */
export function serveStub(stub: StubDevice): StubServer {
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    cert: Deno.readTextFileSync(new URL("tls/device.crt", FIXTURES)),
    key: Deno.readTextFileSync(new URL("tls/device.key", FIXTURES)),
    onListen: () => {},
  }, async (req) => stub.fetch(req.url, { method: req.method, body: await req.text() }));
  return { host: `127.0.0.1:${server.addr.port}`, close: () => server.shutdown() };
}
