/**
 * Several simulated devices from one process: each answers with its own serial, accepts only
 * its own password and has its own house; the tests' site helper writes a config ess reads and
 * takes one device down and back.
 *
 * @module
 */
import { deepEqual, equal, match, notEqual, ok, rejects, throws } from "node:assert/strict";
import { EssClient } from "../lib/device/client.ts";
import { createDeviceFetch } from "../lib/device/transport.ts";
import { WrongPasswordError } from "../lib/errors.ts";
import { parseConfig } from "../lib/config.ts";
import { type Simulator, startSimulator } from "../lib/sim/simulator.ts";
import { normalise } from "../lib/model/normalise.ts";
import { STATE_NAMES } from "../lib/device/states.ts";
import { NOON } from "./_world.ts";
import { siteDeviceOptions, startSimulators } from "../lib/sim/site.ts";
import { startSite } from "./_site.ts";
import { runCli, spawnCli } from "./_cli.ts";
import { readUntil, withDeadline } from "./_wait.ts";

/** Reads `state` of `sim` with `password` (its own unless told). */
async function readWith(sim: Simulator, state: "systeminfo" | "common", password = sim.password) {
  const fetch = createDeviceFetch({ fingerprint: sim.fingerprint, timeoutMs: 3000 });
  try {
    return await new EssClient({ host: sim.host, password, fetch }).read(state);
  } finally {
    fetch.close();
  }
}

function serial(systeminfo: unknown): string {
  return String((systeminfo as { pms: { serialno: string } }).pms.serialno);
}

Deno.test("siteDeviceOptions() gives every device its own name, seed, password and port", async (t) => {
  await t.step("should number names, seeds and ports and mix the models", () => {
    const site = siteDeviceOptions(4, { port: 9000, seed: 7 });
    deepEqual(site.map((d) => d.name), ["sim1", "sim2", "sim3", "sim4"]);
    deepEqual(site.map((d) => d.options.seed), [7, 8, 9, 10]);
    deepEqual(site.map((d) => d.options.port), [9000, 9001, 9002, 9003]);
    deepEqual(site.map((d) => d.options.model), ["home10", "home15", "home5", "home10"]);
  });
  await t.step("should give 16 devices 16 different MAC-like passwords", () => {
    const passwords = siteDeviceOptions(16, {}).map((d) => d.options.password!);
    equal(new Set(passwords).size, 16);
    ok(passwords.every((p) => /^[0-9a-f]{12}$/.test(p)), passwords.join(" "));
    equal(passwords[0], "a1b2c3d4e5f6");
  });
  await t.step("should keep one model for all when given", () => {
    deepEqual(
      new Set(siteDeviceOptions(3, { model: "home15" }).map((d) => d.options.model)),
      new Set(["home15"]),
    );
  });
  await t.step("should refuse 0, 17, a shared password and ports past 65535", () => {
    throws(() => siteDeviceOptions(0, {}), RangeError);
    throws(() => siteDeviceOptions(17, {}), RangeError);
    throws(() => siteDeviceOptions(2, { password: "x" }), RangeError);
    throws(() => siteDeviceOptions(3, { port: 65534 }), RangeError);
  });
});

Deno.test("startSimulators() serves each device with its own serial and password", async (t) => {
  const site = await startSimulators(siteDeviceOptions(3, {}));
  try {
    await t.step("should answer with a different serial on every port", async () => {
      equal(new Set(site.map((d) => d.sim.port)).size, 3);
      const serials = await Promise.all(
        site.map(async (d) => serial(await readWith(d.sim, "systeminfo"))),
      );
      equal(new Set(serials).size, 3, serials.join(" "));
    });
    await t.step("should accept each password only on its own device", async () => {
      const [a, b] = [site[0]!.sim, site[1]!.sim];
      ok(await readWith(a, "common"));
      await rejects(readWith(a, "common", b.password), WrongPasswordError);
      await rejects(readWith(b, "common", a.password), WrongPasswordError);
    });
  } finally {
    await Promise.all(site.map((d) => d.sim.close()));
  }
});

Deno.test("startSimulators() gives every device a house of its own size", async () => {
  const site = await startSimulators(siteDeviceOptions(3, { now: () => NOON }));
  try {
    const readings = site.map(({ sim }) =>
      normalise(Object.fromEntries(STATE_NAMES.map((state) => [state, sim.device.read(state)])))
    );
    deepEqual(readings.map((r) => r.pvCapacityW), [6120, 7620, 9120]);
    equal(new Set(readings.map((r) => r.power.pvW)).size, 3);
    equal(new Set(readings.map((r) => r.power.loadW)).size, 3);
  } finally {
    await Promise.all(site.map((d) => d.sim.close()));
  }
});

