/**
 * `ess serve` and `ess mqtt --listen` as real processes (tests/_cli.ts: from source, with the
 * binary's flags) against the simulator: what they serve, their controls with and without the
 * token, what they log, their exit codes, one device session shared with the MQTT bridge, and
 * HTTP clients that misbehave on purpose.
 *
 * @module
 */
import { deepEqual, equal, match, ok } from "node:assert/strict";
import { flatten, type JsonObject } from "../lib/device/flatten.ts";
import { LOGIN_PATHS, STATE_PATHS, type StateName } from "../lib/device/states.ts";
import { type Simulator, startSimulator } from "../lib/sim/simulator.ts";
import { startAedes } from "./_broker.ts";
import { type HostileDevice, startHostileDevice } from "./_hostile_device.ts";
import { type Daemon, runCli, spawnDaemon } from "./_cli.ts";
import { getJson, post } from "./_serve_http.ts";
import { deviceArgs, deviceTopics, NOON, withWorld, type World, worldArgs } from "./_world.ts";
import { waitFor, withDeadline } from "./_wait.ts";

const TOKEN = "cli-test-control-token-0123";
/** The line that says where it serves, with the URL (the port picked for `:0`). */
const SERVING = /info: serving the dashboard, the API and \/metrics on (http:\/\/\S+)/;
const SERVED_STATES: readonly StateName[] = ["home", "common", "batt", "systeminfo"];

/** Starts the daemon and waits until it serves the device's first poll; returns its URL. */
async function served(ess: Daemon): Promise<string> {
  const url = (await ess.waitFor(SERVING))[1]!;
  await waitFor(async () => (await getJson(`${url}/api/state`)).body["up"] === true, {
    what: "a poll",
  });
  return url;
}

function homePolls(sim: Simulator): number {
  return sim.requests.filter((r) => r.path === STATE_PATHS.home).length;
}

function logins(sim: Simulator): number {
  return sim.requests.filter((r) => (LOGIN_PATHS as readonly string[]).includes(r.path)).length;
}

/** Every auth key the device was sent: one session has one. */
function authKeys(sim: Simulator): Set<string> {
  const keys = sim.requests.map((r) => (r.body as JsonObject | undefined)?.["auth_key"]);
  return new Set(keys.filter((k): k is string => typeof k === "string"));
}

/** The `state` events of an SSE body, as they come. */
async function* stateEvents(body: ReadableStream<Uint8Array>): AsyncGenerator<JsonObject> {
  let text = "";
  for await (const chunk of body.pipeThrough(new TextDecoderStream())) {
    text += chunk;
    let end;
    while ((end = text.indexOf("\n\n")) >= 0) {
      const data = /^event: state\ndata: (.*)$/m.exec(text.slice(0, end));
      text = text.slice(end + 2);
      if (data) yield JSON.parse(data[1]!);
    }
  }
}

