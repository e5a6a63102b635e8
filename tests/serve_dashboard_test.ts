/**
 * The dashboard in a real browser: headless Chromium against the server over the simulator, and
 * against a real `ess mqtt --listen` process.
 * With ESS_SCREENSHOTS=1 it also writes docs/dashboard.png, docs/dashboard-phone.png,
 * docs/dashboard-dark.png, and, from the ESS Home 15 fixture with the graph fixtures moved to
 * today, docs/dashboard-home15.png and docs/dashboard-home15-phone.png.
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import { startServer } from "../lib/serve/server.ts";
import { startSimulator } from "../lib/sim/simulator.ts";
import { startAedes } from "./_broker.ts";
import { chromiumPath, launchChromium, type Page } from "./_chromium.ts";
import { spawnDaemon } from "./_cli.ts";
import { FakeSource, fixtureStates, withSimSource } from "./_serve_source.ts";
import { normalise } from "../lib/model/normalise.ts";
import type { GraphAnswer } from "../lib/device/client.ts";
import type { CalendarDate, GraphDevice, GraphSpan } from "../lib/device/states.ts";
import { worldArgs } from "./_world.ts";
import { peerCheck } from "./_peers.ts";

const CHROMIUM = chromiumPath();
const chromium = peerCheck("chromium", CHROMIUM ? undefined : "chromium is not installed");
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

/**
 * The graph fixture of `device` and `span` moved to `date` (its rows keep their time of day, day
 * of the week or month), for pictures of a device that has no simulator of its own.
 */
