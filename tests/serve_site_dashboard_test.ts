/**
 * The dashboard of a site ([device NAME] sections) in a real browser: headless Chromium against
 * the server over three different simulators. The site view must show the devices' sums (checked
 * against each device's own figures), each device's view that device alone, and a control sent
 * from a device's view must reach that device only.
 * With ESS_SCREENSHOTS=1 it also writes docs/dashboard-site.png.
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import { startServer } from "../lib/serve/server.ts";
import type { SiteSource } from "../lib/serve/source.ts";
import { chromiumPath, launchChromium, type Page } from "./_chromium.ts";
import { withSimSite } from "./_serve_source.ts";
import { peerCheck } from "./_peers.ts";

const CHROMIUM = chromiumPath();
const chromium = peerCheck("chromium", CHROMIUM ? undefined : "chromium is not installed");
const TOKEN = "site-dashboard-token-01";

/** Today at noon, local time (the tests run with TZ=UTC), so that the history has today's bars. */
function todayNoon(): Date {
  const now = new Date();
  return new Date(now.getFullYear(), now.getMonth(), now.getDate(), 12, 0);
}

type Power = { pvW: number; loadW: number; batteryW: number; gridW: number };
type Doc = {
  devices: Record<string, { reading: { power: Power; socPct: number } }>;
};

/** The site view's figures: its power lines and its SoC, and each device row's PV. */
const siteFigures = (page: Page) =>
  page.evaluate<{ lines: Power; soc: string; rows: Record<string, number> }>(`(() => {
    const watts = (id) => Number(document.getElementById(id).dataset.watts);
    const rows = {};
    for (const row of document.querySelectorAll("#device-rows tr")) {
      rows[row.dataset.device] = Number(row.querySelector('[data-flow="pvW"]').dataset.watts);
    }
    return {
      lines: {
        pvW: watts("line-pv"), loadW: watts("line-house"),
        batteryW: watts("line-batt"), gridW: watts("line-grid"),
      },
      soc: document.getElementById("soc").textContent,
      rows,
    };
  })()`);

/** Clicks the switcher's link to `view` (`""`: the site). */
function show(page: Page, view: string): Promise<unknown> {
  return page.evaluate(
    `document.querySelector('#views a[data-view=${JSON.stringify(view)}]').click()`,
  );
}

