/**
 * The dashboard's history chart: the y axis's steps and units, worked out by hand, and in
 * Chromium, that every axis label fits inside the chart in every span, on a desktop and a phone.
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import { axisTicks, energyText } from "../lib/serve/assets/chart.js";
import { startServer } from "../lib/serve/server.ts";
import { chromiumPath, launchChromium } from "./_chromium.ts";
import { FakeSource, fixtureStates } from "./_serve_source.ts";
import type { GraphDevice, GraphSpan } from "../lib/device/states.ts";
import { peerCheck } from "./_peers.ts";

const CHROMIUM = chromiumPath();
const chromium = peerCheck("chromium", CHROMIUM ? undefined : "chromium is not installed");

const labels = (max: number) =>
  (axisTicks(max) as { ticks: { label: string }[] }).ticks.map((t) => t.label);

Deno.test("energyText() picks Wh, kWh or MWh by the amount, three digits from 1 kWh", () => {
  equal(energyText(0), "0 Wh");
  equal(energyText(849.6), "850 Wh");
  equal(energyText(999), "999 Wh");
  equal(energyText(1000), "1.00 kWh");
  equal(energyText(12_345), "12.3 kWh");
  equal(energyText(999_400), "999 kWh");
  equal(energyText(4_567_000), "4.57 MWh");
  equal(energyText(-2500), "-2.50 kWh");
});

Deno.test("axisTicks() steps round to 1, 2, 2.5 or 5 and labels them in one fitting unit", () => {
  // 1 kWh in four steps of 250 Wh: every label in kWh with the step's two decimals.
  deepEqual(labels(1000), ["0", "0.25 kWh", "0.50 kWh", "0.75 kWh", "1.00 kWh"]);
  equal(axisTicks(1000).top, 1000);
  // 730 Wh: steps of 200 Wh up to 800 Wh, still Wh.
  deepEqual(labels(730), ["0", "200 Wh", "400 Wh", "600 Wh", "800 Wh"]);
  // A day's 15-minute bars of a small system.
  deepEqual(labels(90), ["0", "25 Wh", "50 Wh", "75 Wh", "100 Wh"]);
  // A month of a big system: 1.37 MWh → steps of 500 kWh, labelled in MWh.
  deepEqual(labels(1_370_000), ["0", "0.5 MWh", "1.0 MWh", "1.5 MWh"]);
  // 18.2 kWh → steps of 5 kWh.
  deepEqual(labels(18_200), ["0", "5 kWh", "10 kWh", "15 kWh", "20 kWh"]);
  // Nothing to show: 0 to 1 kWh.
  deepEqual(labels(0), ["0", "0.25 kWh", "0.50 kWh", "0.75 kWh", "1.00 kWh"]);
  for (const max of [1, 7, 33, 999, 1001, 4321, 77_777, 123_456_789]) {
    const { top, ticks } = axisTicks(max) as { top: number; ticks: unknown[] };
    ok(top >= max && ticks.length >= 2 && ticks.length <= 5, `${max}: ${top}, ${ticks.length}`);
  }
});

/** A graph answer of `rows` rows for `span`, each of `value` Wh. */
function graph(device: GraphDevice, span: GraphSpan, value: number) {
  const keys = { pv: ["generation", "feed_in"], load: ["consumption", "purchase"] }[
    device as "pv" | "load"
  ] ?? ["charge", "discharge"];
  const now = new Date();
  const y = now.getFullYear();
  const p = (n: number) => String(n).padStart(2, "0");
  const day = `${y}${p(now.getMonth() + 1)}${p(now.getDate())}`;
  const times = span === "day"
    ? Array.from({ length: 96 }, (_, i) => `${day}${p(Math.floor(i / 4))}${p((i % 4) * 15)}00`)
    : span === "year"
    ? Array.from({ length: 12 }, (_, i) => `${y}${p(i + 1)}01000000`)
    : [`${day}000000`];
  return {
    loginfo: times.map((time, i) => ({
      time,
      [keys[0]!]: String(value * (0.4 + 0.6 * ((i * 7) % 11) / 10)),
      [keys[1]!]: String(value / 3),
    })),
  };
}

