/**
 * `ess mqtt` and `ess hass` as processes, with a config that declares three simulated devices
 * as `[device NAME]` sections, against a real broker (aedes, and mosquitto where installed):
 * each device under `ess/<name>/`, commands reaching only their device, the process's last
 * will on `ess/status`, and `ess hass` announcing, printing and removing every device.
 */
import { deepEqual, equal, match, ok } from "node:assert/strict";
import type { JsonObject } from "../lib/device/flatten.ts";
import { BROKERS, freePort, startAedes, type TestBroker, watch, type Watcher } from "./_broker.ts";
import { getJson } from "./_serve_http.ts";
import { waitFor } from "./_wait.ts";
import { runCli, spawnCli } from "./_cli.ts";
import { discoveryProblems, entityState } from "./_hass_rules.ts";
import { controlRequests, NOON } from "./_world.ts";
import { startSite } from "./_site.ts";

const NAMES: readonly string[] = ["sim1", "sim2", "sim3"];

/** A running `ess mqtt`, its stderr gathered as it comes. */
interface Running {
  child: Deno.ChildProcess;
  stderr(): string;
  done: Promise<void>;
  exited: boolean;
}

/** Whether `ess mqtt` still runs; it fails the wait at once, with its stderr, if not. */
function alive(run: Running): boolean {
  if (run.exited) throw new Error(`ess mqtt ended:\n${run.stderr()}`);
  return true;
}

function spawnMqtt(args: string[]): Running {
  const child = spawnCli(["mqtt", ...args]);
  let text = "";
  const done = (async () => {
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) text += chunk;
  })();
  // stdout is not used; drain it so that the process never blocks on it.
  void child.stdout.pipeTo(new WritableStream());
  const running: Running = { child, stderr: () => text, done, exited: false };
  void child.status.then(() => running.exited = true);
  return running;
}

/** The device discovery configs the watcher holds, by the device name they carry. */
function configs(watcher: Watcher): Map<string, { topic: string; config: JsonObject }> {
  const found = new Map<string, { topic: string; config: JsonObject }>();
  for (const [topic, seen] of watcher.last) {
    if (!/^homeassistant\/device\/[^/]+\/config$/.test(topic) || seen.payload === "") continue;
    // The surplus's own configs (each device's and the site's): surplus_site_mqtt_cli_test.ts.
    if (/_surplus\/config$|\/ess_site_[^/]+\/config$/.test(topic)) continue;
    const config = JSON.parse(seen.payload) as JsonObject;
    const name = String((config["device"] as JsonObject)["name"]).replace(/^LG ESS /, "");
    found.set(name, { topic, config });
  }
  return found;
}

function topicsUnder(watcher: Watcher, prefix: string): Set<string> {
  return new Set([...watcher.last.keys()].filter((t) => t.startsWith(`${prefix}/`)));
}