Deno.test({
  name: `ess serve dashboard shows a site's sum and each device in Chromium${chromium.label}`,
  ignore: chromium.ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    chromium.assertPresent();
    await withSimSite(3, async (site) => {
      const source: SiteSource = {
        devices: new Map([...site.devices].map(([name, world]) => [name, world.source])),
      };
      const server = await startServer({ hostname: "127.0.0.1", port: 0 }, {
        source,
        controlToken: TOKEN,
        intervalSeconds: 0.2,
        limits: { eventGapMs: 100 },
      });
      const browser = await launchChromium();
      const { page } = browser;
      const doc = async () => (await (await fetch(`${server.url}/api/state`)).json()) as Doc;
      try {
        await page.viewport(1280, 900);
        await page.navigate(`${server.url}/`);

        await t.step("should open on the site view with a link to each device", async () => {
          await page.waitFor(`document.getElementById("pill").textContent === "live"`, "live");
          equal(await page.evaluate(`document.getElementById("title").textContent`), "Site");
          deepEqual(
            await page.evaluate(`[...document.querySelectorAll("#views a")]
              .map((a) => [a.textContent, a.getAttribute("href")])`),
            [["Site", "#"], ["sim1", "#sim1"], ["sim2", "#sim2"], ["sim3", "#sim3"]],
          );
          equal(
            await page.evaluate(
              `getComputedStyle(document.querySelector(".modes-card")).display`,
            ),
            "none",
            "a device's own cards are not in the site view",
          );
        });

        await t.step("should show the sum of the three devices' figures", async () => {
          const { devices } = await doc();
          const readings = Object.values(devices).map((d) => d.reading);
          ok(readings.length === 3);
          const sum = (flow: keyof Power) =>
            Math.round(readings.reduce((total, r) => total + r.power[flow], 0));
          await page.waitFor(
            `document.getElementById("line-pv").dataset.watts === "${sum("pvW")}"`,
            "the site's PV power",
          );
          const shown = await siteFigures(page);
          deepEqual(shown.lines, {
            pvW: sum("pvW"),
            loadW: sum("loadW"),
            batteryW: sum("batteryW"),
            gridW: sum("gridW"),
          });
          const mean = readings.reduce((total, r) => total + r.socPct, 0) / 3;
          equal(shown.soc, `${mean.toFixed(0)} %`);
          deepEqual(
            shown.rows,
            Object.fromEntries(
              Object.entries(devices).map(([n, d]) => [n, Math.round(d.reading.power.pvW)]),
            ),
          );
          ok(shown.lines.pvW > 0, "the sun shines at noon");
        });

        if (Deno.env.get("ESS_SCREENSHOTS") === "1") {
          await t.step("should write the screenshot", async () => {
            await new Promise((resolve) => setTimeout(resolve, 900));
            await Deno.writeFile(
              new URL("../docs/dashboard-site.png", import.meta.url),
              await page.screenshot(1100),
            );
          });
        }

        const totals: string[] = [];
        for (const name of ["sim2", "sim3"]) {
          await t.step(`should show ${name} alone in its view, with its history`, async () => {
            await show(page, name);
            const own = Math.round((await doc()).devices[name]!.reading.power.pvW);
            await page.waitFor(
              `document.getElementById("title").textContent === ${JSON.stringify(name)} &&
               document.getElementById("line-pv").dataset.watts === "${own}"`,
              `${name}'s PV power`,
            );
            await page.waitFor(
              `performance.getEntriesByType("resource")
                 .some((e) => e.name.includes("/api/graph/${name}/pv/day?")) &&
               document.querySelectorAll("#chart rect.a").length >= 8 &&
               !${JSON.stringify(totals)}.includes(document.getElementById("totals").textContent)`,
              `${name}'s own PV bars`,
            );
            totals.push(
              await page.evaluate<string>(`document.getElementById("totals").textContent`),
            );
            equal(
              await page.evaluate(
                `getComputedStyle(document.querySelector(".devices-card")).display`,
              ),
              "none",
            );
            equal(await page.evaluate(`location.hash`), `#${name}`);
          });
        }

        await t.step("should send a control from sim3's view to sim3 only", async () => {
          const modes = () => [...site.devices.values()].map((w) => w.sim.device.winterMode);
          deepEqual(modes(), [false, false, false]);
          await page.waitFor(`!document.getElementById("controls").hidden`, "the controls");
          await page.evaluate(`(() => {
            const token = document.getElementById("token");
            token.value = ${JSON.stringify(TOKEN)};
            token.dispatchEvent(new Event("input"));
            const row = [...document.querySelectorAll(".control")]
              .find((r) => r.querySelector(".name").textContent === "Winter mode");
            row.querySelector('button[data-value="on"]').click();
          })()`);
          await page.waitFor(`document.getElementById("confirm").open`, "the confirmation");
          ok(
            (await page.evaluate<string>(`document.getElementById("confirm-text").textContent`))
              .includes("of sim3"),
            "the confirmation names the device",
          );
          await page.evaluate(`document.getElementById("confirm-ok").click()`);
          await page.waitFor(
            `document.getElementById("control-result").textContent.startsWith("Done")`,
            "the control's result",
          );
          deepEqual(modes(), [false, false, true]);
        });

        await t.step("should leave a device that is down out of the sum, and say so", async () => {
          await show(page, "");
          await site.devices.get("sim1")!.sim.close();
          await page.waitFor(
            `!document.getElementById("banner").hidden &&
             document.getElementById("pill").textContent === "1 down"`,
            "the banner naming sim1",
          );
          const text = await page.evaluate<string>(
            `document.getElementById("banner-text").textContent`,
          );
          ok(/^sim1: no answer since .*Left out of the sums\.$/.test(text), text);
          const { devices } = await doc();
          const pv = Math.round(
            devices["sim2"]!.reading.power.pvW + devices["sim3"]!.reading.power.pvW,
          );
          await page.waitFor(
            `document.getElementById("line-pv").dataset.watts === "${pv}"`,
            "the sum of sim2 and sim3",
          );
        });

        await t.step("should have logged no error and no CSP violation", () => {
          deepEqual(page.problems, []);
        });
      } finally {
        await browser.close();
        await server.close();
      }
    }, { start: todayNoon(), intervalMs: 200 });
  },
});
