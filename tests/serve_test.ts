import type { Reading } from "../lib/model/reading.ts";
import { deepEqual, equal, match, ok } from "node:assert/strict";
import { createHandler, type ServeOptions, startServer } from "../lib/serve/server.ts";
import { exposureNotice, isLoopback, parseListen } from "../lib/serve/listen.ts";
import { ROUTES, type Schema } from "../lib/serve/routes.ts";
import { UsageError } from "../lib/errors.ts";
import { createLogger, type Logger } from "../lib/log.ts";
import { GraphCache } from "../lib/serve/_graph.ts";
import { getJson, post } from "./_serve_http.ts";
import { FakeSource, withSimSource } from "./_serve_source.ts";
import type { ServeSource } from "../lib/serve/source.ts";
import { readUntil, withDeadline } from "./_wait.ts";

const TOKEN = "s3cret-control-token";

/** Runs `fn` against a server on a free loopback port. */
async function withServer(
  source: ServeSource,
  options: Partial<ServeOptions>,
  fn: (url: string) => Promise<void>,
): Promise<void> {
  const server = await startServer({ hostname: "127.0.0.1", port: 0 }, { source, ...options });
  try {
    await fn(server.url);
  } finally {
    await server.close();
  }
}

/** A silent logger whose redactor holds `secrets`, as the CLI's holds the passwords. */
function loggerWith(...secrets: string[]): Logger {
  const logger = createLogger("error", () => {});
  for (const secret of secrets) logger.redactor.add(secret);
  return logger;
}

/** Reads SSE events from a stream until `count` `state` events came, or throws. */
async function readEvents(
  body: ReadableStream<Uint8Array>,
  count: number,
  onEvent: (n: number) => void | Promise<void> = () => {},
): Promise<{ events: Record<string, unknown>[]; text: string }> {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  const events: Record<string, unknown>[] = [];
  await withDeadline(
    (async () => {
      while (events.length < count) {
        const { value, done } = await reader.read();
        if (done) break;
        text += value;
        let end;
        while ((end = text.indexOf("\n\n")) >= 0) {
          const block = text.slice(0, end);
          text = text.slice(end + 2);
          const data = /^event: state\ndata: (.*)$/m.exec(block);
          if (data) {
            events.push(JSON.parse(data[1]!));
            await onEvent(events.length);
          }
        }
      }
    })(),
    { what: `${count} state events` },
  ).finally(() => reader.cancel());
  return { events, text };
}

