/**
 * `ess data --format reading` and the control read-back, against a device answering with the
 * fixtures shaped like real devices' answers; the values are worked out by hand in
 * tests/model_test.ts.
 */
import assert from "node:assert/strict";
import { runCli } from "./_cli.ts";
import type { StateName } from "../lib/device/states.ts";
import { normalise } from "../lib/model/normalise.ts";
import { HOSTILE_PASSWORD, startHostileDevice } from "./_hostile_device.ts";

const fixture = (family: string, state: string) =>
  JSON.parse(
    Deno.readTextFileSync(new URL(`../fixtures/${family}/${state}.json`, import.meta.url)),
  );

const args = (
  host: string,
) => ["--config", "/dev/null", "--host", host, "--password", HOSTILE_PASSWORD];

Deno.test("ess data --format reading shows an ESS Home 15 in SI units and words", async (t) => {
  const device = await startHostileDevice({
    state: (name: StateName) => name === "network" ? {} : fixture("home15", name),
  });
  try {
    await t.step("should print one line per reading topic with its unit", async () => {
      const run = await runCli(["data", "--format", "reading", ...args(device.host)]);
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stdout, /^READING +VALUE +UNIT$/m);
      assert.match(run.stdout, /^power\/load +700 +W$/m);
      assert.match(run.stdout, /^power\/battery +200 +W$/m);
      assert.match(run.stdout, /^grid\/frequency +50\.1 +Hz$/m);
      assert.match(run.stdout, /^pv\/1\/voltage +312 +V$/m);
      assert.match(run.stdout, /^settings\/reserve +15 +%$/m);
      assert.match(run.stdout, /^status\/battery +discharging$/m);
      assert.match(run.stderr, /looks like an ESS Home 15/);
    });
    await t.step("should print the reading as JSON", async () => {
      const run = await runCli(["data", "--format", "reading-json", ...args(device.host)]);
      assert.equal(run.code, 0, run.stderr);
      const states = Object.fromEntries(
        ["home", "common", "batt", "systeminfo"].map((s) => [s, fixture("home15", s)]),
      );
      assert.deepEqual(JSON.parse(run.stdout), normalise(states));
    });
    await t.step("should say what the codes mean in the table", async () => {
      const run = await runCli([
        "data",
        "--only",
        "home",
        "--format",
        "table",
        ...args(device.host),
      ]);
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stdout, /^home +statistics\/bat_status +2 +discharging$/m);
      assert.match(run.stdout, /^home +operation\/mode +1 +normal$/m);
      assert.match(run.stdout, /^home +pcs_fault\/pcs_status +pcs_ok +ok$/m);
    });
  } finally {
    await device.close();
  }
});

Deno.test("ess control reads back firmware that reports alg_setting as words", async (t) => {
  const cases: [string[], string, string, string][] = [
    [
      ["fastcharge", "on"],
      "battery_care",
      "fast_charge",
      'fast charge: on (alg_setting="fast_charge")',
    ],
    [
      ["strategy", "battery-care"],
      "fast_charge",
      "battery_care",
      'charge strategy: battery-care (alg_setting="battery_care")',
    ],
  ];
  for (const [command, before, after, line] of cases) {
    await t.step(`should print ${JSON.stringify(line)} and write digits`, async () => {
      const device = await startHostileDevice({
        state: (name: StateName, count: number) =>
          name === "batt"
            ? { ...fixture("home10", "batt"), alg_setting: count === 0 ? before : after }
            : {},
      });
      try {
        const run = await runCli(["control", ...command, ...args(device.host)]);
        assert.equal(run.code, 0, run.stderr);
        assert.equal(run.stdout, `${line}\n`);
        const write = device.requests.find((r) =>
          r.method === "PUT" && r.path === "/v1/user/setting/batt"
        );
        assert.equal(write?.body?.["alg_setting"], after === "fast_charge" ? "1" : "0");
      } finally {
        await device.close();
      }
    });
  }
});
