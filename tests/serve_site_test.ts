/**
 * `ess serve` for a site of named devices (a config with `[device NAME]` sections): the state
 * and its events carry the site's sum and every device, graphs and controls name their device
 * and reach only it, and every metric has a `device` label. Three different simulators, each
 * polled by its own poller, as `ess serve` polls them.
 */
import { deepEqual, equal, match, ok } from "node:assert/strict";
import { startServer } from "../lib/serve/server.ts";
import { createLogger } from "../lib/log.ts";
import type { SiteSource } from "../lib/serve/source.ts";
import { siteRoutes } from "../lib/serve/site_routes.ts";
import { renderSiteMetrics } from "../lib/export/prometheus.ts";
import { normalise } from "../lib/model/normalise.ts";
import { getJson, post } from "./_serve_http.ts";
import { FakeSource, fixtureStates, type SimSite, withSimSite } from "./_serve_source.ts";
import { controlRequests, NOON } from "./_world.ts";
import { runCli, spawnDaemon } from "./_cli.ts";
import { startSite } from "./_site.ts";
import { peerCheck } from "./_peers.ts";
import { PROMTOOL, promtoolCheck } from "./_promtool.ts";
import { waitFor, withDeadline } from "./_wait.ts";

const TOKEN = "site-control-token-0123";
const NAMES = ["sim1", "sim2", "sim3"];
const promtool = peerCheck("promtool", PROMTOOL ? undefined : "promtool is not installed");

type DeviceDoc = {
  up: boolean;
  reading: { serial: string; socPct: number; power: Record<string, number> };
  home: unknown;
};
type SiteDoc = {
  site: {
    up: boolean | null;
    reading: {
      power: Record<string, number>;
      socPct: number;
      energyTodayWh: Record<string, number>;
      counted: string[];
      missing: string[];
    };
  };
  devices: Record<string, DeviceDoc>;
};

/** Runs `fn` against a server for the three simulators of `site`, on a free loopback port. */
async function withSiteServer(site: SimSite, fn: (url: string) => Promise<void>): Promise<void> {
  const source: SiteSource = {
    devices: new Map([...site.devices].map(([name, world]) => [name, world.source])),
  };
  const server = await startServer({ hostname: "127.0.0.1", port: 0 }, {
    source,
    controlToken: TOKEN,
    limits: { eventGapMs: 100 },
  });
  try {
    await fn(server.url);
  } finally {
    await server.close();
  }
}

/** The first `state` event of `/api/events`. */
async function firstEvent(url: string): Promise<SiteDoc> {
  const res = await fetch(`${url}/api/events`);
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  try {
    return await withDeadline(
      (async () => {
        for (;;) {
          const data = /^event: state\ndata: (.*)$/m.exec(text);
          if (data && text.includes("\n\n", data.index)) return JSON.parse(data[1]!) as SiteDoc;
          const { value, done } = await reader.read();
          if (done) throw new Error("the stream ended");
          text += value;
        }
      })(),
      { what: "the first state event" },
    );
  } finally {
    await reader.cancel();
  }
}

/** Checks the site's sums against the devices' own readings in the same document. */
function assertSums(doc: SiteDoc, counted: readonly string[]): void {
  const devices = counted.map((name) => doc.devices[name]!.reading);
  for (const flow of ["pvW", "loadW", "batteryW", "gridW"]) {
    const sum = devices.reduce((total, r) => total + r.power[flow]!, 0);
    ok(Math.abs(doc.site.reading.power[flow]! - sum) < 1e-9, `${flow}: ${sum}`);
  }
  const mean = devices.reduce((total, r) => total + r.socPct, 0) / devices.length;
  ok(Math.abs(doc.site.reading.socPct - mean) < 1e-9, "the mean SoC");
  deepEqual(doc.site.reading.counted, counted);
}