Deno.test("parseListen() and isLoopback() read --listen and tell who can connect", async (t) => {
  await t.step("should take IPv4, names and bracketed IPv6", () => {
    deepEqual(parseListen("127.0.0.1:8080"), { hostname: "127.0.0.1", port: 8080 });
    deepEqual(parseListen("localhost:80"), { hostname: "localhost", port: 80 });
    deepEqual(parseListen("[::]:9100"), { hostname: "::", port: 9100 });
  });
  await t.step("should refuse what is not ADDR:PORT with a usage error", () => {
    for (const bad of ["8080", "::1:8080", "host:70000", "host:", "a b:1", "[::1]"]) {
      let caught: unknown;
      try {
        parseListen(bad);
      } catch (err) {
        caught = err;
      }
      ok(caught instanceof UsageError, bad);
      match((caught as Error).message, /ADDR:PORT/);
    }
  });
  await t.step("should count only loopback as private", () => {
    for (const h of ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"]) ok(isLoopback(h), h);
    for (const h of ["0.0.0.0", "::", "192.168.1.5", "10.0.0.1", "example.org"]) {
      ok(!isLoopback(h), h);
    }
  });
  await t.step("should print one line off loopback and none on it", () => {
    equal(exposureNotice({ hostname: "::1", port: 1 }), undefined);
    const line = exposureNotice({ hostname: "192.168.1.5", port: 8080 }, true)!;
    match(line, /192\.168\.1\.5:8080.*every machine that can reach 192\.168\.1\.5/);
    ok(!line.includes("\n"));
  });
});

Deno.test("ess serve /api/state and /api/events show the simulator's live state", async (t) => {
  await withSimSource(async ({ sim, source, setTime }) => {
    await withServer(source, {}, async (url) => {
      await t.step("should answer the device's trees with the time of the last poll", async () => {
        const { status, body } = await getJson(`${url}/api/state`);
        equal(status, 200);
        equal(body["up"], true);
        ok(typeof body["lastSuccess"] === "string");
        ok(typeof body["age"] === "number" && body["age"] < 5);
        for (const state of ["home", "common", "batt", "systeminfo"] as const) {
          deepEqual(body[state], sim.device.read(state), state);
        }
        const summary = body["summary"] as Record<string, number>;
        equal(
          summary["pv_power_watts"],
          sim.device.flows.pv > 0 ? Math.round(sim.device.flows.pv) : 0,
        );
        equal(
          summary["battery_soc_ratio"],
          Number(
            (Number(
              (sim.device.read("home")["statistics"] as Record<string, string>)["bat_user_soc"],
            ) / 100).toPrecision(12),
          ),
        );
      });
      await t.step("should answer the reading and the controls the firmware has", async () => {
        const { body } = await getJson(`${url}/api/state`);
        const reading = body["reading"] as Reading;
        const home = sim.device.read("home") as Record<string, Record<string, string>>;
        equal(reading.power.loadW, Number(home["statistics"]!["load_power"]));
        equal(reading.socPct, Number(home["statistics"]!["bat_user_soc"]));
        const pms = sim.device.read("systeminfo")["pms"] as Record<string, string>;
        equal(reading.serial, pms["serialno"]);
        const controls = body["controls"] as Record<string, { now: string; options?: string[] }>;
        equal(controls["winter_mode"]?.now, sim.device.winterMode ? "on" : "off");
        equal(controls["active"]?.now, "on");
        deepEqual(
          controls["charge_strategy"]?.options,
          reading.settings.chargeStrategies?.map((s) => s.replace("-", "_")),
        );
      });
      await t.step("should send the state at once and again after the clock moves", async () => {
        const res = await fetch(`${url}/api/events`);
        equal(res.headers.get("content-type"), "text/event-stream; charset=utf-8");
        const before = sim.device.read("home");
        const { events } = await readEvents(res.body!, 3, (n) => {
          if (n === 1) setTime(new Date("2026-06-21T06:00:00Z"));
        });
        deepEqual(events[0]!["home"], before);
        const last = events[2]!["home"] as Record<string, Record<string, string>>;
        deepEqual(last, sim.device.read("home"));
        ok(
          last["statistics"]!["pcs_pv_total_power"] !==
            (before["statistics"] as Record<string, string>)["pcs_pv_total_power"],
          "PV power changed with the time of day",
        );
      });
    });
  });
});

Deno.test("ess serve /api/events bounds its clients", async (t) => {
  const source = new FakeSource();
  await withServer(
    source,
    { limits: { maxEventStreams: 2, keepAliveMs: 50 } },
    async (url) => {
      await t.step("should send a retry hint and keep-alive comments", async () => {
        const res = await fetch(`${url}/api/events`);
        const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
        const text = await readUntil(reader, (text) => text.includes(": keep-alive\n\n"), {
          what: "a keep-alive comment",
        });
        match(text, /^retry: \d+\n\nevent: state\ndata: \{/);
        await reader.cancel();
      });
      await t.step("should refuse a stream beyond the cap with 503 JSON", async () => {
        const a = await fetch(`${url}/api/events`);
        const b = await fetch(`${url}/api/events`);
        const c = await fetch(`${url}/api/events`);
        equal(c.status, 503);
        match((await c.json()).error, /too many event streams/);
        await a.body!.cancel();
        await b.body!.cancel();
      });
      await t.step("should free a stream's place when its client goes away", async () => {
        const a = await fetch(`${url}/api/events`);
        const b = await fetch(`${url}/api/events`);
        await a.body!.cancel();
        const until = Date.now() + 5_000;
        let c = await fetch(`${url}/api/events`);
        while (c.status === 503 && Date.now() < until) {
          await c.body?.cancel();
          await new Promise((resolve) => setTimeout(resolve, 50));
          c = await fetch(`${url}/api/events`);
        }
        equal(c.status, 200);
        await b.body!.cancel();
        await c.body!.cancel();
      });
      await t.step("should drop a client that does not read, and keep serving", async () => {
        const big = { home: { blob: "x".repeat(100_000) } };
        const conn = await Deno.connect({ hostname: "127.0.0.1", port: Number(new URL(url).port) });
        await conn.write(
          new TextEncoder().encode("GET /api/events HTTP/1.1\r\nHost: localhost\r\n\r\n"),
        );
        // The client reads nothing while 40 MB of events are sent its way.
        for (let i = 0; i < 400; i++) {
          source.poll(big);
          await new Promise((resolve) => setTimeout(resolve, 1));
        }
        equal((await getJson(`${url}/api/state`)).status, 200, "the server still answers");
        let received = 0;
        const buf = new Uint8Array(65536);
        await withDeadline(
          (async () => {
            for (let n; (n = await conn.read(buf).catch(() => null)) !== null;) received += n;
          })(),
          { what: "the server to cut the stream" },
        );
        conn.close();
        ok(received < 400 * 100_000 / 2, `the stream was cut (${received} bytes arrived)`);
      });
    },
  );
});

Deno.test("ess serve /api/graph reads the device's graphs kindly", async (t) => {
  await withSimSource(async ({ sim, source }) => {
    await withServer(source, {}, async (url) => {
      await t.step("should answer what EssClient.graph answers", async () => {
        const { status, body } = await getJson(`${url}/api/graph/pv/day?date=2026-06-20`);
        equal(status, 200);
        deepEqual(body, await source.client.graph("pv", "day", { year: 2026, month: 6, day: 20 }));
        ok((body["loginfo"] as unknown[]).length === 96);
      });
      await t.step("should serve a repeated request without asking the device", async () => {
        const before = sim.requests.filter((r) => r.path.includes("/graph/")).length;
        equal((await getJson(`${url}/api/graph/pv/day?date=2026-06-20`)).status, 200);
        equal(sim.requests.filter((r) => r.path.includes("/graph/")).length, before);
      });
      await t.step("should answer 400 for a bad date and 404 for an unknown graph", async () => {
        for (const date of ["2026-02-30", "20260101", "1999-01-01", "x".repeat(500)]) {
          const { status, body } = await getJson(`${url}/api/graph/load/week?date=${date}`);
          equal(status, 400, date);
          match(String(body["error"]), /YYYY-MM-DD/);
        }
        equal((await getJson(`${url}/api/graph/wind/day`)).status, 404);
        equal((await getJson(`${url}/api/graph/pv/decade`)).status, 404);
      });
    });
  });
  await t.step("should give up on a device that does not answer with 504", async () => {
    const source = new FakeSource();
    source.graphAnswer = () => new Promise(() => {});
    await withServer(source, { limits: { graphTimeoutMs: 100, maxGraphReads: 1 } }, async (url) => {
      equal((await getJson(`${url}/api/graph/pv/day?date=2026-01-01`)).status, 504);
      const busy = await getJson(`${url}/api/graph/pv/day?date=2026-01-02`);
      equal(busy.status, 503, "one read hangs, so a second graph waits its turn");
    });
  });
});

Deno.test("ess serve /api/control changes the simulator only with the token", async (t) => {
  await withSimSource(async ({ sim, source }) => {
    await withServer(source, {}, async (url) => {
      await t.step("should answer 403 to every control when no token is set", async () => {
        for (const name of ["active", "winter_mode", "fastcharge"]) {
          const res = await post(`${url}/api/control/${name}`, "on");
          equal(res.status, 403);
          match((await res.json()).error, /--control-token/);
        }
        equal(sim.device.winterMode, false);
        equal(source.controls.length, 0);
      });
    });
    // Each wrong token makes the client wait (_token_guard.ts): a clock moved a minute on
    // after each request lets every one of them be looked at.
    let clock = Date.now();
    await withServer(source, { controlToken: TOKEN, now: () => clock }, async (url) => {
      const control = `${url}/api/control/winter_mode`;
      await t.step("should answer 401 without or with a wrong token", async () => {
        for (const auth of [undefined, "Bearer nope", `Basic ${TOKEN}`, `Bearer ${TOKEN}x`]) {
          clock += 60_000;
          const res = await post(control, "on", auth ? { authorization: auth } : {});
          equal(res.status, 401, String(auth));
          equal(res.headers.get("www-authenticate"), 'Bearer realm="ess"');
          await res.body?.cancel();
        }
        equal(sim.device.winterMode, false);
        equal(source.controls.length, 0);
        clock += 60_000;
      });
      const auth = { authorization: `Bearer ${TOKEN}` };
      await t.step("should switch winter mode with the token", async () => {
        const res = await post(control, "on", auth);
        equal(res.status, 200);
        deepEqual(await res.json(), { result: "written", command: "winter mode on" });
        equal(sim.device.winterMode, true);
        match(source.controls[0]!.source, /^http 127\.0\.0\.1:\d+$/);
        const { body } = await getJson(`${url}/api/state`);
        equal((body["batt"] as Record<string, string>)["winter_setting"], "on");
      });
      await t.step("should take the MQTT words: stop the system, set a strategy", async () => {
        equal((await post(`${url}/api/control/active`, "false", auth)).status, 200);
        equal(sim.device.operation, "stop");
        equal((await post(`${url}/api/control/active`, "start", auth)).status, 200);
        equal(sim.device.operation, "start");
        equal((await post(`${url}/api/control/fastcharge`, "ON", auth)).status, 200);
        equal(sim.device.algSetting, "on");
      });
      await t.step("should answer 400 with the reason for a bad body", async () => {
        const count = source.controls.length;
        for (const body of ["maybe", "", "101"]) {
          const name = body === "101" ? "backup_soc" : "winter_mode";
          const res = await post(`${url}/api/control/${name}`, body, auth);
          equal(res.status, 400, body);
          match((await res.json()).error, /expected|empty/);
        }
        equal(source.controls.length, count);
      });
      await t.step("should refuse other content types, origins, sizes and names", async () => {
        const cases: [Promise<Response>, number][] = [
          [post(control, '{"on":1}', { ...auth, "content-type": "application/json" }), 415],
          [post(control, "on", { ...auth, origin: "http://evil.example" }), 403],
          [post(control, "x".repeat(5000), auth), 413],
          [post(`${url}/api/control/self_destruct`, "on", auth), 404],
          [fetch(control, { headers: auth }), 405],
        ];
        for (const [pending, status] of cases) {
          const res = await pending;
          equal(res.status, status);
          ok((res.headers.get("content-type") ?? "").startsWith("application/json"));
          equal(res.headers.get("access-control-allow-origin"), null);
          await res.body?.cancel();
        }
        equal(sim.device.winterMode, true);
      });
      await t.step("should take a same-origin request from the dashboard", async () => {
        const res = await post(control, "off", { ...auth, origin: url });
        equal(res.status, 200);
        await res.body?.cancel();
        equal(sim.device.winterMode, false);
      });
    });
  });
});

Deno.test("ess serve answers control outcomes and slow bodies honestly", async (t) => {
  const source = new FakeSource();
  await withServer(source, {
    controlToken: TOKEN,
    limits: { controlWaitMs: 100, bodyTimeoutMs: 200 },
  }, async (url) => {
    const auth = { authorization: `Bearer ${TOKEN}` };
    await t.step("should say 202 when a later command replaced this one", async () => {
      source.controlAnswer = () => Promise.resolve({ outcome: "merged" });
      const res = await post(`${url}/api/control/active`, "stop", auth);
      equal(res.status, 202);
      equal((await res.json()).result, "merged");
    });
    await t.step("should say 200 when the device already had that setting", async () => {
      source.controlAnswer = () => Promise.resolve({ outcome: "unchanged" });
      const res = await post(`${url}/api/control/active`, "stop", auth);
      equal(res.status, 200);
      equal((await res.json()).result, "unchanged");
    });
    await t.step("should say 503 when ess stops before writing it", async () => {
      source.controlAnswer = () => Promise.resolve({ outcome: "stopped" });
      const res = await post(`${url}/api/control/active`, "stop", auth);
      equal(res.status, 503);
      match((await res.json()).error, /ess is stopping/);
    });
    await t.step("should say 202 queued when the queue holds it past the wait", async () => {
      source.controlAnswer = () => new Promise(() => {});
      const res = await post(`${url}/api/control/active`, "stop", auth);
      equal(res.status, 202);
      equal((await res.json()).result, "queued");
    });
    await t.step("should say 502 with the device's reason when it fails", async () => {
      source.controlAnswer = () => Promise.resolve({ outcome: "failed", error: "refused" });
      const res = await post(`${url}/api/control/active`, "stop", auth);
      equal(res.status, 502);
      match((await res.json()).error, /stop the system failed: refused/);
    });
    await t.step("should answer 408 to a body that never arrives", async () => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: Number(new URL(url).port) });
      await conn.write(new TextEncoder().encode(
        `POST /api/control/active HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${TOKEN}\r\n` +
          "Content-Type: text/plain\r\nContent-Length: 10\r\n\r\nst",
      ));
      const buf = new Uint8Array(4096);
      const n = await conn.read(buf);
      conn.close();
      match(new TextDecoder().decode(buf.subarray(0, n ?? 0)), /^HTTP\/1\.1 408/);
    });
  });
});

