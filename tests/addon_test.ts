/**
 * The Home Assistant add-on's start path without a Supervisor: a fake Supervisor API (its MQTT
 * service, its token check), a fake /data/options.json whose password has `!`, `#` and quotes,
 * and the dashboard in Chromium under an ingress path, through a proxy that adds
 * `X-Ingress-Path` as the Supervisor's does.
 */
import { deepEqual, equal, match, ok } from "node:assert/strict";
import { join } from "node:path";
import { parseAddonOptions, supervisorMqtt } from "../lib/hass/addon.ts";
import { createHandler, startServer } from "../lib/serve/server.ts";
import { startSimulator } from "../lib/sim/simulator.ts";
import { rejectsWith } from "./_assert.ts";
import { startAedes, watch } from "./_broker.ts";
import { chromiumPath, launchChromium } from "./_chromium.ts";
import { runCli, spawnDaemon } from "./_cli.ts";
import { FakeSource } from "./_serve_source.ts";
import { peerCheck } from "./_peers.ts";
import { startSite } from "./_site.ts";
import { NOON } from "./_world.ts";

const TOKEN = "supervisor-token-1234";
const MQTT_PASSWORD = `mq!tt#"pa'ss`;

/** A fake Supervisor: `/services/mqtt` for the right bearer token; 401 otherwise. */
function fakeSupervisor(answer: () => Response): {
  url: string;
  asked: string[];
  close(): Promise<void>;
} {
  const asked: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) => {
    asked.push(`${request.method} ${new URL(request.url).pathname}`);
    if (request.headers.get("authorization") !== `Bearer ${TOKEN}`) {
      return Response.json({ result: "error", message: "Unauthorized" }, { status: 401 });
    }
    if (new URL(request.url).pathname !== "/services/mqtt") {
      return new Response(null, { status: 404 });
    }
    return answer();
  });
  return { url: `http://127.0.0.1:${server.addr.port}`, asked, close: () => server.shutdown() };
}

const mqttAnswer = (port: number) => () =>
  Response.json({
    result: "ok",
    data: {
      host: "127.0.0.1",
      port,
      ssl: false,
      protocol: "3.1.1",
      username: "addons",
      password: MQTT_PASSWORD,
    },
  });

Deno.test("supervisorMqtt() asks the Supervisor for its broker", async (t) => {
  await t.step("should take the broker the Supervisor names", async () => {
    const supervisor = fakeSupervisor(mqttAnswer(1883));
    try {
      deepEqual(await supervisorMqtt({ baseUrl: supervisor.url, token: TOKEN }), {
        host: "127.0.0.1",
        port: 1883,
        ssl: false,
        username: "addons",
        password: MQTT_PASSWORD,
      });
      deepEqual(supervisor.asked, ["GET /services/mqtt"]);
    } finally {
      await supervisor.close();
    }
  });

  await t.step(
    "should say what to do when there is no broker, or the token is refused",
    async () => {
      const supervisor = fakeSupervisor(() =>
        Response.json({ result: "error", message: "No mqtt service" }, { status: 400 })
      );
      try {
        await rejectsWith(
          () => supervisorMqtt({ baseUrl: supervisor.url, token: TOKEN }),
          Error,
          /answered HTTP 400\): install and start the Mosquitto broker add-on/,
        );
        await rejectsWith(
          () => supervisorMqtt({ baseUrl: supervisor.url, token: "wrong" }),
          Error,
          /refused the add-on's token, HTTP 401/,
        );
      } finally {
        await supervisor.close();
      }
    },
  );

  await t.step("should refuse an answer without a port, or too large", async () => {
    for (
      const [body, why] of [
        [JSON.stringify({ data: { host: "core-mosquitto", password: MQTT_PASSWORD } }), /no host/],
        [JSON.stringify({ data: { host: "x", port: 1, pad: "x".repeat(70_000) } }), /more than/],
        ["<html>", /did not answer JSON/],
      ] as const
    ) {
      const supervisor = fakeSupervisor(() => new Response(body));
      try {
        const err = await supervisorMqtt({ baseUrl: supervisor.url, token: TOKEN }).catch((e) => e);
        match(err.message, why);
        ok(!err.message.includes(MQTT_PASSWORD), "the answer's password stays out");
      } finally {
        await supervisor.close();
      }
    }
  });
});

