/**
 * The dashboard in a real browser: headless Chromium against the server over the simulator, and
 * against a real `ess mqtt --listen` process.
 * With ESS_SCREENSHOTS=1 it also writes docs/dashboard.png, docs/dashboard-phone.png and
 * docs/dashboard-dark.png.
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import { startServer } from "../lib/serve/server.ts";
import { startSimulator } from "../lib/sim/simulator.ts";
import { startAedes } from "./_broker.ts";
import { chromiumPath, launchChromium, type Page } from "./_chromium.ts";
import { spawnDaemon } from "./_cli.ts";
import { withSimSource } from "./_serve_source.ts";
import { worldArgs } from "./_world.ts";

const CHROMIUM = chromiumPath();
const TOKEN = "dashboard-test-token";
/**
 * Today at a time, local time (the tests run with TZ=UTC). The simulator lives on today's date
 * because the page asks for the graphs of the browser's today.
 */
function todayAt(hours: number, minutes: number): Date {
  const now = new Date();
  return new Date(now.getFullYear(), now.getMonth(), now.getDate(), hours, minutes);
}

/** The simulator's live figures the dashboard should show. */
function simFigures(home: Record<string, Record<string, string>>) {
  return {
    pv: Math.round(Number(home["statistics"]!["pcs_pv_total_power"])),
    load: Math.round(Number(home["statistics"]!["load_power"])),
    soc: `${Math.round(Number(home["statistics"]!["bat_user_soc"]))} %`,
  };
}

const pageFigures = (page: Page) =>
  page.evaluate<{ pv: number; load: number; soc: string }>(`({
    pv: Number(document.getElementById("line-pv").dataset.watts),
    load: Number(document.getElementById("line-house").dataset.watts),
    soc: document.getElementById("soc").textContent,
  })`);

/** Waits until the page shows the simulator's live figures as they are now; returns them. */
async function showsSimulator(
  page: Page,
  sim: { device: { read(state: "home"): unknown } },
  what: string,
): Promise<ReturnType<typeof simFigures>> {
  const expected = simFigures(sim.device.read("home") as never);
  await page.waitFor(
    `document.getElementById("line-pv").dataset.watts === "${expected.pv}"`,
    what,
  );
  deepEqual(await pageFigures(page), expected);
  return expected;
}

/** Moves the simulator's clock with `move`, then waits until the page shows the new figures. */
async function followsClock(
  page: Page,
  sim: { device: { read(state: "home"): unknown } },
  move: () => void,
): Promise<void> {
  const before = await pageFigures(page);
  move();
  const expected = await showsSimulator(page, sim, "the new PV power");
  ok(expected.pv !== before.pv, "the PV power differs at the new time");
}

async function saveScreenshot(page: Page, file: string, maxHeight: number): Promise<void> {
  // Let the flow animation and the chart settle, so the picture is not caught mid-transition.
  await new Promise((resolve) => setTimeout(resolve, 900));
  await Deno.writeFile(
    new URL(`../docs/${file}`, import.meta.url),
    await page.screenshot(maxHeight),
  );
}