Deno.test("ess serve answers unknown paths, wrong methods and the page safely", async (t) => {
  const source = new FakeSource();
  await withServer(source, {}, async (url) => {
    await t.step("should answer 404 JSON for an unknown path", async () => {
      const res = await fetch(`${url}/nope/../../etc/passwd`);
      equal(res.status, 404);
      match((await res.json()).error, /no such path/);
    });
    await t.step("should take a dot in a route's path as a dot", async () => {
      for (const path of ["/api/openapi_json", "/appxjs", "/icon-svg", "/app.jss"]) {
        const res = await fetch(`${url}${path}`);
        equal(res.status, 404, path);
        await res.body?.cancel();
      }
    });
    await t.step(
      "should answer 405 with Allow for a wrong method, also to a preflight",
      async () => {
        for (const method of ["DELETE", "OPTIONS", "PUT"]) {
          const res = await fetch(`${url}/api/state`, { method });
          equal(res.status, 405);
          equal(res.headers.get("allow"), "GET");
          equal(res.headers.get("access-control-allow-origin"), null);
          await res.body?.cancel();
        }
      },
    );
    await t.step("should answer 414 to a huge URL", async () => {
      const res = await fetch(`${url}/api/state?${"a".repeat(5000)}`);
      equal(res.status, 414);
      await res.body?.cancel();
    });
    await t.step("should send the page with a strict CSP and no-store on the API", async () => {
      const page = await fetch(`${url}/`);
      equal(page.status, 200);
      match(page.headers.get("content-security-policy")!, /default-src 'self'/);
      match(page.headers.get("content-security-policy")!, /frame-ancestors 'none'/);
      equal(page.headers.get("x-content-type-options"), "nosniff");
      equal(page.headers.get("referrer-policy"), "no-referrer");
      const html = await page.text();
      ok(!/<script>|<script [^>]*>[^<]/.test(html), "no inline script");
      ok(!/https?:\/\//.test(html.replace(/xmlns="http:\/\/www\.w3\.org\/2000\/svg"/g, "")));
      const api = await fetch(`${url}/api/state`);
      equal(api.headers.get("cache-control"), "no-store");
      await api.body?.cancel();
    });
  });
});

Deno.test("ess serve /api/openapi.json describes every route the server answers", async (t) => {
  const source = new FakeSource();
  await withServer(source, { controlToken: TOKEN }, async (url) => {
    const doc = (await getJson(`${url}/api/openapi.json`)).body as {
      openapi: string;
      paths: Record<string, Record<string, unknown>>;
    };
    await t.step("should be OpenAPI 3.1", () => {
      match(doc.openapi, /^3\.1\.\d+$/);
    });
    await t.step("should describe each route, and each route should answer", async () => {
      deepEqual(
        Object.entries(doc.paths).flatMap(([path, ops]) =>
          Object.keys(ops).map((m) => `${m} ${path}`)
        ).sort(),
        ROUTES.map((r) => `${r.method.toLowerCase()} ${r.path}`).sort(),
      );
      for (const route of ROUTES) {
        const path = route.path.replace("{device}", "pv").replace("{span}", "day")
          .replace("{name}", "winter_mode");
        const res = await fetch(`${url}${path}`, {
          method: route.method,
          ...(route.method === "POST"
            ? { body: "on", headers: { authorization: `Bearer ${TOKEN}` } }
            : {}),
        });
        ok(res.status in route.responses, `${route.method} ${path} -> ${res.status}`);
        await res.body?.cancel();
      }
    });
    await t.step("should list every status a control can answer, as the tests meet them", () => {
      const control = doc.paths["/api/control/{name}"]!["post"] as { responses: object };
      for (const status of [200, 202, 400, 401, 403, 404, 408, 413, 415, 502, 503]) {
        ok(String(status) in control.responses, String(status));
      }
    });
    await t.step("should allow a null poll interval in /api/info, as it is sent", async () => {
      const info = doc.paths["/api/info"]!["get"] as {
        responses: Record<string, { content: Record<string, { schema: Schema }> }>;
      };
      const schema = info.responses["200"]!.content["application/json"]!.schema;
      const types = [(schema["properties"] as Record<string, Schema>)["intervalSeconds"]!["type"]]
        .flat();
      const sent = (await getJson(`${url}/api/info`)).body["intervalSeconds"];
      equal(sent, null, "this server was given no interval");
      ok(types.includes("null"), JSON.stringify(types));
    });
  });
});

Deno.test("ess serve never answers a secret, even when the device echoes it", async (t) => {
  const device = "a1b2c3d4e5f6";
  const mqtt = 'mqtt-pass"word\\1';
  const authKey = "0f8fad5b-d9cb-469f-a165-70867728950e";
  const secrets = [device, mqtt, TOKEN, authKey];
  const source = new FakeSource();
  const echo = `device said ${device} ${mqtt} ${TOKEN} ${authKey}`;
  source.poll({
    home: { statistics: { pcs_pv_total_power: "100" }, auth_key: authKey, note: echo },
    systeminfo: { pms: { serialno: echo, model: echo, password: device } },
    common: { PV: { [echo]: echo }, BATT: { password: mqtt } },
  });
  source.graphAnswer = () =>
    Promise.reject(new Error(`refused: {"status":"fail","auth_key":"${authKey}"} ${echo}`));
  source.controlAnswer = () => Promise.resolve({ outcome: "failed", error: echo });
  await withServer(
    source,
    { controlToken: TOKEN, logger: loggerWith(device, mqtt) },
    async (url) => {
      const auth = { authorization: `Bearer ${TOKEN}` };
      const bodies: [string, string][] = [];
      const grab = async (what: string, res: Promise<Response>) => {
        const r = await res;
        bodies.push([what, await r.text()]);
      };
      await t.step("should keep secrets out of every route and every error", async () => {
        for (const route of ROUTES.filter((r) => r.method === "GET" && r.id !== "events")) {
          await grab(
            route.path,
            fetch(`${url}${route.path.replace("{device}", "pv").replace("{span}", "day")}`),
          );
        }
        await grab("control ok", post(`${url}/api/control/active`, "start", auth));
        await grab("control bad", post(`${url}/api/control/active`, `${device} ${TOKEN}`, auth));
        await grab(
          "control 401",
          post(`${url}/api/control/active`, "start", { authorization: `Bearer ${device}` }),
        );
        await grab("404", fetch(`${url}/${TOKEN}/${device}`));
        await grab("graph date", fetch(`${url}/api/graph/pv/day?date=${device}`));
        const events = await fetch(`${url}/api/events`);
        const reader = events.body!.pipeThrough(new TextDecoderStream()).getReader();
        source.poll(source.snap.states);
        const text = await readUntil(reader, (t) => (t.match(/event: state/g) ?? []).length >= 2, {
          what: "two state events",
        });
        await reader.cancel();
        bodies.push(["events", text]);
        for (const [what, body] of bodies) {
          for (const secret of secrets) {
            ok(!body.includes(secret), `${what} contains ${secret}: ${body.slice(0, 300)}`);
            ok(!body.includes(JSON.stringify(secret).slice(1, -1)), `${what} contains ${secret}`);
          }
        }
        ok(bodies.some(([, body]) => body.includes("***")), "redaction happened");
      });
    },
  );
});

Deno.test("ess serve hides in prose the values of the keys it drops from trees", async (t) => {
  const source = new FakeSource();
  source.poll({ home: { statistics: { token: "t-0123456789", note: "ok" } } });
  source.graphAnswer = () =>
    Promise.reject(new Error('refused: {"token":"t-0123456789","secret":"s-9876543210"}'));
  await withServer(source, {}, async (url) => {
    await t.step("should drop a token key from the tree and its value from an error", async () => {
      const state = await (await fetch(`${url}/api/state`)).json();
      deepEqual(state.home, { statistics: { note: "ok" } });
      const res = await fetch(`${url}/api/graph/pv/day?date=2026-01-01`);
      equal(res.status, 502);
      const { error } = await res.json();
      match(error, /"token":"\*\*\*","secret":"\*\*\*"/);
    });
  });
});

Deno.test("ess serve keeps out what its logger's redactor holds", async (t) => {
  // The CLI's logger holds the passwords and the token, and the device client adds each auth
  // key it is given: the device may echo one in any field, not only under `auth_key`.
  const mqtt = "mqtt-broker-password";
  const logger = loggerWith(mqtt);
  const key = "9c3f0e2a-5b7d-4e1f-8a6c-2d4b6f8e0a1c";
  const source = new FakeSource();
  source.poll({
    home: { pcs_fault: { pcs_status: `session ${key}` } },
    systeminfo: { pms: { serialno: key, model: mqtt } },
  });
  source.graphAnswer = () => Promise.resolve({ loginfo: [{ time: key, note: mqtt }] });
  await withServer(source, { logger }, async (url) => {
    logger.redactor.add(key);
    await t.step("should answer *** for a secret it learnt after it started", async () => {
      const state = await (await fetch(`${url}/api/state`)).json();
      equal(state.home.pcs_fault.pcs_status, "session ***");
      equal(state.systeminfo.pms.model, "***");
      for (const path of ["/api/state", "/metrics", "/api/graph/pv/day?date=2026-01-01"]) {
        const text = await (await fetch(`${url}${path}`)).text();
        ok(!text.includes(key) && !text.includes(mqtt), `${path}: ${text.slice(0, 300)}`);
      }
    });
  });
});

Deno.test("createHandler() refuses a control token that is easy to guess", async (t) => {
  await t.step("should throw a usage error naming the length", () => {
    let caught: unknown;
    try {
      createHandler({ source: new FakeSource(), controlToken: "tiny-tok" });
    } catch (err) {
      caught = err;
    }
    ok(caught instanceof UsageError);
    match((caught as Error).message, /has 8 characters: use at least 16,/);
    ok(!(caught as Error).message.includes("tiny-tok"), "the token is not repeated");
  });
});

Deno.test("ess serve /api/info says whether controls are on", async (t) => {
  const source = new FakeSource();
  for (const token of [undefined, TOKEN]) {
    await withServer(source, { controlToken: token, intervalSeconds: 10 }, async (url) => {
      await t.step(`should say controls ${token ? "on" : "off"}`, async () => {
        const { body } = await getJson(`${url}/api/info`);
        equal(body["controls"], token !== undefined);
        equal(body["intervalSeconds"], 10);
        const names = (body["controlList"] as { name: string }[]).map((c) => c.name);
        ok(names.includes("winter_mode") && names.includes("active"), names.join());
      });
    });
  }
});

Deno.test("ess serve keeps its answers well-formed whatever the secrets look like", async (t) => {
  // Short secrets such as an MQTT password "0000" or "true": each also occurs in ess's own
  // JSON (`"up":true`) and in metric values (a timestamp ending in 0000).
  const secrets = ["true", "0000"];
  const at = 1_780_000_000_000;
  const source = new FakeSource();
  source.poll({
    home: { statistics: { pcs_pv_total_power: "2174", load_power: "488" } },
    systeminfo: { pms: { serialno: "ESS0000X", model: "it is true" } },
  }, at);
  await withServer(
    source,
    { logger: loggerWith(...secrets), now: () => at + 4_000 },
    async (url) => {
      await t.step("should answer /api/state as JSON with ess's own fields intact", async () => {
        const text = await (await fetch(`${url}/api/state`)).text();
        const body = JSON.parse(text);
        equal(body.up, true);
        equal(body.lastSuccess, new Date(at).toISOString());
        equal(body.age, 4);
        equal(body.summary.pv_power_watts, 2174);
        deepEqual(body.systeminfo.pms, { serialno: "ESS***X", model: "it is ***" });
      });
      await t.step("should send state events that parse", async () => {
        const res = await fetch(`${url}/api/events`);
        const { events } = await readEvents(res.body!, 1);
        equal(events[0]!["up"], true);
      });
      await t.step("should keep every metrics line a valid sample", async () => {
        const text = await (await fetch(`${url}/metrics`)).text();
        for (const line of text.trimEnd().split("\n")) {
          if (line.startsWith("# ")) continue;
          match(line, /^[a-z_]+\{[^}]*\} -?\d+(\.\d+)?(e[-+]\d+)?$/, line);
        }
        match(text, /^ess_last_success_timestamp_seconds\{serial="ESS\*\*\*X"\} 1780000000$/m);
      });
      await t.step("should keep error answers JSON", async () => {
        const res = await fetch(`${url}/api/graph/pv/day?date=true`);
        equal(res.status, 400);
        match((await res.json()).error, /bad date "\*\*\*"/);
      });
    },
  );
});

