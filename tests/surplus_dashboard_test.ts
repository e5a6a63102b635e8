/**
 * The dashboard's surplus card in a real browser: `ess serve` against the simulator with one
 * rule, the card showing the surplus and the rule's state and why, with no error and no CSP
 * violation.
 *
 * @module
 */
import { deepEqual, equal, match } from "node:assert/strict";
import { startSimulator } from "../lib/sim/simulator.ts";
import { chromiumPath, launchChromium } from "./_chromium.ts";
import { spawnDaemon } from "./_cli.ts";
import { deviceArgs } from "./_world.ts";
import { peerCheck } from "./_peers.ts";

const CHROMIUM = chromiumPath();
const chromium = peerCheck("chromium", CHROMIUM ? undefined : "chromium is not installed");

Deno.test({
  name: `the dashboard shows the surplus and each rule's state and why${chromium.label}`,
  ignore: chromium.ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    chromium.assertPresent();
    const sim = await startSimulator({ now: () => new Date("2026-06-21T12:00:00Z") });
    const ess = spawnDaemon([
      "serve",
      ...deviceArgs(sim),
      "--interval-seconds",
      "1",
      "--listen",
      "127.0.0.1:0",
      "--surplus-rule",
      "heater:on-watts=-100000,off-watts=-100000,on-delay-seconds=0",
    ]);
    let browser: Awaited<ReturnType<typeof launchChromium>> | undefined;
    try {
      const url = (await ess.waitFor(/ on (http:\/\/\S+)/))[1]!;
      browser = await launchChromium();
      const { page } = browser;
      await page.navigate(`${url}/`);
      await page.waitFor(`!document.getElementById("surplus").hidden`, "the surplus card");
      await page.waitFor(
        `document.querySelector("#surplus-rules .badge")?.textContent === "On"`,
        "the heater on",
      );
      const card = await page.evaluate<Record<string, string>>(`({
        watts: document.getElementById("surplus-watts").textContent,
        note: document.getElementById("surplus-note").textContent,
        rule: document.querySelector("#surplus-rules dt").textContent,
        why: document.querySelector("#surplus-rules .why").textContent,
      })`);
      match(card.watts!, /^−?\d+ W$|^−?\d+\.\d\d kW$/);
      match(card.note!, /^averaged over 60 s; now /);
      equal(card.rule, "heater");
      match(card.why!, /≥ (on|off) at -100000 W/);
      deepEqual(page.problems, []);
    } finally {
      await browser?.close();
      const { code, stderr } = await ess.stop();
      equal(code, 0, stderr);
      await sim.close();
    }
  },
});