Deno.test({
  name: CHROMIUM
    ? "ess serve dashboard shows the simulator live in Chromium"
    : "ess serve dashboard shows the simulator live in Chromium (skipped: chromium is not installed)",
  ignore: CHROMIUM === undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    await withSimSource(async ({ sim, source, setTime }) => {
      const server = startServer({ hostname: "127.0.0.1", port: 0 }, {
        source,
        controlToken: TOKEN,
        intervalSeconds: 0.2,
      });
      const browser = await launchChromium();
      const { page } = browser;
      try {
        await page.viewport(1280, 900);
        await page.navigate(`${server.url}/`);

        await t.step("should show the simulator's live numbers", async () => {
          await page.waitFor(`document.getElementById("pill").textContent === "live"`, "live");
          const expected = await showsSimulator(page, sim, "the PV power");
          ok(expected.pv > 0, "the sun shines at noon");
          equal(
            await page.evaluate(`document.getElementById("title").textContent`),
            (sim.device.read("systeminfo")["pms"] as Record<string, string>)["model"],
          );
        });

        await t.step("should follow the simulator over SSE when its clock moves", async () => {
          await followsClock(page, sim, () => setTime(todayAt(14, 0)));
        });

        await t.step("should draw today's PV history from the graph API", async () => {
          await page.waitFor(
            `document.querySelectorAll("#chart rect.a").length >= 8`,
            "the PV bars",
          );
          await page.evaluate(`document.querySelector('[data-span="week"]').click()`);
          await page.waitFor(
            `document.querySelectorAll("#chart rect.a").length >= 1 &&
             document.querySelectorAll("#chart rect.a").length <= 7`,
            "the week's bars",
          );
          await page.evaluate(`document.querySelector('[data-span="day"]').click()`);
          await page.waitFor(`document.querySelectorAll("#chart rect.a").length >= 8`, "day bars");
        });

        if (Deno.env.get("ESS_SCREENSHOTS") === "1") {
          await t.step("should write the screenshots", async () => {
            await saveScreenshot(page, "dashboard.png", 1400);
            await page.viewport(390, 844, true);
            await page.navigate(`${server.url}/`);
            await page.waitFor(`document.querySelectorAll("#chart rect.a").length >= 8`, "bars");
            await saveScreenshot(page, "dashboard-phone.png", 1800);
            await page.viewport(1280, 900);
            await page.send("Emulation.setEmulatedMedia", {
              features: [{ name: "prefers-color-scheme", value: "dark" }],
            });
            await page.navigate(`${server.url}/`);
            await page.waitFor(`document.querySelectorAll("#chart rect.a").length >= 8`, "bars");
            await saveScreenshot(page, "dashboard-dark.png", 1400);
            await page.send("Emulation.setEmulatedMedia", { features: [] });
          });
        }

        await t.step("should switch winter mode after the token and a confirmation", async () => {
          equal(sim.device.winterMode, false);
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
          equal(sim.device.winterMode, false, "nothing is sent before the confirmation");
          await page.evaluate(`document.getElementById("confirm-ok").click()`);
          await page.waitFor(
            `document.getElementById("control-result").textContent.startsWith("Done")`,
            "the control's result",
          );
          equal(sim.device.winterMode, true);
          await page.waitFor(
            `document.querySelector('[data-now="winter_mode"]').textContent === "now: on" &&
             document.querySelector('[data-now="winter_mode"]').parentElement
               .querySelector("button.current").dataset.value === "on"`,
            "the new winter setting",
          );
        });

        await t.step("should say the device is unreachable, and when it is back", async () => {
          await sim.refuseConnections(2500);
          await page.waitFor(
            `!document.getElementById("banner").hidden &&
             document.getElementById("pill").textContent === "unreachable"`,
            "the unreachable banner",
          );
          const text = await page.evaluate<string>(
            `document.getElementById("banner-text").textContent`,
          );
          ok(/no answer since .*\(\d+ s ago\)/.test(text), text);
          await page.waitFor(`document.getElementById("banner").hidden`, "the banner to go");
        });

        await t.step("should have logged no error and no CSP violation", () => {
          deepEqual(page.problems, []);
        });
      } finally {
        await browser.close();
        await server.close();
      }
    }, { start: todayAt(12, 0), intervalMs: 200 });
  },
});

Deno.test({
  name: CHROMIUM
    ? "ess mqtt --listen (subprocess) shows the simulator live in Chromium"
    : "ess mqtt --listen (subprocess) shows the simulator live in Chromium (skipped: chromium is not installed)",
  ignore: CHROMIUM === undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    let time = todayAt(12, 0);
    const sim = await startSimulator({ now: () => time });
    const broker = await startAedes();
    const ess = spawnDaemon([
      "mqtt",
      ...worldArgs({ sim, broker }),
      "--interval-seconds",
      "1",
      "--listen",
      "127.0.0.1:0",
    ]);
    let browser: Awaited<ReturnType<typeof launchChromium>> | undefined;
    try {
      const url = (await ess.waitFor(/ on (http:\/\/\S+)/))[1]!;
      browser = await launchChromium();
      const { page } = browser;
      await page.viewport(1280, 900);
      await page.navigate(`${url}/`);

      await t.step("should show the simulator's live numbers and its model", async () => {
        await page.waitFor(`document.getElementById("pill").textContent === "live"`, "live");
        await showsSimulator(page, sim, "the PV power");
        await page.waitFor(
          `document.getElementById("title").textContent === ${
            JSON.stringify(
              (sim.device.read("systeminfo")["pms"] as Record<string, string>)["model"],
            )
          }`,
          "the model from systeminfo",
        );
      });

      await t.step("should follow the simulator over SSE when its clock moves", async () => {
        await followsClock(page, sim, () => time = todayAt(15, 30));
      });

      await t.step("should draw today's PV history through the bridge's session", async () => {
        await page.waitFor(
          `document.querySelectorAll("#chart rect.a").length >= 8`,
          "the PV bars",
        );
      });

      await t.step("should have logged no error and no CSP violation", () => {
        deepEqual(page.problems, []);
      });
    } finally {
      await browser?.close();
      const { code, stderr } = await ess.stop();
      equal(code, 0, stderr);
      await broker.close();
      await sim.close();
    }
  },
});