Deno.test("createHandler() opens no event stream once closed", async (t) => {
  await t.step("should answer 503 to /api/events after close()", async () => {
    const handler = createHandler({ source: new FakeSource(), limits: { keepAliveMs: 50 } });
    handler.close();
    const res = await handler.handle(new Request("http://127.0.0.1/api/events"), "test");
    equal(res.status, 503);
    match((await res.json()).error, /stopping/);
  });
});

Deno.test("GraphCache reads the device for at most so many graphs a minute", async (t) => {
  let clock = 0;
  const reads: string[] = [];
  const empty = '{"loginfo":[]}\n';
  const cache = new GraphCache(
    (device, span, date) => {
      reads.push(`${device}/${span}/${date.day}`);
      return Promise.resolve(empty);
    },
    { ttlMs: 60_000, maxEntries: 64, maxChars: 1 << 20, maxInFlight: 2, maxReadsPerMinute: 3 },
    () => clock,
  );
  const day = (d: number) => ({ year: 2026, month: 6, day: d });
  await t.step("should answer busy beyond the rate, without asking the device", async () => {
    for (const d of [1, 2, 3]) deepEqual(await cache.get("pv", "day", day(d)), empty);
    clock = 59_000;
    equal(await cache.get("pv", "day", day(4)), "busy");
    deepEqual(reads, ["pv/day/1", "pv/day/2", "pv/day/3"]);
  });
  await t.step("should still answer what it keeps", async () => {
    deepEqual(await cache.get("pv", "day", day(2)), empty);
    equal(reads.length, 3);
  });
  await t.step("should read again once the minute has passed", async () => {
    clock = 60_000;
    deepEqual(await cache.get("pv", "day", day(4)), empty);
    deepEqual(reads.at(-1), "pv/day/4");
  });
});

