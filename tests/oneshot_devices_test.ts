/**
 * `ess data`, `ess graph` and `ess control` against a config of three `[device NAME]` sections,
 * each a simulator of its own: `--device NAME` (or ESS_DEVICE) chooses one, and only that one
 * hears from ess.
 */
import assert from "node:assert/strict";
import { type CliResult, runCli } from "./_cli.ts";
import { type Simulator, startSimulator } from "../lib/sim/simulator.ts";
import { controlRequests, NOON } from "./_world.ts";

const NAMES = ["garage", "house", "shed"] as const;
const PASSWORDS = ["garage-pass-1", "house-pass-22", "shed-pass-333"];

/** Three simulators, each with its own registration number and password, and a config of them. */
async function withThree(
  fn: (config: string, sims: Record<string, Simulator>) => Promise<void>,
): Promise<void> {
  const sims: Simulator[] = [];
  const dir = await Deno.makeTempDir({ prefix: "ess-oneshot-" });
  try {
    for (const [i, name] of NAMES.entries()) {
      sims.push(
        await startSimulator({
          now: () => NOON,
          name: `SIM${name.toUpperCase()}`,
          password: PASSWORDS[i]!,
          seed: i + 1,
        }),
      );
    }
    const lines = ["timeout = 5"];
    sims.forEach((sim, i) =>
      lines.push(
        `[device ${NAMES[i]}]`,
        `host = ${sim.host}`,
        `password = ${sim.password}`,
        `fingerprint = ${sim.fingerprint}`,
      )
    );
    const config = `${dir}/essmqtt.conf`;
    await Deno.writeTextFile(config, `${lines.join("\n")}\n`);
    await fn(config, Object.fromEntries(sims.map((s, i) => [NAMES[i], s])));
  } finally {
    await Promise.all(sims.map((s) => s.close()));
    await Deno.remove(dir, { recursive: true });
  }
}

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
  await withThree(async (config, sims) => {
    const garage = sims.garage!, house = sims.house!, shed = sims.shed!;
    await t.step("should read the device --device names, and only it", async () => {
      const run = await runCli([
        "data",
        "--config",
        config,
        "--device",
        "house",
        "--only",
        "systeminfo",
      ]);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(JSON.parse(run.stdout).systeminfo.pms.serialno, "SIMHOUSES");
      assert.ok(reads(house) > 0);
      assert.equal(reads(garage) + reads(shed), 0);
    });
    await t.step("should take the name from ESS_DEVICE", async () => {
      const run = await runCli(
        ["data", "--config", config, "--only", "systeminfo", "--format", "flat"],
        { env: { ESS_DEVICE: "shed" } },
      );
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stdout, /^systeminfo\/pms\/serialno SIMSHEDS$/m);
    });
    await t.step("should read a graph of the named device", async () => {
      const before = reads(garage);
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
        "garage",
      ]);
      assert.equal(run.code, 0, run.stderr);
      assert.ok(JSON.parse(run.stdout));
      assert.ok(reads(garage) > before);
    });
    await t.step("should send a control to the named device alone", async () => {
      const from = NAMES.map((n) => sims[n]!.requests.length);
      const run = await runCli(["control", "winter", "on", "--config", config, "--device", "shed"]);
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stdout, /^winter mode: on /);
      assert.deepEqual(controlRequests(shed, from[2]), [
        '/v1/user/setting/batt {"wintermode":"on"}',
      ]);
      assert.deepEqual(controlRequests(garage, from[0]), []);
      assert.deepEqual(controlRequests(house, from[1]), []);
    });
    await t.step("should ask which device when there are several, naming them", async () => {
      const before = NAMES.map((n) => sims[n]!.requests.length);
      for (const args of [["data"], ["graph", "pv", "day"], ["control", "winter", "off"]]) {
        assertUsage(
          await runCli([...args, "--config", config]),
          /^ess: the config declares 3 devices \(garage, house and shed\): say which with --device NAME$/,
        );
      }
      assertUsage(
        await runCli(["data", "--config", config, "--device", "attic"]),
        /^ess: --device "attic": the config declares garage, house and shed$/,
      );
      assert.deepEqual(NAMES.map((n) => sims[n]!.requests.length), before);
    });
    await t.step("should keep every device's password out of a failure", async () => {
      await house.close();
      const run = await runCli(["data", "--config", config, "--device", "house"]);
      assert.notEqual(run.code, 0);
      assert.match(run.stderr, /^ess: /);
      for (const password of PASSWORDS) assert.ok(!run.stderr.includes(password), run.stderr);
    });
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