Deno.test("ess serve for a site shows the site's sum and each device by name", async (t) => {
  await withSimSite(3, (site) =>
    withSiteServer(site, async (url) => {
      await t.step("should answer /api/state with every device's own state", async () => {
        const { status, body } = await getJson(`${url}/api/state`);
        equal(status, 200);
        const doc = body as unknown as SiteDoc;
        deepEqual(Object.keys(body), ["site", "devices"]);
        deepEqual(Object.keys(doc.devices), NAMES);
        for (const [name, world] of site.devices) {
          deepEqual(doc.devices[name]!.home, world.sim.device.read("home"), name);
          equal(doc.devices[name]!.up, true);
        }
        const serials = new Set(NAMES.map((name) => doc.devices[name]!.reading.serial));
        equal(serials.size, 3, "three different devices");
      });

      await t.step("should sum the devices' power and today's energy", async () => {
        const doc = (await getJson(`${url}/api/state`)).body as unknown as SiteDoc;
        equal(doc.site.up, true);
        deepEqual(doc.site.reading.missing, []);
        assertSums(doc, NAMES);
        ok(doc.site.reading.power["pvW"]! > 0, "the sun shines on the site");
        ok(Object.keys(doc.site.reading.energyTodayWh).length > 0, "today's energy");
      });

      await t.step("should send the same document over /api/events", async () => {
        const doc = await firstEvent(url);
        deepEqual(Object.keys(doc.devices), NAMES);
        assertSums(doc, NAMES);
      });

      await t.step("should describe the site's routes, each of which answers", async () => {
        const doc = (await getJson(`${url}/api/openapi.json`)).body as {
          paths: Record<string, Record<string, { parameters?: { name: string }[] }>>;
        };
        const routes = siteRoutes(NAMES);
        deepEqual(
          Object.keys(doc.paths).sort(),
          [...new Set(routes.map((r) => r.path))].sort(),
        );
        ok("/api/control/{device}/{name}" in doc.paths);
        ok(!("/api/control/{name}" in doc.paths));
        for (const route of routes) {
          const path = route.path.replace("{device}", "sim1").replace("{graph}", "pv")
            .replace("{span}", "day").replace("{name}", "winter_mode");
          const res = await fetch(`${url}${path}`, {
            method: route.method,
            ...(route.method === "POST"
              ? { body: "off", headers: { authorization: `Bearer ${TOKEN}` } }
              : {}),
          });
          ok(res.status in route.responses, `${route.method} ${path} -> ${res.status}`);
          await res.body?.cancel();
        }
      });

      await t.step("should read each device's graphs, and refuse unknown devices", async () => {
        const { status, body } = await getJson(`${url}/api/graph/sim3/pv/day?date=2026-06-21`);
        equal(status, 200);
        ok(Array.isArray(body["loginfo"]) && body["loginfo"].length > 0);
        const day = { year: 2026, month: 6, day: 21 };
        for (const name of ["sim1", "sim3"]) {
          const own = await site.devices.get(name)!.source.client.graph("pv", "day", day);
          deepEqual(
            (await getJson(`${url}/api/graph/${name}/pv/day?date=2026-06-21`)).body,
            JSON.parse(JSON.stringify(own)),
            name,
          );
        }
        const other = (await getJson(`${url}/api/graph/sim1/pv/day?date=2026-06-21`)).body;
        ok(JSON.stringify(other) !== JSON.stringify(body), "each device has its own history");
        for (const path of ["/api/graph/sim4/pv/day", "/api/graph/sim3/sun/day"]) {
          const res = await getJson(`${url}${path}`);
          equal(res.status, 404, path);
          match(String(res.body["error"]), /no such (device|graph)/);
        }
        const single = await getJson(`${url}/api/graph/pv/day`);
        equal(single.status, 404);
        match(String(single.body["error"]), /several devices, name one first/);
      });

      await t.step("should leave out a device that is down, and say so", async () => {
        await site.devices.get("sim3")!.sim.close();
        let down: SiteDoc | undefined;
        await waitFor(async () => {
          down = (await getJson(`${url}/api/state`)).body as unknown as SiteDoc;
          return down.site.up === false;
        }, { what: "sim3 to count as down" });
        equal(down!.devices["sim3"]!.up, false);
        deepEqual(down!.site.reading.missing, ["sim3"]);
        assertSums(down!, ["sim1", "sim2"]);
        const health = await getJson(`${url}/healthz`);
        deepEqual(health, {
          status: 200,
          body: { status: "ok", up: false, devices: { sim1: true, sim2: true, sim3: false } },
        });
        const listen = url.replace("http://", "");
        const r = await runCli(["health", "--config", "/dev/null", "--listen", listen]);
        equal(r.code, 0, r.stderr);
        equal(
          r.stdout,
          `ok: ess runs at ${listen} (devices: sim1 up, sim2 up, sim3 unreachable)\n`,
        );
      });
    }));
});