for (const broker of BROKERS) {
  Deno.test({
    name: `ess mqtt and ess hass with three [device] sections (${broker.name})`,
    ignore: broker.ignore,
    async fn(t) {
      const b: TestBroker = await broker.start();
      await using site = await startSite(NAMES.length, {
        top: [`mqtt_server = ${b.url}`, "interval_seconds = 1"],
        simulator: { now: () => NOON },
      });
      const sim = (name: string) => site.device(name).sim;
      const config = site.config;
      const watcher = await watch(b.url);
      try {
        const run = spawnMqtt(["--config", config]);
        let killed = false;
        try {
          await t.step(
            "should publish every device under its name, and announce each",
            async () => {
              await watcher.until(
                () =>
                  alive(run) && watcher.last.get("ess/status")?.payload === "online" &&
                  NAMES.every((n) =>
                    watcher.last.get(`ess/${n}/status`)?.payload === "online" &&
                    watcher.last.has(`ess/${n}/home/statistics/pcs_pv_total_power`) &&
                    watcher.last.has(`ess/${n}/reading/battery/soc`)
                  ) && configs(watcher).size === 3,
                "three devices online, publishing and announced",
              );
              const found = configs(watcher);
              const serials = new Set<string>();
              for (const name of NAMES) {
                const { config } = found.get(name)!;
                const prefix = `ess/${name}`;
                deepEqual(
                  discoveryProblems(config, topicsUnder(watcher, prefix), prefix, {
                    named: { processPrefix: "ess" },
                  }),
                  [],
                  `${name}'s announcement`,
                );
                serials.add(String((config["device"] as JsonObject)["serial_number"]));
              }
              equal(serials.size, 3);
              match(run.stderr(), /ess: info: bridging 3 devices and mqtt:\/\/127\.0\.0\.1:\d+: /);
              match(run.stderr(), /ess: info: sim1: publishing under ess\/sim1\/ every 1 s/);
            },
          );

          await t.step("should carry a command only to its own device", async () => {
            const before = new Map(NAMES.map((n) => [n, sim(n)!.requests.length]));
            await watcher.publish("ess/sim2/control/winter_mode", "on");
            await watcher.until(
              () => controlRequests(sim("sim2")!, before.get("sim2")).length === 1,
              "the command at sim2",
            );
            // Sentinels: a command the other two refuse, heard after sim2's (one connection,
            // in order), then one more poll of each, which runs after any write submitted before.
            const others = ["sim1", "sim3"];
            for (const n of others) await watcher.publish(`ess/${n}/control/winter_mode`, "maybe");
            await watcher.until(
              () => others.every((n) => run.stderr().includes(`ignoring "maybe" on ess/${n}/`)),
              "the sentinels refused",
            );
            const after = new Map(others.map((n) => [n, sim(n)!.requests.length]));
            await watcher.until(
              () => others.every((n) => sim(n)!.requests.length > after.get(n)! + 1),
              "one more poll of sim1 and sim3",
            );
            for (const n of others) {
              deepEqual(controlRequests(sim(n)!, before.get(n)), [], `writes to ${n}`);
            }
          });

          await t.step("should leave the last will offline on ess/status when killed", async () => {
            run.child.kill("SIGKILL");
            killed = true;
            await watcher.until(
              () => watcher.last.get("ess/status")?.payload === "offline",
              "ess/status offline",
            );
            const retained = new Map([...watcher.last].map(([t, s]) => [t, s.payload]));
            for (const name of NAMES) {
              // The device's own status stays online; the process's makes its entities unavailable.
              equal(retained.get(`ess/${name}/status`), "online");
              const { config } = configs(watcher).get(name)!;
              equal(entityState(config, "battery_soc", retained, 0), "unavailable");
            }
          });
        } finally {
          if (!killed && !run.exited) run.child.kill("SIGTERM");
          await run.child.status;
          await run.done;
        }

        await t.step("ess hass --print should print every device's announcement", async () => {
          const { code, stdout, stderr } = await runCli(["hass", "--config", config, "--print"]);
          equal(stderr, "");
          equal(code, 0);
          const topics = stdout.split("\n").filter((l) => l.startsWith("homeassistant/"));
          deepEqual(topics, NAMES.map((n) => configs(watcher).get(n)!.topic));
        });

        await t.step("ess hass --remove should clear every device's config", async () => {
          const { code, stdout, stderr } = await runCli(["hass", "--config", config, "--remove"]);
          equal(stderr, "");
          equal(code, 0);
          // Each device's, each device's surplus and the site's surplus.
          match(stdout, new RegExp(`cleared 7 discovery configs on ${b.url}\\n$`));
          await watcher.until(() => configs(watcher).size === 0, "every config cleared");
        });

        await t.step("ess hass should announce every device again", async () => {
          const { code, stdout, stderr } = await runCli(["hass", "--config", config]);
          equal(stderr, "");
          equal(code, 0);
          equal(stdout.split("\n").filter((l) => l.startsWith("announced ")).length, 3);
          await watcher.until(() => configs(watcher).size === 3, "three configs again");
        });

        await t.step("ess hass --remove should clear what --once announced too", async () => {
          const once = await runCli(["mqtt", "--config", config, "--once"]);
          equal(once.stderr.match(/announced \d+ entities/g)?.length, 3, once.stderr);
          equal(once.code, 0);
          await watcher.until(
            () =>
              [...configs(watcher).values()].every((c) => c.config["availability"] === undefined),
            "the three --once announcements",
          );
          for (const name of NAMES) {
            const prefix = `ess/${name}`;
            deepEqual(
              discoveryProblems(
                configs(watcher).get(name)!.config,
                topicsUnder(watcher, prefix),
                prefix,
                {
                  expireAfterSeconds: 900,
                },
              ),
              [],
              `${name}'s --once announcement`,
            );
          }
          const { code, stdout } = await runCli(["hass", "--config", config, "--remove"]);
          equal(code, 0);
          match(stdout, new RegExp(`cleared 3 discovery configs on ${b.url}\\n$`));
          await watcher.until(() => configs(watcher).size === 0, "every config cleared");
        });

        await t.step(
          "--once should publish the others and name a device it cannot reach",
          async () => {
            await site.device("sim3").stop();
            const started = watcher.all.length;
            const { code, stderr } = await runCli([
              "mqtt",
              "--config",
              config,
              "--once",
              "--no-hass",
            ]);
            equal(code, 1);
            match(stderr, /\ness: error: sim3: Cannot reach 127\.0\.0\.1:\d+: connection refused/);
            match(stderr, /\ness: published 2 of 3 devices; not sim3 \(see above\)\n$/);
            const fresh = watcher.all.slice(started).map((m) => m.topic);
            for (const n of ["sim1", "sim2"]) {
              ok(fresh.includes(`ess/${n}/common/BATT/soc`), `${n} published`);
            }
            ok(!fresh.some((topic) => topic.startsWith("ess/sim3/")), "nothing for sim3");
          },
        );
      } finally {
        await watcher.close();
        await b.close();
      }
    },
  });
}