Deno.test("parseAddonOptions() names the option that is wrong", () => {
  deepEqual(parseAddonOptions('{"log_level": "info", "mqtt_port": 1883, "x": true}', "o"), [
    { key: "log_level", value: "info", origin: "o: log_level" },
    { key: "mqtt_port", value: "1883", origin: "o: mqtt_port" },
    { key: "x", value: "true", origin: "o: x" },
  ]);
  for (
    const [text, message] of [
      ['{"ess_host": ["a"]}', /^o: ess_host: expected a string, a number or true\/false$/],
      ["[1]", /^o: expected a JSON object of options$/],
      ["{", /^o: not JSON/],
    ] as const
  ) {
    let error: Error | undefined;
    try {
      parseAddonOptions(text, "o");
    } catch (err) {
      error = err as Error;
    }
    match(error?.message ?? "", message);
  }
});

Deno.test("parseAddonOptions() turns the devices list into [device NAME] sections", async (t) => {
  const options = (devices: unknown, more: Record<string, unknown> = {}) =>
    JSON.stringify({ ess_host: "", interval_seconds: 10, ...more, devices });
  await t.step("should make each item a section, after the options for every device", () => {
    const entries = parseAddonOptions(
      options([
        { name: "garage", host: "192.168.1.20", password: "a!b#c", fingerprint: "" },
        { name: "house", host: "192.168.1.21", password: "p2", fingerprint: "AB:CD" },
      ]),
      "o",
    );
    deepEqual(entries, [
      { key: "interval_seconds", value: "10", origin: "o: interval_seconds" },
      ...[
        ["garage", 0, "host", "192.168.1.20"],
        ["garage", 0, "password", "a!b#c"],
        ["house", 1, "host", "192.168.1.21"],
        ["house", 1, "password", "p2"],
        ["house", 1, "fingerprint", "AB:CD"],
      ].map(([device, i, key, value]) => ({
        key,
        value,
        origin: `o: devices[${i}].${key}`,
        device,
        deviceOrigin: `o: devices[${i}]`,
      })),
    ]);
    deepEqual(parseAddonOptions(options([]), "o").map((e) => e.key), ["interval_seconds"]);
  });
  const refused: [string, unknown, RegExp][] = [
    ["a list that is none", { name: "garage" }, /^o: devices: expected a list of devices$/],
    ["an item that is no object", ["garage"], /^o: devices\[0\]: expected an object/],
    ["an item without a name", [{ host: "h" }], /^o: devices\[0\]\.name: each device needs a name/],
    ["a bad name", [{ name: "Garage", host: "h" }], /^o: devices\[0\]\.name: a device name is/],
    [
      "a reserved name",
      [{ name: "status", host: "h" }],
      /^o: devices\[0\]\.name: "status" is taken/,
    ],
    [
      "a name listed twice",
      [{ name: "a", host: "h" }, { name: "a", host: "i" }],
      /^o: devices\[1\]\.name: device a is listed twice \(first at o: devices\[0\]\)$/,
    ],
    [
      "a device that sets nothing",
      [{ name: "a", host: "" }],
      /^o: devices\[0\]: device a sets nothing/,
    ],
    [
      "a key no device takes",
      [{ name: "a", host: "h", mqtt_server: "m" }],
      /^o: devices\[0\]\.mqtt_server: a device takes host, password, fingerprint and name$/,
    ],
    [
      "a value that is no text",
      [{ name: "a", host: ["h"] }],
      /^o: devices\[0\]\.host: expected a string/,
    ],
    [
      "more than 16 devices",
      Array.from({ length: 17 }, (_, i) => ({ name: `d${i}`, host: "h" })),
      /^o: devices: at most 16 devices, not 17$/,
    ],
  ];
  for (const [what, devices, message] of refused) {
    await t.step(`should refuse ${what}, naming the item`, () => {
      let error: Error | undefined;
      try {
        parseAddonOptions(options(devices), "o");
      } catch (err) {
        error = err as Error;
      }
      equal(error?.name, "ConfigError");
      match(error?.message ?? "", message);
    });
  }
});