Deno.test("GraphCache keeps at most so many characters of answers", async (t) => {
  // A device may send 1 MiB per graph: kept by the dozen, they would not fit the heap.
  const reads: number[] = [];
  const cache = new GraphCache(
    (_device, _span, date) => {
      reads.push(date.day);
      return Promise.resolve(date.day === 9 ? "x".repeat(5000) : `${date.day}`.repeat(400));
    },
    { ttlMs: 60_000, maxEntries: 64, maxChars: 1000, maxInFlight: 2, maxReadsPerMinute: 100 },
    () => 0,
  );
  const get = (d: number) => cache.get("pv", "day", { year: 2026, month: 6, day: d });
  await t.step("should drop the oldest answers to stay under the cap", async () => {
    for (const d of [1, 2, 3]) equal((await get(d)).length, 400);
    deepEqual(reads, [1, 2, 3]);
    equal(await get(3), "3".repeat(400), "kept");
    equal(await get(2), "2".repeat(400), "kept");
    equal(await get(1), "1".repeat(400), "dropped, so read again");
    deepEqual(reads, [1, 2, 3, 1]);
  });
  await t.step("should answer an answer over the cap, but not keep it", async () => {
    equal((await get(9)).length, 5000);
    equal((await get(9)).length, 5000);
    deepEqual(reads.slice(4), [9, 9]);
    equal(await get(3), "3".repeat(400), "still kept");
    equal(reads.length, 6);
  });
});