Deno.test("ess serve for a site sends a control to its own device only", async (t) => {
  await withSimSite(3, (site) =>
    withSiteServer(site, async (url) => {
      const auth = { authorization: `Bearer ${TOKEN}` };
      const before = new Map(
        [...site.devices].map(([name, w]) => [name, w.sim.requests.length]),
      );
      const sent = (name: string) => controlRequests(site.devices.get(name)!.sim, before.get(name));

      await t.step("should write /api/control/sim2/winter_mode to sim2 alone", async () => {
        const res = await post(`${url}/api/control/sim2/winter_mode`, "on", auth);
        deepEqual(await res.json(), { result: "written", command: "winter mode on" });
        equal(sent("sim2").length, 1);
        match(sent("sim2")[0]!, /winter/);
        deepEqual([sent("sim1"), sent("sim3")], [[], []]);
        deepEqual(site.devices.get("sim1")!.source.controls, []);
        deepEqual(site.devices.get("sim3")!.source.controls, []);
      });

      await t.step("should answer 404 for a device the site does not have", async () => {
        for (const device of ["sim4", "SIM1", "..%2Fsim1", "%5F_proto__", "constructor"]) {
          const res = await post(`${url}/api/control/${device}/winter_mode`, "on", auth);
          equal(res.status, 404, device);
          deepEqual(await res.json(), { error: "no such device: one of sim1, sim2, sim3" });
        }
        deepEqual([sent("sim1"), sent("sim3"), sent("sim2").length], [[], [], 1]);
      });

      await t.step("should ask for the device where a path names none", async () => {
        const res = await post(`${url}/api/control/winter_mode`, "on", auth);
        equal(res.status, 404);
        match((await res.json()).error, /several devices, name one first/);
      });

      await t.step("should keep the token rules", async () => {
        const res = await post(`${url}/api/control/sim1/winter_mode`, "on");
        equal(res.status, 401);
        await res.body?.cancel();
        equal(sent("sim1").length, 0);
      });
    }));
});