Deno.test("ess serve (subprocess) serves the simulator's live state, metrics and controls", async (t) => {
  let time = NOON;
  const sim = await startSimulator({ now: () => time });
  const ess = spawnDaemon(
    ["serve", ...deviceArgs(sim), "--listen", "127.0.0.1:0", "--interval-seconds", "1"],
    { env: { ESS_CONTROL_TOKEN: TOKEN } },
  );
  try {
    const url = await served(ess);
    const home = () => sim.device.read("home")["statistics"] as Record<string, string>;

    await t.step("should log where it serves and what it polls, and no exposure", () => {
      match(ess.stderr, /info: polling 127\.0\.0\.1:\d+ every 1 s/);
      ok(!ess.stderr.includes("can now see"), ess.stderr);
    });

    await t.step("should answer /api/state with the simulator's trees", async () => {
      const { status, body } = await getJson(`${url}/api/state`);
      equal(status, 200);
      for (const state of SERVED_STATES) deepEqual(body[state], sim.device.read(state), state);
      equal("network" in body, false);
    });

    await t.step("should export the live figures on /metrics", async () => {
      const text = await (await fetch(`${url}/metrics`)).text();
      const serial = (sim.device.read("systeminfo")["pms"] as Record<string, string>)["serialno"];
      match(text, new RegExp(`^ess_up\\{serial="${serial}"\\} 1$`, "m"));
      match(
        text,
        new RegExp(
          `^ess_pv_power_watts\\{serial="${serial}"\\} ${home()["pcs_pv_total_power"]}$`,
          "m",
        ),
      );
    });

    await t.step("should send the new state over /api/events once the device changes", async () => {
      const res = await fetch(`${url}/api/events`);
      const events = stateEvents(res.body!);
      const first = (await events.next()).value as JsonObject;
      deepEqual(first["home"], sim.device.read("home"));
      time = new Date(NOON.getTime() + 4 * 3600_000);
      const later = home()["pcs_pv_total_power"];
      ok(
        later !==
          (first["home"] as Record<string, Record<string, string>>)["statistics"]![
            "pcs_pv_total_power"
          ],
      );
      await withDeadline(
        (async () => {
          for await (const event of events) {
            const home = event["home"] as Record<string, Record<string, string>>;
            if (home["statistics"]!["pcs_pv_total_power"] === later) return;
          }
          throw new Error("the event stream ended");
        })(),
        { what: "an event with the new PV power" },
      );
      await res.body!.cancel().catch(() => {});
    });

    const control = `${url}/api/control/winter_mode`;
    await t.step("should not change the simulator without the right token", async () => {
      // The second wrong token comes within the wait the first one earned: it is not looked at.
      const tries: [string | undefined, number][] = [
        [undefined, 401],
        ["Bearer wrong-token-wrong-token", 401],
        [`Bearer ${TOKEN}x`, 429],
      ];
      let retryAfter = 0;
      for (const [auth, status] of tries) {
        const res = await post(control, "on", auth ? { authorization: auth } : {});
        equal(res.status, status, String(auth));
        retryAfter = Number(res.headers.get("retry-after") ?? 0);
        await res.body?.cancel();
      }
      equal(sim.device.winterMode, false);
      equal(retryAfter, 1);
      await new Promise((resolve) => setTimeout(resolve, retryAfter * 1000));
    });

    await t.step("should switch winter mode with the token and show it at once", async () => {
      const res = await post(control, "on", { authorization: `Bearer ${TOKEN}` });
      equal(res.status, 200);
      deepEqual(await res.json(), { result: "written", command: "winter mode on" });
      equal(sim.device.winterMode, true);
      const { body } = await getJson(`${url}/api/state`);
      equal((body["batt"] as JsonObject)["winter_setting"], "on");
      // Once, by the control queue that wrote it, naming the request as its source.
      const logged = ess.stderr.split("\n").filter((line) => line.includes("winter mode on"));
      equal(logged.length, 1, ess.stderr);
      match(logged[0]!, /^ess: info: http 127\.0\.0\.1:\d+: winter mode on$/);
    });

    await t.step("should never answer or log the password or the token", async () => {
      for (const path of ["/api/state", "/metrics", "/api/info", "/api/openapi.json", "/"]) {
        const text = await (await fetch(`${url}${path}`)).text();
        ok(!text.includes(sim.password) && !text.includes(TOKEN), path);
      }
      const refused = await (await post(control, TOKEN, { authorization: "Bearer x" })).text();
      ok(!refused.includes(TOKEN));
      ok(!ess.stderr.includes(sim.password) && !ess.stderr.includes(TOKEN), ess.stderr);
    });

    await t.step("should exit 0 within 2 s of SIGTERM, having logged no error", async () => {
      const { code, ms, stderr } = await ess.stop();
      equal(code, 0, stderr);
      ok(ms < 2000, `exited ${Math.round(ms)} ms after SIGTERM`);
      ok(!/error|Deno\.serve/.test(stderr), stderr);
    });
  } finally {
    await ess.stop();
    await sim.close();
  }
});