/** Opens a raw connection to `url` and sends `text`. */
async function rawConnection(url: string, text: string): Promise<Deno.TcpConn> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: Number(new URL(url).port) });
  await conn.write(new TextEncoder().encode(text));
  return conn;
}

/** Everything the server sends on `conn` until it closes it (or resets it). */
async function readToEnd(conn: Deno.TcpConn): Promise<string> {
  const buf = new Uint8Array(4096);
  let text = "";
  await withDeadline(
    (async () => {
      for (let n; (n = await conn.read(buf).catch(() => null)) !== null;) {
        text += new TextDecoder().decode(buf.subarray(0, n));
      }
    })(),
    { what: "the server to close the connection" },
  ).finally(() => conn.close());
  return text;
}

/** An event stream on a raw connection, once its status line came; the rest is left unread. */
async function rawEventStream(url: string): Promise<Deno.TcpConn> {
  const conn = await rawConnection(url, "GET /api/events HTTP/1.1\r\nHost: localhost\r\n\r\n");
  const head = new Uint8Array(12);
  await conn.read(head);
  equal(new TextDecoder().decode(head), "HTTP/1.1 200");
  return conn;
}

/** The status of `/api/state`, asked until it is 200 or `ms` have passed (0: no answer). */
async function stateStatusWithin(url: string, ms: number): Promise<number> {
  const until = Date.now() + ms;
  let status = 0;
  while (status !== 200 && Date.now() < until) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    status = await fetch(`${url}/api/state`).then(async (r) => {
      await r.body?.cancel();
      return r.status;
    }).catch(() => 0);
  }
  return status;
}