Deno.test({
  name: `ess serve for a site labels every series with its device${promtool.label}`,
  ignore: promtool.ignore,
  async fn(t) {
    promtool.assertPresent();
    await withSimSite(3, (site) =>
      withSiteServer(site, async (url) => {
        const text = await (await fetch(`${url}/metrics`)).text();
        await t.step("should pass promtool check metrics", async () => {
          deepEqual(await promtoolCheck(text), { code: 0, output: "" });
        });
        await t.step("should give each sample a device and a serial label", async () => {
          const doc = (await getJson(`${url}/api/state`)).body as unknown as SiteDoc;
          const lines = text.trimEnd().split("\n").filter((l) => !l.startsWith("#"));
          for (const line of lines) match(line, /\{device="sim[123]",serial="[^"]+"/, line);
          for (const name of NAMES) {
            const { serial, power } = doc.devices[name]!.reading;
            match(text, new RegExp(`^ess_up\\{device="${name}",serial="${serial}"\\} 1$`, "m"));
            match(
              text,
              new RegExp(
                `^ess_pv_power_watts\\{device="${name}",serial="${serial}"\\} ${power["pvW"]}$`,
                "m",
              ),
            );
          }
          equal(text.match(/^# TYPE ess_up gauge$/gm)?.length, 1, "one family, three samples");
        });
      }));
  },
});

Deno.test({
  name: `renderSiteMetrics() passes promtool with the fixtures and a site surplus${promtool.label}`,
  ignore: promtool.ignore,
  async fn(t) {
    promtool.assertPresent();
    const device = (family: string) => {
      const states = fixtureStates(family);
      return { states, reading: normalise(states), lastSuccess: 1_780_000_000_000, up: true };
    };
    const surplus = {
      watts: 1500,
      instantWatts: 1400,
      failSafe: false,
      prioritySoc: 80,
      reserveWatts: 100,
      windowSeconds: 60,
      rules: [],
    } as unknown as Parameters<typeof renderSiteMetrics>[1];
    const text = renderSiteMetrics(
      [["garage", device("classic")], ["house", device("home15")], ["shed", device("new")]],
      surplus,
      1_780_000_004_000,
    );
    await t.step("should pass promtool check metrics", async () => {
      deepEqual(await promtoolCheck(text), { code: 0, output: "" });
    });
    await t.step("should give the site's surplus its own family", () => {
      match(text, /^ess_site_surplus_watts\{scope="site"\} 1500$/m);
      ok(!/^ess_surplus_watts/m.test(text));
    });
  },
});

Deno.test("ess serve (subprocess) with [device] sections serves every device", async (t) => {
  await using site = await startSite(3, { simulator: { now: () => NOON } });
  const sims = site.devices.map((d) => d.sim);
  const names = site.devices.map((d) => d.name);
  const ess = spawnDaemon(
    ["serve", "--config", site.config, "--listen", "127.0.0.1:0", "--interval-seconds", "1"],
    { env: { ESS_CONTROL_TOKEN: TOKEN } },
  );
  try {
    const url = (await ess.waitFor(/ on (http:\/\/\S+)/))[1]!;
    await t.step("should poll every device, each logging under its name", async () => {
      for (const name of names) await ess.waitFor(new RegExp(`info: ${name}: polling 127`));
      await waitFor(async () => {
        const doc = (await getJson(`${url}/api/state`)).body as unknown as SiteDoc;
        return doc.site.up === true;
      }, { what: "every device to be polled" });
      const doc = (await getJson(`${url}/api/state`)).body as unknown as SiteDoc;
      deepEqual(Object.keys(doc.devices), names);
      sims.forEach((sim, i) => deepEqual(doc.devices[names[i]!]!.home, sim.device.read("home")));
      assertSums(doc, names);
    });
    await t.step("should send a control to its own device only", async () => {
      const before = sims.map((sim) => sim.requests.length);
      const res = await post(`${url}/api/control/${names[0]}/winter_mode`, "on", {
        authorization: `Bearer ${TOKEN}`,
      });
      equal(res.status, 200, await res.text());
      deepEqual(sims.map((sim, i) => controlRequests(sim, before[i]).length), [1, 0, 0]);
    });
  } finally {
    const { code, stderr } = await ess.stop();
    equal(code, 0, stderr);
  }
});

Deno.test("ess serve for a site sends a burst of polls as a few events", async (t) => {
  const sources = NAMES.map(() => new FakeSource());
  const poll = (source: FakeSource, pv: number) =>
    source.poll({ home: { statistics: { pcs_pv_total_power: String(pv) } } });
  sources.forEach((source) => poll(source, 1));
  const server = await startServer({ hostname: "127.0.0.1", port: 0 }, {
    source: { devices: new Map(NAMES.map((name, i) => [name, sources[i]!])) },
    limits: { eventGapMs: 200 },
  });
  try {
    await t.step("should send the last poll's sum, in at most two events", async () => {
      const res = await fetch(`${server.url}/api/events`);
      const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
      const sums: number[] = [];
      let text = "";
      try {
        await withDeadline(
          (async () => {
            let burst = false;
            while (!sums.includes(3 * 100)) {
              const { value, done } = await reader.read();
              if (done) throw new Error("the stream ended");
              text += value;
              let end;
              while ((end = text.indexOf("\n\n")) >= 0) {
                const data = /^data: (.*)$/m.exec(text.slice(0, end));
                text = text.slice(end + 2);
                if (data) sums.push((JSON.parse(data[1]!) as SiteDoc).site.reading.power["pvW"]!);
              }
              if (!burst && sums.length > 0) {
                burst = true;
                // 90 polls, the last of each device at 100 W: the sentinel the events end on.
                for (let pv = 70; pv <= 100; pv++) sources.forEach((source) => poll(source, pv));
              }
            }
          })(),
          { what: "the event with the burst's last sum" },
        );
      } finally {
        await reader.cancel();
      }
      equal(sums[0], 3, "the first event, at once");
      equal(sums.at(-1), 300);
      ok(sums.length <= 3, `one event at once, then at most two for 90 polls: ${sums}`);
    });
  } finally {
    await server.close();
  }
});

Deno.test("ess serve for a site keeps every device's secrets out of every answer", async (t) => {
  const password = "garage-device-pass";
  const authKey = "5d0c6a4e-8f1b-4c2d-9e3a-7b6f5a4c3d2e";
  const [garage, house] = [new FakeSource(), new FakeSource()];
  garage.poll({
    home: { statistics: { pcs_pv_total_power: "100" }, auth_key: authKey },
    systeminfo: { pms: { serialno: "S1", model: `says ${password}` } },
  });
  // The other device repeats the first one's key: the server hides it there too.
  house.poll({ home: { statistics: { pcs_pv_total_power: "200" }, note: `key ${authKey}` } });
  house.graphAnswer = () => Promise.reject(new Error(`refused ${authKey} ${password}`));
  house.controlAnswer = () => Promise.resolve({ outcome: "failed", error: `no: ${password}` });
  const logger = createLogger("error", () => {});
  logger.redactor.add(password);
  const server = await startServer({ hostname: "127.0.0.1", port: 0 }, {
    source: { devices: new Map([["garage", garage], ["house", house]]) },
    controlToken: TOKEN,
    logger,
  });
  try {
    await t.step("should answer *** wherever a device's secret would be", async () => {
      const url = server.url;
      const auth = { authorization: `Bearer ${TOKEN}` };
      const bodies: [string, string][] = [];
      for (const path of ["/api/state", "/metrics", "/api/graph/house/pv/day?date=2026-01-01"]) {
        bodies.push([path, await (await fetch(`${url}${path}`)).text()]);
      }
      const control = await post(`${url}/api/control/house/winter_mode`, "on", auth);
      equal(control.status, 502);
      bodies.push(["control", await control.text()]);
      bodies.push(["events", JSON.stringify(await firstEvent(url))]);
      for (const [what, body] of bodies) {
        for (const secret of [password, authKey, TOKEN]) {
          ok(!body.includes(secret), `${what} contains ${secret}: ${body.slice(0, 300)}`);
        }
      }
      const doc = JSON.parse(bodies[0]![1]) as { devices: Record<string, Record<string, unknown>> };
      deepEqual(doc.devices["house"]!["home"], {
        statistics: { pcs_pv_total_power: "200" },
        note: "key ***",
      });
    });
  } finally {
    await server.close();
  }
});
