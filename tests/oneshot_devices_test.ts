/**
 * `ess data`, `ess graph` and `ess control` against a config of three `[device NAME]` sections,
 * each a simulator of its own (tests/_site.ts): `--device NAME` (or ESS_DEVICE) chooses one, and
 * only that one hears from ess.
 */
import assert from "node:assert/strict";
import { type CliResult, runCli } from "./_cli.ts";
import type { JsonObject } from "../lib/device/flatten.ts";
import type { Simulator } from "../lib/sim/simulator.ts";
import { startSite } from "./_site.ts";
import { controlRequests, NOON } from "./_world.ts";

const NAMES = ["sim1", "sim2", "sim3"] as const;

/** A simulator's serial number, as its systeminfo says. */
const serialOf = (sim: Simulator) =>
  (sim.device.read("systeminfo")["pms"] as JsonObject)["serialno"];

/** Asserts one line on stderr, the usage exit code, and no password of any device. */
function assertUsage(run: CliResult, pattern: RegExp): void {
  assert.equal(run.code, 2, run.stderr);
  assert.equal(run.stdout, "");
  assert.equal(run.stderr.trimEnd().split("\n").length, 1, run.stderr);
  assert.match(run.stderr.trimEnd(), pattern);
}

/** The states' requests each simulator received (logins and reads). */
const reads = (sim: Simulator) => sim.requests.filter((r) => r.method === "POST").length;

Deno.test("one-shot commands choose one of several devices", async (t) => {
  await using site = await startSite(3, { top: ["timeout = 5"], simulator: { now: () => NOON } });
  const config = site.config;
  const sims = Object.fromEntries(site.devices.map((d) => [d.name, d.sim]));
  const passwords = site.devices.map((d) => d.sim.password);
  const [sim1, sim2, sim3] = site.devices.map((d) => d.sim) as [Simulator, Simulator, Simulator];
  await t.step("should read the device --device names, and only it", async () => {
    const run = await runCli([
      "data",
      "--config",
      config,
      "--device",
      "sim2",
      "--only",
      "systeminfo",
    ]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(JSON.parse(run.stdout).systeminfo.pms.serialno, serialOf(sim2));
    assert.notEqual(serialOf(sim2), serialOf(sim1));
    assert.ok(reads(sim2) > 0);
    assert.equal(reads(sim1) + reads(sim3), 0);
  });
  await t.step("should take the name from ESS_DEVICE", async () => {
    const run = await runCli(
      ["data", "--config", config, "--only", "systeminfo", "--format", "flat"],
      { env: { ESS_DEVICE: "sim3" } },
    );
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, new RegExp(`^systeminfo/pms/serialno ${serialOf(sim3)}$`, "m"));
  });
  await t.step("should read a graph of the named device", async () => {
    const before = reads(sim1);
    const run = await runCli([
      "graph",
      "pv",
      "day",
      "2026-06-20",
      "--format",
      "json",
      "--config",
      config,
      "--device",
      "sim1",
    ]);
    assert.equal(run.code, 0, run.stderr);
    assert.ok(JSON.parse(run.stdout));
    assert.ok(reads(sim1) > before);
  });
  await t.step("should send a control to the named device alone", async () => {
    const from = NAMES.map((n) => sims[n]!.requests.length);
    const run = await runCli(["control", "winter", "on", "--config", config, "--device", "sim3"]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^winter mode: on /);
    assert.deepEqual(controlRequests(sim3, from[2]), [
      '/v1/user/setting/batt {"wintermode":"on"}',
    ]);
    assert.deepEqual(controlRequests(sim1, from[0]), []);
    assert.deepEqual(controlRequests(sim2, from[1]), []);
  });
  await t.step("should ask which device when there are several, naming them", async () => {
    const before = NAMES.map((n) => sims[n]!.requests.length);
    for (const args of [["data"], ["graph", "pv", "day"], ["control", "winter", "off"]]) {
      assertUsage(
        await runCli([...args, "--config", config]),
        /^ess: the config declares 3 devices \(sim1, sim2 and sim3\): say which with --device NAME$/,
      );
    }
    assertUsage(
      await runCli(["data", "--config", config, "--device", "attic"]),
      /^ess: --device "attic": the config declares sim1, sim2 and sim3$/,
    );
    assert.deepEqual(NAMES.map((n) => sims[n]!.requests.length), before);
  });
  await t.step("should keep every device's password out of a failure", async () => {
    await site.device("sim2").stop();
    const run = await runCli(["data", "--config", config, "--device", "sim2"]);
    assert.notEqual(run.code, 0);
    assert.match(run.stderr, /^ess: /);
    for (const password of passwords) assert.ok(!run.stderr.includes(password), run.stderr);
  });
});

Deno.test("one-shot commands in single mode refuse --device", async () => {
  const run = await runCli([
    "data",
    "--config",
    "/dev/null",
    "--host",
    "127.0.0.1:1",
    "--device",
    "garage",
  ]);
  assertUsage(run, /^ess: --device garage: the config declares no \[device NAME\] section/);
});

Deno.test("one-shot commands say --device in their help", async () => {
  for (const command of ["data", "graph", "control"]) {
    const run = await runCli([command, "--help"]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /--device NAME +the device of the config's \[device NAME\] sections/);
    assert.match(run.stdout, new RegExp(`ess ${command} .*--device garage`));
  }
});