Deno.test("startSimulator() refuses a house without panels or household", async () => {
  await rejects(startSimulator({ pvCapacityW: 0 }), /pvCapacityW must be more than 0/);
  await rejects(startSimulator({ loadScale: -1 }), /loadScale must be more than 0/);
});

Deno.test("startSimulators() closes the devices it started when one cannot listen", async () => {
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const port = (taken.addr as Deno.NetAddr).port;
    await rejects(startSimulators(siteDeviceOptions(2, { port: port - 1 })), /Cannot listen/);
  } finally {
    taken.close();
  }
});

Deno.test("startSite() writes a config of [device] sections and takes a device down and back", async (t) => {
  await using site = await startSite(3, {
    top: ["interval_seconds = 1"],
    section: (name) => name === "sim3" ? ["timeout = 2"] : [],
  });
  await t.step("should write a config ess reads, one section per device", async () => {
    const entries = parseConfig(await Deno.readTextFile(site.config), site.config);
    deepEqual(
      entries.filter((e) => e.key === "host").map((e) => [e.device, e.value]),
      site.devices.map((d) => [d.name, d.sim.host]),
    );
    deepEqual(entries.filter((e) => e.device === undefined).map((e) => e.key), [
      "interval_seconds",
    ]);
    deepEqual(entries.filter((e) => e.key === "timeout").map((e) => e.device), ["sim3"]);
  });
  await t.step("should stop one device while the others answer", async () => {
    const sim2 = site.device("sim2");
    const port = sim2.sim.port;
    await sim2.stop();
    await rejects(readWith(sim2.sim, "common"));
    ok(await readWith(site.device("sim1").sim, "common"));
    await sim2.start();
    equal(sim2.sim.port, port);
    ok(await readWith(sim2.sim, "common"));
  });
  await t.step(
    "should make a hanging device time out, then answer again after start()",
    async () => {
      const sim3 = site.device("sim3");
      await sim3.hang();
      const fetch = createDeviceFetch({
        fingerprint: sim3.sim.fingerprint,
        timeoutMs: 300,
        connectTimeoutMs: 300,
      });
      try {
        const client = new EssClient({ host: sim3.sim.host, password: sim3.sim.password, fetch });
        await rejects(client.read("common"), /time|respond|answer/i);
      } finally {
        fetch.close();
      }
      await sim3.start();
      ok(await readWith(sim3.sim, "common"));
    },
  );
  await t.step("should give every device its own password and serial", async () => {
    const serials = await Promise.all(
      site.devices.map(async (d) => serial(await readWith(d.sim, "systeminfo"))),
    );
    equal(new Set(serials).size, 3);
    notEqual(site.device("sim1").sim.password, site.device("sim3").sim.password);
  });
});

/** A device as `ess simulate --devices N` printed its config section. */
interface Printed {
  name: string;
  host: string;
  password: string;
  fingerprint: string;
}

