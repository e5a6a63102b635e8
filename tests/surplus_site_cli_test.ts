/**
 * The surplus of several devices end to end: `ess surplus` against a site of 3 simulated devices
 * explains the site's surplus (their sum) or one device's, and `ess serve` shows each device's
 * surplus and the site's.
 *
 * @module
 */
import assert from "node:assert/strict";
import { runCli, spawnDaemon } from "./_cli.ts";
import { getJson } from "./_serve_http.ts";
import { waitFor } from "./_wait.ts";
import { startSite } from "./_site.ts";
import { NOON } from "./_world.ts";

/** `name  1234 W  (…)` → 1234. */
function wattsOf(lines: readonly string[], name: string): number {
  const line = lines.find((l) => l.startsWith(`${name} `));
  const m = line === undefined ? null : /^\S+ +(-?\d+) W {2}\(/.exec(line);
  assert.ok(m, `no surplus line for ${name} in:\n${lines.join("\n")}`);
  return Number(m[1]);
}

Deno.test("ess surplus with several devices", async (t) => {
  await using site = await startSite(3, {
    top: [
      "surplus.boiler.on-watts = -100000",
      "surplus.boiler.off-watts = -100000",
      "surplus.pump.on-watts = 100000",
      "surplus.pump.device = sim2",
    ],
    simulator: { now: () => NOON },
  });
  const surplus = (...args: string[]) => runCli(["surplus", "--config", site.config, ...args]);

  await t.step(
    "should show the site's surplus, each device's part and the site's rules",
    async () => {
      const result = await surplus();
      assert.equal(result.code, 0, result.stderr);
      const lines = result.stdout.trimEnd().split("\n");
      assert.match(
        lines[0]!,
        /^surplus {2}-?\d+ W {2}\(sim1 .* sim2 .* sim3 .* − reserve 100 W\)$/,
      );
      const parts = ["sim1", "sim2", "sim3"].map((name) => wattsOf(lines, name));
      const sum = parts.reduce((a, b) => a + b, 0) - 100;
      assert.ok(Math.abs(wattsOf(lines, "surplus") - sum) <= 2, `${parts} do not add up`);
      assert.match(lines.at(-1)!, /^boiler +would switch on: /);
      assert.equal(lines.some((l) => l.startsWith("pump")), false, "pump follows sim2");
    },
  );

  await t.step("should show one device's own surplus and its rules with --device", async () => {
    const site = await surplus("--format", "json");
    assert.equal(site.code, 0, site.stderr);
    const doc = JSON.parse(site.stdout);
    assert.deepEqual(Object.keys(doc.devices), ["sim1", "sim2", "sim3"]);
    const result = await surplus("--device", "sim2");
    assert.equal(result.code, 0, result.stderr);
    const lines = result.stdout.trimEnd().split("\n");
    assert.ok(Math.abs(wattsOf(lines, "surplus") - (doc.devices.sim2.watts - 100)) <= 1);
    assert.match(lines[1]!, /^pump +would stay off: .* < on at 100000 W$/);
    assert.equal(lines.length, 2, "only the rule that follows sim2");
  });

  await t.step("should name the devices for an unknown --device", async () => {
    const result = await surplus("--device", "shed");
    assert.equal(result.code, 2);
    assert.match(result.stderr, /--device "shed": the config declares sim1, sim2 and sim3/);
  });

  await t.step("should serve each device's surplus and the site's in /api/state", async () => {
    const ess = spawnDaemon(["serve", "--config", site.config, "--listen", "127.0.0.1:0"]);
    try {
      const url = (await ess.waitFor(/ on (http:\/\/\S+)/))[1]!;
      type Surplus = { watts: number | null; rules: { name: string }[] };
      type Doc = { site: { surplus?: Surplus }; devices: Record<string, { surplus?: Surplus }> };
      let doc: Doc | undefined;
      await waitFor(async () => {
        doc = (await getJson(`${url}/api/state`)).body as unknown as Doc;
        return doc.site.surplus?.watts !== null && doc.site.surplus?.watts !== undefined;
      }, { what: "the site's surplus" });
      assert.deepEqual(doc!.site.surplus!.rules.map((r) => r.name), ["boiler"]);
      assert.deepEqual(doc!.devices["sim2"]!.surplus!.rules.map((r) => r.name), ["pump"]);
      assert.deepEqual(doc!.devices["sim1"]!.surplus!.rules, []);
    } finally {
      const { code, stderr } = await ess.stop();
      assert.equal(code, 0, stderr);
    }
  });
});