Deno.test("ess mqtt --listen with three [device] sections serves every device it bridges", async () => {
  const b = await startAedes();
  await using site = await startSite(NAMES.length, {
    top: [`mqtt_server = ${b.url}`, "interval_seconds = 1"],
    simulator: { now: () => NOON },
  });
  const watcher = await watch(b.url);
  const url = `http://127.0.0.1:${freePort()}`;
  const run = spawnMqtt(["--config", site.config, "--listen", url.slice("http://".length)]);
  try {
    await watcher.until(
      () => alive(run) && NAMES.every((n) => watcher.last.has(`ess/${n}/reading/battery/soc`)),
      "every device published",
    );
    // One poller per device, shared: the server shows what the bridges published.
    type Doc = { site: JsonObject; devices: Record<string, { up: boolean; home: JsonObject }> };
    let doc: Doc | undefined;
    await waitFor(async () => {
      alive(run);
      doc = (await getJson(`${url}/api/state`)).body as unknown as Doc;
      return NAMES.every((n) => doc?.devices?.[n]?.up === true);
    }, { what: "every device up in /api/state" });
    deepEqual(Object.keys(doc!.devices), [...NAMES]);
    for (const name of NAMES) {
      deepEqual(doc!.devices[name]!.home, site.device(name).sim.device.read("home"), name);
    }
    // The devices let one app session in at a time: the server used the bridges' sessions.
    for (const name of NAMES) {
      const logins = site.device(name).sim.requests.filter((r) => /login/.test(r.path));
      equal(logins.length, 1, `logins at ${name}`);
    }
  } finally {
    if (!run.exited) run.child.kill("SIGTERM");
    const status = await run.child.status;
    await run.done;
    equal(status.code, 0, run.stderr());
    await watcher.close();
    await b.close();
  }
});