Deno.test({
  name:
    `dashboard chart: every axis label fits, with its unit, in every span and size${chromium.label}`,
  ignore: chromium.ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    chromium.assertPresent();
    const source = new FakeSource();
    source.poll(fixtureStates("classic"));
    // The server keeps graph answers a while: each device and span always has the same rows.
    const cases: [GraphDevice, GraphSpan, number, RegExp][] = [
      ["pv", "day", 260, /^(0|\d+ Wh)$/],
      ["load", "day", 1000, /^(0|\d\.\d\d kWh)$/],
      ["pv", "week", 45_000, /^(0|\d+ kWh)$/],
      ["pv", "month", 9_999, /^(0|\d+(\.\d)? kWh)$/],
      ["pv", "year", 1_600_000, /^(0|\d\.\d MWh)$/],
    ];
    source.graphAnswer = (device, span) => {
      const wh = cases.find(([d, s]) => d === device && s === span)?.[2] ?? 500;
      return Promise.resolve(graph(device, span, wh));
    };
    const server = await startServer({ hostname: "127.0.0.1", port: 0 }, {
      source,
      intervalSeconds: 10,
    });
    const browser = await launchChromium();
    const { page } = browser;
    /** Every text of the chart with its box, relative to the chart's own box. */
    const texts = () =>
      page.evaluate<{ text: string; left: number; right: number }[]>(`(() => {
        const svg = document.getElementById("chart");
        const box = svg.getBoundingClientRect();
        return [...svg.querySelectorAll("text")].map((node) => {
          const r = node.getBoundingClientRect();
          return { text: node.textContent, left: r.left - box.left, right: r.right - box.left };
        });
      })()`);
    const show = async (device: GraphDevice, span: GraphSpan) => {
      await page.evaluate(`document.querySelector('[data-device="${device}"]').click();
        document.querySelector('[data-span="${span}"]').click()`);
      await page.waitFor(
        `document.querySelectorAll("#chart rect.a").length > 0 &&
         document.getElementById("readout").textContent !== "loading…"`,
        `the ${span} bars`,
      );
      return await texts();
    };
    try {
      for (const [width, height, mobile] of [[1280, 900, false], [390, 844, true]] as const) {
        await page.viewport(width, height, mobile);
        await page.navigate(`${server.url}/`);
        await page.waitFor(`document.getElementById("pill").textContent === "live"`, "live");
        await t.step(`should fit every label at ${width} px`, async () => {
          for (const [device, span, wh, unit] of cases) {
            const all = await show(device, span);
            const svgWidth = await page.evaluate<number>(
              `document.getElementById("chart").getBoundingClientRect().width`,
            );
            for (const label of all) {
              ok(
                label.left >= 0 && label.right <= svgWidth + 0.5,
                `${span} ${wh} Wh at ${width} px: "${label.text}" spans ${label.left}..${label.right} of ${svgWidth}`,
              );
            }
            const axis = all.filter((l) => /Wh$|^0$/.test(l.text));
            ok(axis.length >= 3, `${span}: ${JSON.stringify(all)}`);
            for (const label of axis) ok(unit.test(label.text), `${span} ${wh}: ${label.text}`);
            if (span === "year") {
              const months = all.filter((l) => !/Wh$|^0$/.test(l.text)).map((l) => l.text);
              equal(months.length, 12);
              equal(months[0], width > 600 ? "Jan" : "J");
              // No two month labels overlap.
              const boxes = all.filter((l) => months.includes(l.text));
              for (let i = 1; i < boxes.length; i++) ok(boxes[i]!.left >= boxes[i - 1]!.right);
            }
          }
        });
      }
      await t.step("should total a year in MWh", async () => {
        const totals = await page.evaluate<string>(`document.getElementById("totals").textContent`);
        // 1.6 MWh × (12 × 0.4 + 0.06 × (0+7+3+10+6+2+9+5+1+8+4+0)) = 12.96 MWh; 12 × 1.6 / 3 MWh.
        equal(totals, "Generated 13.0 MWh · Fed in 6.40 MWh");
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