Deno.test("ess takes the add-on's devices as a config's [device NAME] sections", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "ess-addon-" });
  const garage = await startSimulator({ name: "SIMGARAGE", password: "garage!#pass" });
  const house = await startSimulator({ name: "SIMHOUSE", password: "house'pass\"" });
  try {
    const file = join(dir, "options.json");
    const devices = [
      { name: "garage", host: garage.host, password: garage.password },
      { name: "house", host: house.host, password: house.password, fingerprint: house.fingerprint },
    ];
    await Deno.writeTextFile(file, JSON.stringify({ ess_host: "", devices }));
    await t.step("should read the device --device names, with its password", async () => {
      const run = await runCli(
        ["data", "--config", "/dev/null", "--only", "systeminfo", "--device", "house"],
        { env: { ESS_OPTIONS_FILE: file } },
      );
      equal(run.code, 0, run.stderr);
      equal(JSON.parse(run.stdout).systeminfo.pms.serialno, "SIMHOUSES");
    });
    await t.step("should refuse a device address beside the list, naming the option", async () => {
      await Deno.writeTextFile(file, JSON.stringify({ ess_password: "top-secret", devices }));
      const run = await runCli(["mqtt", "--config", "/dev/null", "--options-file", file]);
      equal(run.code, 2, run.stderr);
      match(
        run.stderr,
        /^ess: \S+options\.json: ess_password: password would apply to every device of the config's \[device\] sections \(garage and house\)/,
      );
      for (const secret of ["top-secret", garage.password, house.password]) {
        ok(!run.stderr.includes(secret), run.stderr);
      }
    });
  } finally {
    await garage.close();
    await house.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the add-on runs several devices from its devices option", async () => {
  await using site = await startSite(2, { simulator: { now: () => NOON } });
  const broker = await startAedes();
  const watcher = await watch(broker.url);
  const supervisor = fakeSupervisor(mqttAnswer(broker.port));
  const dir = await Deno.makeTempDir({ prefix: "ess-addon-" });
  const options = join(dir, "options.json");
  const devices = site.devices.map((d) => ({
    name: d.name,
    host: d.sim.host,
    password: d.sim.password,
    fingerprint: d.sim.fingerprint,
  }));
  await Deno.writeTextFile(
    options,
    JSON.stringify({ ess_host: "", devices, interval_seconds: 1, log_level: "info" }),
  );
  // As the add-on's config.yaml starts it.
  const ess = spawnDaemon(["mqtt", "--config", "/dev/null"], {
    env: {
      ESS_OPTIONS_FILE: options,
      SUPERVISOR_TOKEN: TOKEN,
      ESS_SUPERVISOR_URL: supervisor.url,
      ESS_LISTEN: "127.0.0.1:0",
      ESS_ALLOWED_CLIENTS: "127.0.0.1",
    },
  });
  try {
    const url = (await ess.waitFor(/ on (http:\/\/\S+)/))[1]!;
    await watcher.until(
      () =>
        watcher.last.get("ess/status")?.payload === "online" &&
        site.devices.every((d) => watcher.last.get(`ess/${d.name}/status`)?.payload === "online"),
      "the process's and each device's status",
    );
    ok(watcher.last.has("ess/sim2/reading/battery/soc"));
    const state = await (await fetch(`${url}/api/state`)).json();
    deepEqual(Object.keys(state.devices), ["sim1", "sim2"]);
    deepEqual(state.site.reading.counted, ["sim1", "sim2"]);
    const { code, stderr } = await ess.stop("SIGTERM");
    equal(code, 0, stderr);
    for (const secret of [...devices.map((d) => d.password), MQTT_PASSWORD]) {
      ok(!stderr.includes(secret), stderr);
    }
  } finally {
    await ess.stop();
    await watcher.close();
    await broker.close();
    await supervisor.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ess reads the add-on's options file, and names the option in its errors", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ess-addon-" });
  try {
    const file = join(dir, "options.json");
    await Deno.writeTextFile(file, JSON.stringify({ ess_host: "", interval_seconds: 0 }));
    const bad = await runCli(["serve", "--config", "/dev/null", "--host", "127.0.0.1:9"], {
      env: { ESS_OPTIONS_FILE: file },
    });
    equal(bad.code, 2, bad.stderr);
    match(bad.stderr, /options\.json: interval_seconds: interval-seconds must be/);
    const missing = await runCli(["data", "--options-file", join(dir, "none.json")]);
    equal(missing.code, 2);
    match(missing.stderr, /Cannot read the add-on options .*none\.json: no such file/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("--allowed-clients: only those clients are served, but /healthz answers anyone", async () => {
  const handler = createHandler({ source: new FakeSource(), allowedClients: ["172.30.32.2"] });
  try {
    const ask = (path: string, remote: string) =>
      handler.handle(new Request(`http://172.30.32.1:8099${path}`), remote);
    const refused = await ask("/api/state", "192.168.1.50:41234");
    equal(refused.status, 403);
    match((await refused.json()).error, /allowed clients/);
    equal((await ask("/healthz", "192.168.1.50:41234")).status, 200);
    const proxy = await ask("/api/state", "172.30.32.2:50000");
    equal(proxy.status, 200);
    await proxy.body?.cancel();
    const mapped = await ask("/", "[::ffff:172.30.32.2]:50000");
    equal(mapped.status, 200, "an IPv4-mapped address is the same client");
    await mapped.body?.cancel();
  } finally {
    handler.close();
  }
});

Deno.test("the add-on's ingress port answers the Host the browser gave Home Assistant", async () => {
  // The Supervisor's proxy passes on the browser's Host, which ess cannot know; the add-on
  // allows any (ESS_ALLOWED_HOSTS=*), as only the proxy's requests are served.
  const request = () =>
    new Request("http://172.30.32.1:8099/api/state", {
      headers: { host: "homeassistant.local:8123", "x-ingress-path": INGRESS },
    });
  for (const [allowedHosts, status] of [[["*"], 200], [[], 421]] as const) {
    const handler = createHandler({
      source: new FakeSource(),
      allowedClients: ["172.30.32.2"],
      allowedHosts,
      machineNames: [],
    });
    try {
      const answer = await handler.handle(request(), "172.30.32.2:50000");
      equal(answer.status, status);
      await answer.body?.cancel();
    } finally {
      handler.close();
    }
  }
});

/** The Supervisor's ingress path for the test's add-on. */
const INGRESS = "/api/hassio_ingress/Xk3f-test-session";

/** Home Assistant's frontend, reduced to what matters here: the add-on's page in an iframe. */
const FRONTEND =
  `<!doctype html><link rel="icon" href="data:,"><iframe src="${INGRESS}/" width="1200" height="850"></iframe>`;

/**
 * A proxy like the Supervisor's ingress: `INGRESS/…` goes to `target/…` with `X-Ingress-Path`;
 * `/` is the frontend that frames it; any other path is recorded in `outside` (a URL the page
 * built absolute) and answered 404.
 */
function ingressProxy(target: string) {
  const outside: string[] = [];
  const upstream = new AbortController();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const url = new URL(req.url);
    if (url.pathname === "/") {
      return new Response(FRONTEND, { headers: { "content-type": "text/html" } });
    }
    if (url.pathname !== INGRESS && !url.pathname.startsWith(`${INGRESS}/`)) {
      outside.push(url.pathname);
      return new Response("not under the ingress path", { status: 404 });
    }
    const headers = new Headers(req.headers);
    headers.set("x-ingress-path", INGRESS);
    const path = url.pathname.slice(INGRESS.length) || "/";
    const answer = await fetch(`${target}${path}${url.search}`, {
      method: req.method,
      headers,
      body: req.body,
      signal: upstream.signal,
    });
    return new Response(answer.body, { status: answer.status, headers: answer.headers });
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    outside,
    async close() {
      upstream.abort();
      await server.shutdown();
    },
  };
}

const CHROMIUM = chromiumPath();
const chromium = peerCheck("chromium", CHROMIUM ? undefined : "chromium is not installed");
const E2E = "the add-on starts from options.json and the Supervisor's broker, and serves ingress";

Deno.test({
  name: `${E2E}${chromium.label}`,
  ignore: chromium.ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    chromium.assertPresent();
    // Noon today (the tests run in UTC): the sun shines and today's graph has bars.
    const noon = new Date();
    noon.setHours(12, 0, 0, 0);
    const sim = await startSimulator({ password: `de!v#"ice'pw`, now: () => noon });
    const broker = await startAedes();
    const watcher = await watch(broker.url);
    const supervisor = fakeSupervisor(mqttAnswer(broker.port));
    const dir = await Deno.makeTempDir({ prefix: "ess-addon-" });
    const options = join(dir, "options.json");
    await Deno.writeTextFile(
      options,
      JSON.stringify({
        ess_host: sim.host,
        ess_password: sim.password,
        fingerprint: sim.fingerprint,
        interval_seconds: 1,
        log_level: "info",
      }),
    );
    const ess = spawnDaemon(["mqtt", "--config", "/dev/null"], {
      env: {
        ESS_OPTIONS_FILE: options,
        SUPERVISOR_TOKEN: TOKEN,
        ESS_SUPERVISOR_URL: supervisor.url,
        ESS_LISTEN: "127.0.0.1:0",
        ESS_ALLOWED_CLIENTS: "127.0.0.1",
      },
    });
    let proxy: ReturnType<typeof ingressProxy> | undefined;
    let browser: Awaited<ReturnType<typeof launchChromium>> | undefined;
    try {
      await t.step("should bridge with the broker the Supervisor named", async () => {
        await ess.waitFor(new RegExp(`MQTT broker from the Supervisor: 127.0.0.1:${broker.port}`));
        deepEqual(supervisor.asked, ["GET /services/mqtt"]);
        await watcher.until(
          () =>
            watcher.last.has("ess/home/statistics/pcs_pv_total_power") &&
            watcher.last.get("ess/status")?.payload === "online",
          "the device's values on MQTT",
        );
      });

      const url = (await ess.waitFor(/ on (http:\/\/\S+)/))[1]!;
      proxy = ingressProxy(url);
      browser = await launchChromium();
      const { page } = browser;
      await page.viewport(1280, 900);
      await page.navigate(`${proxy.url}/`);
      // The add-on's page, framed by the frontend as Home Assistant shows it.
      const framed = `document.querySelector("iframe").contentDocument`;

      await t.step("should show live values in the frontend's frame", async () => {
        await page.waitFor(
          `${framed}?.getElementById("pill")?.textContent === "live"`,
          "live, framed",
        );
        await page.waitFor(
          `Number(${framed}.getElementById("line-pv").dataset.watts) > 0`,
          "the PV power",
        );
      });

      await t.step("should draw the history under the ingress path", async () => {
        await page.waitFor(`${framed}.querySelectorAll("#chart rect.a").length >= 8`, "PV bars");
      });

      await t.step("should stay read-only without a control token", async () => {
        equal(await page.evaluate(`${framed}.getElementById("controls").hidden`), true);
      });

      await t.step("should have asked nothing outside the ingress path", () => {
        deepEqual(proxy!.outside, []);
        deepEqual(page.problems, []);
      });

      await t.step("should keep every secret out of its log", () => {
        for (const secret of [sim.password, MQTT_PASSWORD, TOKEN]) {
          ok(!ess.stderr.includes(secret), `the log shows a secret:\n${ess.stderr}`);
        }
      });
    } finally {
      await browser?.close();
      await proxy?.close();
      const { code, stderr } = await ess.stop();
      equal(code, 0, stderr);
      await supervisor.close();
      await watcher.close();
      await broker.close();
      await sim.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("ess health asks /healthz of the ess on --listen", async (t) => {
  const source = new FakeSource();
  source.snap = { states: {}, lastSuccess: Date.now(), up: true };
  const server = await startServer({ hostname: "127.0.0.1", port: 0 }, { source });
  try {
    await t.step("should exit 0 and say so while ess runs", async () => {
      const listen = `0.0.0.0:${server.address.port}`;
      const r = await runCli(["health", "--config", "/dev/null"], { env: { ESS_LISTEN: listen } });
      equal(r.code, 0, r.stderr);
      equal(r.stdout, `ok: ess runs at ${listen} (device up)\n`);
    });
  } finally {
    await server.close();
  }
  await t.step("should exit 1 with one line when nothing answers", async () => {
    const r = await runCli([
      "health",
      "--config",
      "/dev/null",
      "--listen",
      `127.0.0.1:${server.address.port}`,
    ]);
    equal(r.code, 1);
    match(r.stderr, /^ess: no answer from http:\/\/127\.0\.0\.1:\d+\/healthz: Connection refused/);
    equal(r.stderr.trim().split("\n").length, 1);
  });
});