/** The `[device NAME]` sections of a banner, read as ess reads a config file. */
function printedDevices(banner: string): Printed[] {
  const entries = parseConfig(
    banner.split("\n").filter((l) => /^[#[]|^\w+ = /.test(l)).join("\n"),
    "banner",
  );
  const devices = new Map<string, Record<string, string>>();
  for (const e of entries) {
    if (e.device === undefined) continue;
    devices.set(e.device, { ...devices.get(e.device), [e.key]: e.value });
  }
  return [...devices].map(([name, keys]) => ({
    name,
    host: keys["host"]!,
    password: keys["password"]!,
    fingerprint: keys["fingerprint"]!,
  }));
}

/** Runs `ess simulate args` until its banner is out, gives it to `fn`, then stops it. */
async function withSimulate(
  args: string[],
  fn: (banner: string) => Promise<void> | void,
): Promise<void> {
  const child = spawnCli(["simulate", ...args]);
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  try {
    await fn(
      await readUntil(reader, (text) => text.includes("Stop with Ctrl+C."), {
        what: "the simulators' banner",
      }),
    );
  } finally {
    child.kill("SIGTERM");
    const [status, stderr] = await withDeadline(
      Promise.all([child.status, new Response(child.stderr).text(), reader.cancel()]),
      { what: "the simulators to stop on SIGTERM" },
    );
    equal(status.code, 0, stderr);
    match(stderr, /^ess: SIGTERM: stopping the simulators?\n$/);
  }
}

/** Reads `state` of a printed device with `password` (its own unless told). */
async function readPrinted(d: Printed, state: "systeminfo" | "common", password = d.password) {
  const fetch = createDeviceFetch({ fingerprint: d.fingerprint, timeoutMs: 3000 });
  try {
    return await new EssClient({ host: d.host, password, fetch }).read(state);
  } finally {
    fetch.close();
  }
}

/** Ports free a moment ago. */
function freePorts(count: number): number[] {
  const listeners = Array.from(
    { length: count },
    () => Deno.listen({ hostname: "127.0.0.1", port: 0 }),
  );
  const ports = listeners.map((l) => (l.addr as Deno.NetAddr).port);
  for (const l of listeners) l.close();
  return ports;
}

Deno.test("ess simulate --devices N", async (t) => {
  await t.step(
    "should serve N devices, each with its serial, password and config section",
    async () => {
      await withSimulate(["--devices", "3"], async (banner) => {
        match(banner, /^LG ESS simulator: 3 devices \(classic firmware\)/);
        const devices = printedDevices(banner);
        deepEqual(devices.map((d) => d.name), ["sim1", "sim2", "sim3"]);
        for (const d of devices) {
          match(
            banner,
            new RegExp(
              `^# ${d.name}: home\\d+, serial \\S+, https://${d.host}, password ${d.password}$`,
              "m",
            ),
          );
        }
        equal(new Set(devices.map((d) => d.host)).size, 3);
        const serials = await Promise.all(
          devices.map(async (d) => serial(await readPrinted(d, "systeminfo"))),
        );
        equal(new Set(serials).size, 3, serials.join(" "));
        for (const [i, s] of serials.entries()) {
          match(banner, new RegExp(`# sim${i + 1}: .*serial ${s},`));
        }
        const config = await Deno.makeTempFile({ suffix: ".conf" });
        try {
          // The sections as a user pastes them: from the first header to the `try:` line.
          await Deno.writeTextFile(config, /^\[device [^]*?(?=^try:)/m.exec(banner)![0]);
          const picked = await runCli(
            ["data", "--config", config, "--device", "sim2", "--only", "systeminfo"],
          );
          equal(picked.code, 0, picked.stderr);
          equal(serial(JSON.parse(picked.stdout).systeminfo), serials[1]);
        } finally {
          await Deno.remove(config);
        }
        const [a, b] = devices as [Printed, Printed];
        ok(await readPrinted(b, "common"));
        await rejects(readPrinted(a, "common", b.password), WrongPasswordError);
        await rejects(readPrinted(b, "common", a.password), WrongPasswordError);
      });
    },
  );

  await t.step(
    "should serve one device per --port on those ports, all of one --model",
    async () => {
      const ports = freePorts(2);
      await withSimulate([
        "--port",
        String(ports[0]),
        "--port",
        String(ports[1]),
        "--model",
        "home15",
      ], async (banner) => {
        const devices = printedDevices(banner);
        deepEqual(devices.map((d) => d.host), ports.map((port) => `127.0.0.1:${port}`));
        equal(banner.match(/^# sim\d: home15, /gm)?.length, 2, banner);
        const result = await runCli([
          "data",
          "--only",
          "batt",
          "--host",
          devices[1]!.host,
          "--password",
          devices[1]!.password,
        ]);
        equal(result.code, 0, result.stderr);
        ok(JSON.parse(result.stdout).batt);
      });
    },
  );

  await t.step("should serve one device as a site with --devices 1", async () => {
    await withSimulate(["--devices", "1"], (banner) => {
      match(banner, /^LG ESS simulator: 1 device \(classic firmware\)/);
      deepEqual(printedDevices(banner).map((d) => [d.name, d.password]), [[
        "sim1",
        "a1b2c3d4e5f6",
      ]]);
    });
  });

  await t.step(
    "should refuse a bad N or a port list that does not fit with one line, exit 2",
    async () => {
      const cases = [
        ["--devices", "0"],
        ["--devices", "17"],
        ["--devices", "two"],
        ["--devices", ""],
        ["--devices", "2", "--password", "0f1e2d3c4b5a"],
        ["--devices", "3", "--port", "9001", "--port", "9002"],
        ["--devices", "2", "--port", "65535"],
        ["--port", "9001", "--port", "9001"],
        ["--port", "9001", "--port", "http"],
      ];
      const results = await Promise.all(cases.map((args) => runCli(["simulate", ...args])));
      results.forEach((result, i) => {
        equal(result.code, 2, `${cases[i]!.join(" ")}: ${result.stderr}`);
        equal(result.stdout, "");
        match(result.stderr, /^ess: [^\n]+\n$/, cases[i]!.join(" "));
      });
      match(results[1]!.stderr, /--devices must be a whole number from 1 to 16, not "17"/);
    },
  );
});