function graphOn(device: GraphDevice, span: GraphSpan, date: CalendarDate): GraphAnswer {
  const file = new URL(`../fixtures/graph/${device}_${span}.json`, import.meta.url);
  const answer = JSON.parse(Deno.readTextFileSync(file)) as { loginfo: Record<string, string>[] };
  const p = (n: number) => String(n).padStart(2, "0");
  const day = new Date(date.year, date.month - 1, date.day);
  const monday = new Date(day);
  monday.setDate(day.getDate() - ((day.getDay() + 6) % 7));
  const loginfo = answer.loginfo.map((row, i) => {
    const time = row["time"] ?? "";
    const at = span === "week" ? new Date(monday.getTime() + i * 864e5) : day;
    const ymd = `${at.getFullYear()}${p(at.getMonth() + 1)}${p(at.getDate())}`;
    const moved = span === "day" || span === "week"
      ? ymd + time.slice(8)
      : span === "month"
      ? ymd.slice(0, 6) + time.slice(6)
      : String(date.year) + time.slice(4);
    return { ...row, time: moved };
  });
  return { ...answer, loginfo };
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
  name: `ess serve dashboard shows the simulator live in Chromium${chromium.label}`,
  ignore: chromium.ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    chromium.assertPresent();
    await withSimSource(async ({ sim, source, setTime }) => {
      const server = await startServer({ hostname: "127.0.0.1", port: 0 }, {
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
            `document.querySelector('[data-now="winter_mode"]').textContent === "now: On" &&
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
  name: `ess mqtt --listen (subprocess) shows the simulator live in Chromium${chromium.label}`,
  ignore: chromium.ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    chromium.assertPresent();
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

/** What the dashboard shows of the device, read from the page. */
const shown = (page: Page) =>
  page.evaluate<Record<string, string>>(`Object.fromEntries(
    ["title", "model", "v-pv", "v-house", "v-grid", "d-grid", "d-batt", "soc", "batt-reserve",
     "batt-status", "m-system", "m-mode", "m-winter", "m-strategy", "m-backup", "m-inverter",
     "t-pv", "t-buy", "t-note"]
      .map((id) => [id, document.getElementById(id).textContent]))`);

/** The controls the page offers, with a select's options: `["Winter mode", "Charge strategy: …"]`. */
const offered = (page: Page) =>
  page.evaluate<string[]>(`[...document.querySelectorAll(".control")].map((row) => {
    const options = [...row.querySelectorAll("option")].map((o) => o.value);
    const name = row.querySelector(".name").textContent;
    return options.length ? name + ": " + options.join(" ") : name;
  })`);

Deno.test({
  name:
    `ess serve dashboard shows each firmware's answers, and device text only as text${chromium.label}`,
  ignore: chromium.ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    chromium.assertPresent();
    const source = new FakeSource();
    source.poll(fixtureStates("classic"));
    source.graphAnswer = (device, span, date) => Promise.resolve(graphOn(device, span, date));
    const server = await startServer({ hostname: "127.0.0.1", port: 0 }, {
      source,
      controlToken: TOKEN,
      intervalSeconds: 10,
    });
    const browser = await launchChromium();
    const { page } = browser;
    /** Sends `states` as a poll and waits until the page shows the model `title`. */
    const show = async (states: ReturnType<typeof fixtureStates>, title: string) => {
      source.poll(states);
      await page.waitFor(
        `document.getElementById("title").textContent === ${JSON.stringify(title)}`,
        title,
      );
      return await shown(page);
    };
    try {
      await page.viewport(1280, 900);
      await page.navigate(`${server.url}/`);
      await page.waitFor(`document.getElementById("pill").textContent === "live"`, "live");
      // The charge strategy's words come with /api/info.
      await page.waitFor(`document.getElementById("version").textContent !== "ess"`, "the info");

      /** What the page shows of the classic fixtures (an ESS Home 10). */
      const classic = {
        "title": "LG ESS Home 10",
        "model": "serial ESSFIX0001 · PMS 10.05.6066",
        "v-pv": "2.17 kW",
        "v-house": "488 W",
        "v-grid": "1.07 kW",
        "d-grid": "Feeding in",
        "d-batt": "Charging 612 W",
        "soc": "64 %",
        "batt-reserve": "10 %",
        "batt-status": "Charging",
        "m-system": "Running",
        "m-mode": "Normal",
        "m-winter": "Off",
        "m-strategy": "Battery care",
        "m-backup": "–",
        "m-inverter": "OK",
        // common.PV.today_pv_generation_sum 6318 Wh, GRID.today_grid_power_purchase_energy 904.
        "t-pv": "6.32 kWh",
        "t-buy": "904 Wh",
        "t-note": "",
      };
      const switches = ["System", "Winter mode", "Fast charge"];

      await t.step("should show classic firmware (Home 10, alg_setting on/off)", async () => {
        deepEqual(await show(fixtureStates("classic"), "LG ESS Home 10"), classic);
        deepEqual(await offered(page), [
          ...switches,
          "Charge strategy: battery_care fast_charge",
        ]);
      });

      await t.step(
        "should show newer firmware (numeric alg_setting, backup settings)",
        async () => {
          const states = fixtureStates("new");
          states.systeminfo = { ...states.systeminfo, pms: { model: "LG ESS Home 10 new" } };
          deepEqual(await show(states, "LG ESS Home 10 new"), {
            ...classic,
            "title": "LG ESS Home 10 new",
            "model": "PMS 10.05.7420",
            // Backup mode is off: the battery keeps its safety reserve, not the backup one.
            "batt-reserve": "10 %",
            "m-winter": "On · in season",
            "m-strategy": "Fast charge",
            "m-backup": "Off · 20 %",
          });
          deepEqual(await offered(page), [
            ...switches,
            "Charge strategy: battery_care fast_charge weather_forecast",
            "Backup mode",
            "Backup reserve",
          ]);
        },
      );

      await t.step("should show a newer Home 10 (alg_setting in words, safety_soc)", async () => {
        deepEqual(await show(fixtureStates("home10"), "D010KE1N211"), {
          "title": "D010KE1N211",
          "model": "serial ESSFIX010001 · PMS 10.05.7501",
          "v-pv": "2.40 kW",
          "v-house": "700 W",
          "v-grid": "500 W",
          "d-grid": "Feeding in",
          "d-batt": "Charging 1.20 kW",
          "soc": "54 %",
          // Backup mode is on: its reserve (backup_soc 30) holds, not safety_soc 20.
          "batt-reserve": "30 %",
          "batt-status": "Charging",
          "m-system": "Running",
          "m-mode": "Normal",
          "m-winter": "Off",
          "m-strategy": "Weather forecast",
          "m-backup": "On · 30 %",
          "m-inverter": "OK",
          "t-pv": "12.0 kWh",
          "t-buy": "1.50 kWh",
          "t-note": "",
        });
      });

      await t.step("should show an ESS Home 5 (discharging, winter mode in season)", async () => {
        const text = await show(fixtureStates("home5"), "D005KD1N111");
        deepEqual(
          [text["v-house"], text["d-grid"], text["d-batt"], text["soc"], text["batt-reserve"]],
          ["500 W", "Buying", "Discharging 350 W", "38 %", "15 %"],
        );
        deepEqual([text["m-winter"], text["batt-status"], text["t-pv"]], [
          "On · in season",
          "Discharging",
          "8.80 kWh",
        ]);
        deepEqual(await offered(page), [
          ...switches,
          "Charge strategy: battery_care fast_charge",
        ]);
      });

      await t.step("should show ESS Home 15 (numbers, 0.1 kW, ess[] arrays, words)", async () => {
        deepEqual(await show(fixtureStates("home15"), "D015KE1N212"), {
          "title": "D015KE1N212",
          "model": "serial ESSFIX015001 · PMS 1.1.2960",
          // 0.1 kW: PV 3, house 7, grid 2 buying, battery 2 discharging.
          "v-pv": "300 W",
          "v-house": "700 W",
          "v-grid": "200 W",
          "d-grid": "Buying",
          "d-batt": "Discharging 200 W",
          "soc": "63 %",
          // Backup mode `simple` is on, but the Home 15 has no backup_soc: reserved_soc 15 holds.
          "batt-reserve": "15 %",
          "batt-status": "Discharging",
          "m-system": "Running",
          "m-mode": "Normal",
          "m-winter": "Off",
          "m-strategy": "Fast charge",
          "m-backup": "On",
          "m-inverter": "OK",
          "t-pv": "–",
          "t-buy": "–",
          "t-note":
            "This model's live answer has no energy counters; the history below has the day's.",
        });
        deepEqual(await offered(page), [
          ...switches,
          "Charge strategy: battery_care fast_charge weather_forecast",
          "Backup mode",
        ]);
      });

      await t.step("should show a Home 15's energy as ess integrated it, and say so", async () => {
        const states = fixtureStates("home15");
        const reading = normalise(states);
        reading.energy = {
          pvGeneration: { todayWh: 1204, source: "integrated" },
          gridPurchase: { todayWh: 310, source: "integrated" },
        };
        source.poll(states, Date.now(), reading);
        await page.waitFor(`document.getElementById("t-pv").textContent === "1.20 kWh"`, "Today");
        const text = await shown(page);
        deepEqual([text["t-pv"], text["t-buy"], text["t-note"]], [
          "1.20 kWh",
          "310 Wh",
          "Worked out by ess from the polled power since it started today.",
        ]);
      });

      if (Deno.env.get("ESS_SCREENSHOTS") === "1") {
        await t.step("should write the ESS Home 15 screenshots", async () => {
          for (
            const [file, width, height, mobile, maxHeight] of [
              ["dashboard-home15.png", 1280, 900, false, 1400],
              ["dashboard-home15-phone.png", 390, 844, true, 1800],
            ] as const
          ) {
            await page.viewport(width, height, mobile);
            await page.navigate(`${server.url}/`);
            await page.waitFor(
              `document.getElementById("title").textContent === "D015KE1N212"`,
              "",
            );
            await page.waitFor(`document.querySelectorAll("#chart rect.a").length >= 8`, "bars");
            await saveScreenshot(page, file, maxHeight);
          }
          await page.viewport(1280, 900);
        });
      }

      await t.step("should show a device code that names a JavaScript property", async () => {
        // `constructor` is a key of every object: looked up in a plain table, it is a function.
        const states = fixtureStates("classic");
        states.systeminfo = { pms: { model: "toString" } };
        states.home = { ...states.home, operation: { status: "start", mode: "constructor" } };
        const text = await show(states, "toString");
        equal(text["m-mode"], "Unknown (constructor)");
      });

      await t.step("should show markup from the device as text, never run it", async () => {
        const markup = `<img src=x onerror="window.hacked=1">`;
        const states = fixtureStates("classic");
        states.systeminfo = { pms: { model: markup, serialno: "<b>S</b>" } };
        states.home = {
          ...states.home,
          pcs_fault: { pcs_status: "<script>window.hacked=2</script>" },
        };
        states.batt = { ...states.batt, alg_setting: "<i>x</i>" };
        const text = await show(states, markup);
        equal(text["model"], "serial <b>S</b>");
        equal(text["m-inverter"], "Unknown (<script>window.hacked=2</script>)");
        equal(text["m-strategy"], "–", "no strategy ess knows");
        equal(
          await page.evaluate(`["title", "model", "m-inverter", "m-strategy"]
            .filter((id) => document.getElementById(id).querySelector("img, script, b, i"))
            .length`),
          0,
          "no element made from device text",
        );
        equal(await page.evaluate(`window.hacked === undefined`), true);
      });

      await t.step("should have logged no error and no CSP violation", () => {
        deepEqual(page.problems, []);
      });
    } finally {
      await browser.close();
      await server.close();
    }
  },
});