Deno.test("ess serve (subprocess) on every address says who can reach it", async () => {
  const sim = await startSimulator({ now: () => NOON });
  const ess = spawnDaemon(["serve", ...deviceArgs(sim), "--listen", "0.0.0.0:0"]);
  try {
    const [line] = await ess.waitFor(/warning: listening on 0\.0\.0\.0:\d+: .*\n/);
    match(
      line,
      /: every machine that can reach this one on any of its addresses can now see the dashboard, the API and the metrics; keep it on your LAN\n$/,
    );
    match(ess.stderr, / on http:\/\/0\.0\.0\.0:\d+ \(read-only: no control token\)/);
    const port = Number(/listening on 0\.0\.0\.0:(\d+)/.exec(line)![1]);
    await waitFor(
      async () => (await getJson(`http://127.0.0.1:${port}/api/state`)).body["up"] === true,
      { what: "a poll" },
    );
    const res = await post(`http://127.0.0.1:${port}/api/control/active`, "stop");
    equal(res.status, 403, "no token: no controls");
    await res.body?.cancel();
    equal(sim.device.operation, "start");
  } finally {
    const { code } = await ess.stop();
    equal(code, 0);
    await sim.close();
  }
});

Deno.test("ess serve and ess mqtt --listen refuse bad settings with one line", async (t) => {
  const sim = await startSimulator({ now: () => NOON });
  const dir = await Deno.makeTempDir({ prefix: "ess-serve-cli-" });
  const device = deviceArgs(sim).slice(2);
  const oneLine = (run: { code: number; stderr: string }, code: number, pattern: RegExp) => {
    equal(run.code, code, run.stderr);
    equal(run.stderr.trimEnd().split("\n").length, 1, run.stderr);
    match(run.stderr, pattern);
  };
  try {
    await t.step("should exit 2 for a short control token, without showing it", async () => {
      const cli = await runCli([
        "serve",
        "--config",
        "/dev/null",
        ...device,
        "--control-token",
        "tooshort",
      ]);
      oneLine(cli, 2, /^ess: --control-token: the control token has 8 characters: use at least 16/);
      ok(!cli.stderr.includes("tooshort"));
      const env = await runCli(["serve", "--config", "/dev/null", ...device], {
        env: { ESS_CONTROL_TOKEN: "tooshort" },
      });
      oneLine(env, 2, /^ess: env ESS_CONTROL_TOKEN: the control token has 8 characters/);
    });

    await t.step("should name the config file and line of a bad listen or token", async () => {
      const file = `${dir}/essmqtt.conf`;
      await Deno.writeTextFile(file, "interval_seconds = 5\nlisten = 0.0.0.0:99999\n");
      oneLine(
        await runCli(["serve", "--config", file, ...device]),
        2,
        new RegExp(`^ess: ${file}:2: bad listen address "0\\.0\\.0\\.0:99999": use ADDR:PORT`),
      );
      await Deno.writeTextFile(file, "listen = 127.0.0.1:0\ncontrol_token = tooshort\n");
      oneLine(
        await runCli(["serve", "--config", file, ...device]),
        2,
        new RegExp(`^ess: ${file}:2: the control token has 8 characters`),
      );
      oneLine(
        await runCli(["serve", "--config", "/dev/null", ...device, "--listen", "nowhere"]),
        2,
        /^ess: --listen: bad listen address "nowhere"/,
      );
    });

    await t.step("should refuse --once with --listen on one command line", async () => {
      oneLine(
        await runCli([
          "mqtt",
          "--config",
          "/dev/null",
          ...device,
          "--once",
          "--listen",
          "127.0.0.1:0",
        ]),
        2,
        /^ess: --once polls once and exits, so it cannot serve: drop --listen or --once/,
      );
    });

    equal(sim.requests.length, 0, "nothing reached the device");

    await t.step("should exit 1 with a hint when the port is taken", async () => {
      const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      try {
        const port = (taken.addr as Deno.NetAddr).port;
        oneLine(
          await runCli([
            "serve",
            "--config",
            "/dev/null",
            ...device,
            "--listen",
            `127.0.0.1:${port}`,
          ]),
          1,
          new RegExp(
            `^ess: Cannot listen on 127\\.0\\.0\\.1:${port}: .*another program uses that port`,
          ),
        );
      } finally {
        taken.close();
      }
    });

    await t.step("should exit 78 for a wrong device password, as ess mqtt does", async () => {
      const wrong = deviceArgs(sim).map((a) => a === sim.password ? "0011aabbccdd" : a);
      const run = await runCli(["serve", ...wrong, "--listen", "127.0.0.1:0"]);
      equal(run.code, 78, run.stderr);
      match(run.stderr, /ess: .*password/i);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
    await sim.close();
  }
});

/** `ess mqtt --listen` on a free port, polling every second, with `extra` options. */
function spawnBridge(w: World, extra: readonly string[]): Daemon {
  return spawnDaemon([
    "mqtt",
    ...worldArgs(w),
    "--interval-seconds",
    "1",
    "--listen",
    "127.0.0.1:0",
    ...extra,
  ]);
}

function allPublished(w: World): boolean {
  for (const [topic, value] of deviceTopics(w.sim)) {
    if (w.watcher.last.get(topic)?.payload !== value) return false;
  }
  return true;
}

Deno.test("ess mqtt --listen (subprocess) serves while it bridges, over one device session", async (t) => {
  await withWorld(startAedes, async (w) => {
    const ess = spawnBridge(w, ["--control-token", TOKEN]);
    try {
      const url = await served(ess);
      await w.watcher.until(() => allPublished(w), "every state topic");
      const state = async () => (await getJson(`${url}/api/state`)).body;

      await t.step("should publish to MQTT what /api/state answers", async () => {
        const body = await state();
        for (const name of ["home", "common", "batt"]) {
          for (const { path, value } of flatten(body[name] as JsonObject)) {
            const topic = ["ess", name, ...path].join("/");
            equal(w.watcher.last.get(topic)?.payload, value, topic);
          }
        }
        equal(w.watcher.last.get("ess/status")?.payload, "online");
      });

      await t.step("should carry a control from HTTP to the device and to MQTT", async () => {
        const res = await post(`${url}/api/control/winter_mode`, "on", {
          authorization: `Bearer ${TOKEN}`,
        });
        equal(res.status, 200);
        await res.body?.cancel();
        equal(w.sim.device.winterMode, true);
        await w.watcher.until(
          () => w.watcher.last.get("ess/batt/winter_setting")?.payload === "on",
          "winter_setting on over MQTT",
        );
      });

      await t.step("should carry a control from MQTT to /api/state", async () => {
        await w.watcher.publish("ess/control/winter_mode", "false");
        await waitFor(
          async () => ((await state())["batt"] as JsonObject)["winter_setting"] === "off",
          { what: "winter_setting off in /api/state" },
        );
        equal(w.sim.device.winterMode, false);
      });

      await t.step("should read graphs through the same session", async () => {
        const { status, body } = await getJson(`${url}/api/graph/pv/day?date=2026-06-20`);
        equal(status, 200);
        equal((body["loginfo"] as unknown[]).length, 96);
      });

      await t.step("should log in once and use that one session for everything", async () => {
        const polls = homePolls(w.sim);
        await waitFor(() => homePolls(w.sim) >= polls + 3, { what: "three more polls" });
        equal(logins(w.sim), 1, "one login");
        equal(authKeys(w.sim).size, 1, "one auth key for polls, graphs, controls, systeminfo");
        ok(w.sim.requests.some((r) => r.path === STATE_PATHS.systeminfo));
        ok(w.sim.requests.some((r) => r.path.includes("/graph/")));
      });

      await t.step("should publish offline and exit 0 within 2 s of SIGTERM", async () => {
        const { code, ms, stderr } = await ess.stop();
        equal(code, 0, stderr);
        ok(ms < 2000, `exited ${Math.round(ms)} ms after SIGTERM`);
        await w.watcher.until(
          () => w.watcher.last.get("ess/status")?.payload === "offline",
          "offline",
        );
        ok(!/error|Deno\.serve/.test(stderr), stderr);
      });
    } finally {
      await ess.stop();
    }
  });
});

Deno.test("ess mqtt --listen (subprocess) keeps polling and publishing under hostile HTTP clients", async () => {
  await withWorld(startAedes, async (w) => {
    const ess = spawnBridge(w, ["--publish-mode", "all", "--no-hass"]);
    const conns: Deno.Conn[] = [];
    let dripping = true;
    try {
      const url = await served(ess);
      const port = Number(new URL(url).port);
      const raw = async (text: string) => {
        const conn = await Deno.connect({ hostname: "127.0.0.1", port });
        conns.push(conn);
        await conn.write(new TextEncoder().encode(text));
        return conn;
      };
      // 32 event streams (the most the server keeps open) whose clients read the status line
      // and never anything after it.
      for (let i = 0; i < 32; i++) {
        const conn = await raw("GET /api/events HTTP/1.1\r\nHost: localhost\r\n\r\n");
        const head = new Uint8Array(16);
        const n = await conn.read(head);
        equal(new TextDecoder().decode(head.subarray(0, n ?? 0)).slice(0, 12), "HTTP/1.1 200");
      }
      const refused = await fetch(`${url}/api/events`);
      equal(refused.status, 503, "the 33rd stream");
      await refused.body?.cancel();
      // A request that arrives one byte every 100 ms and never ends.
      const drip = await raw("GET /api/state HTTP/1.1\r\n");
      const dripper = (async () => {
        while (dripping) {
          await drip.write(new TextEncoder().encode("X")).catch(() => dripping = false);
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      })();

      const topic = "ess/home/statistics/pcs_pv_total_power";
      const published = () => w.watcher.all.filter((m) => m.topic === topic).length;
      const [polls, messages] = [homePolls(w.sim), published()];
      await waitFor(() => homePolls(w.sim) >= polls + 4 && published() >= messages + 4, {
        what: "four more polls published",
      });
      equal((await getJson(`${url}/api/state`)).status, 200);

      const { code, ms, stderr } = await ess.stop();
      equal(code, 0, stderr);
      ok(ms < 2000, `exited ${Math.round(ms)} ms after SIGTERM despite the clients`);
      dripping = false;
      await dripper;
    } finally {
      dripping = false;
      for (const conn of conns) {
        try {
          conn.close();
        } catch {
          // Closed by the server.
        }
      }
      await ess.stop();
    }
  });
});

Deno.test("ess serve (subprocess) hides the device's auth key wherever the device echoes it", async (t) => {
  // The device names the key it handed out in a field of its own, not under `auth_key`: only
  // the client that logged in knows it is a secret.
  const device: HostileDevice = await startHostileDevice({
    state: (name) =>
      name === "home"
        ? {
          statistics: { pcs_pv_total_power: "100" },
          pcs_fault: { pcs_status: `session ${device.keys.at(-1)}` },
        }
        : name === "systeminfo"
        ? { pms: { serialno: `S-${device.keys.at(-1)}`, model: "hostile" } }
        : {},
  });
  const ess = spawnDaemon([
    "serve",
    "--config",
    "/dev/null",
    "--host",
    device.host,
    "--password",
    device.password,
    "--interval-seconds",
    "1",
    "--listen",
    "127.0.0.1:0",
  ]);
  try {
    const url = await served(ess);
    await waitFor(async () => (await (await fetch(`${url}/metrics`)).text()).includes("ess_info"), {
      what: "systeminfo",
    });
    await t.step("should answer *** instead of the key on every route", async () => {
      const key = device.keys.at(-1)!;
      const state = await getJson(`${url}/api/state`);
      const home = state.body["home"] as Record<string, Record<string, string>>;
      equal(home["pcs_fault"]!["pcs_status"], "session ***");
      const texts = [JSON.stringify(state.body)];
      for (const path of ["/metrics", "/api/info"]) {
        texts.push(await (await fetch(`${url}${path}`)).text());
      }
      const events = await fetch(`${url}/api/events`);
      const first = stateEvents(events.body!).next();
      texts.push(JSON.stringify((await withDeadline(first, { what: "a state event" })).value));
      await events.body!.cancel().catch(() => {});
      for (const text of texts) ok(!text.includes(key), text.slice(0, 300));
      match(texts[1]!, /^ess_up\{serial="S-\*\*\*"\} 1$/m);
    });
  } finally {
    await ess.stop();
    await device.close();
  }
});