Deno.test("ess serve bounds connections and the time a request's head may take", async (t) => {
  const source = new FakeSource();
  const limits = { maxConnections: 3, headersTimeoutMs: 300 };
  await withServer(source, { limits }, async (url) => {
    await t.step("should answer 408 and close when a head does not arrive in time", async () => {
      const conn = await rawConnection(url, "GET /api/state HTTP/1.1\r\nHost: localhost\r\n");
      match(await readToEnd(conn), /^HTTP\/1\.1 408 /);
    });
    await t.step("should close connections beyond the cap at once", async () => {
      // Three event streams: once each has its status line, the server holds three connections.
      const held = [
        await rawEventStream(url),
        await rawEventStream(url),
        await rawEventStream(url),
      ];
      const extra = await rawConnection(url, "GET /api/state HTTP/1.1\r\nHost: localhost\r\n\r\n");
      equal(await readToEnd(extra), "", "closed without an answer");
      for (const conn of held) conn.close();
      equal(await stateStatusWithin(url, 5_000), 200, "serving again once they are gone");
    });
    await t.step("should read a path that starts with // as a path, not a host", async () => {
      const conn = await rawConnection(
        url,
        "GET //evil.example/api/state HTTP/1.1\r\nHost: localhost\r\n" +
          "Connection: close\r\n\r\n",
      );
      match(await readToEnd(conn), /^HTTP\/1\.1 404 /);
    });
    await t.step("should answer 400 to a request a Web Request cannot carry", async () => {
      for (const head of ["TRACE / HTTP/1.1", "GET * HTTP/1.1"]) {
        const conn = await rawConnection(
          url,
          `${head}\r\nHost: localhost\r\nConnection: close\r\n\r\n`,
        );
        match(await readToEnd(conn), /^HTTP\/1\.1 400 /, head);
      }
    });
  });
});

Deno.test("ess serve closes the connection of an event stream it drops", async (t) => {
  const source = new FakeSource();
  // One connection at most: while the dropped client's connection stays open, nobody else
  // gets in.
  const limits = { maxConnections: 1, eventQueueBytes: 64 * 1024 };
  await withServer(source, { limits }, async (url) => {
    await t.step("should free the connection though the client never reads again", async () => {
      const conn = await rawEventStream(url);
      const big = { home: { blob: "x".repeat(100_000) } };
      for (let i = 0; i < 400; i++) {
        source.poll(big);
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
      const status = await stateStatusWithin(url, 10_000);
      conn.close();
      equal(status, 200, "another client got in");
    });
  });
});
