/**
 * `/metrics`: the exposition itself, `promtool check metrics` on it, and a real Prometheus
 * scraping a real `ess serve` process over the simulator. The tools are Debian's `prometheus` package; each
 * test that needs one is skipped, and says why, where it is missing.
 */
import { deepEqual, equal, match, ok } from "node:assert/strict";
import { escapeLabelValue, renderMetrics, summaryValues } from "../lib/export/prometheus.ts";
import { type Simulator, startSimulator } from "../lib/sim/simulator.ts";
import { spawnDaemon } from "./_cli.ts";
import { normalise } from "../lib/model/normalise.ts";
import { fixtureStates } from "./_serve_source.ts";
import { deviceArgs, NOON } from "./_world.ts";
import { waitFor } from "./_wait.ts";
import { peerCheck } from "./_peers.ts";
import { PROMTOOL, promtoolCheck, which } from "./_promtool.ts";

const promtool = peerCheck("promtool", PROMTOOL ? undefined : "promtool is not installed");
const PROMETHEUS = which("prometheus");
const prometheus = peerCheck("prometheus", PROMETHEUS ? undefined : "prometheus is not installed");

/** `name{labels} value` lines as a map from `name{labels}` to the value. */
function samples(text: string): Map<string, number> {
  const map = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const at = line.lastIndexOf(" ");
    map.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return map;
}

const NOW = 1_780_000_000_000;

/**
 * Runs `fn` with a simulator (its clock stands still, so values can be compared) and a real
 * `ess serve` process polling it every second.
 */
async function withServe(fn: (w: { sim: Simulator; url: string }) => Promise<void>) {
  const sim = await startSimulator({ now: () => NOON });
  const ess = spawnDaemon([
    "serve",
    ...deviceArgs(sim),
    "--listen",
    "127.0.0.1:0",
    "--interval-seconds",
    "1",
  ]);
  try {
    const url = (await ess.waitFor(/ on (http:\/\/\S+)/))[1]!;
    await waitFor(async () => (await (await fetch(`${url}/api/state`)).json())["up"] === true, {
      what: "ess serve to poll",
      everyMs: 100,
    });
    await fn({ sim, url });
  } finally {
    const { code, stderr } = await ess.stop();
    equal(code, 0, stderr);
    await sim.close();
  }
}

/** The exposition of a fixture family, as `ess serve` makes it: the states and their reading. */
function metricsOf(family: string, lastSuccess = NOW, states = fixtureStates(family)): string {
  return renderMetrics({ states, reading: normalise(states), lastSuccess, up: true }, NOW);
}

Deno.test("renderMetrics() exports the reading's figures in base units", async (t) => {
  const text = metricsOf("classic", NOW - 4_000);
  const s = samples(text);
  const at = (name: string, labels = "") => s.get(`${name}{serial="ESSFIX0001"${labels}}`);
  await t.step("should sign battery and grid power by the device's direction flags", () => {
    equal(at("ess_pv_power_watts"), 2174);
    equal(at("ess_battery_power_watts"), -612, "charging is negative");
    equal(at("ess_grid_power_watts"), -1074, "feeding in is negative");
    equal(at("ess_load_power_watts"), 488);
  });
  await t.step("should give ratios, joules, volts, hertz and amperes", () => {
    equal(at("ess_battery_soc_ratio"), 0.6381944);
    equal(at("ess_pv_generation_today_joules"), 6318 * 3600);
    equal(at("ess_battery_discharge_today_joules"), 2210 * 3600);
    equal(at("ess_grid_voltage_volts", ',phase="a"'), 229.6);
    equal(at("ess_grid_frequency_hertz"), 50.02);
    equal(at("ess_pv_string_current_amperes", ',string="2"'), 3.43);
  });
  await t.step("should give the poll status and the device's identity", () => {
    equal(at("ess_up"), 1);
    equal(at("ess_last_success_age_seconds"), 4);
    equal(at("ess_last_success_timestamp_seconds"), (NOW - 4_000) / 1000);
    ok(
      s.has(
        'ess_info{serial="ESSFIX0001",model="LG ESS Home 10",family="home10-classic",' +
          'pms_version="10.05.6066",pcs_version="LG P1 02.00.02.00 R1761",' +
          'bms_version="LGBMS.01.01.02.00"}',
      ),
    );
  });
  await t.step("should give modes as 0/1 gauges, and the strategies the firmware has", () => {
    equal(at("ess_running"), 1);
    equal(at("ess_winter_mode_enabled"), 0);
    equal(at("ess_fast_charge_enabled"), 0);
    equal(at("ess_charge_strategy", ',strategy="battery-care"'), 1);
    equal(at("ess_charge_strategy", ',strategy="fast-charge"'), 0);
    equal(at("ess_charge_strategy", ',strategy="weather-forecast"'), undefined);
  });
  await t.step("should label every sample with the serial and type every family once", () => {
    for (const key of s.keys()) match(key, /\{serial="ESSFIX0001"/);
    const types = text.split("\n").filter((l) => l.startsWith("# TYPE "));
    equal(new Set(types).size, types.length);
    ok(types.every((l) => l.endsWith(" gauge")), "no counters: the device's sums reset");
    ok(!/_total\b/.test(text));
  });
});

Deno.test("renderMetrics() gives every model the same names, from its own fields", async (t) => {
  await t.step("should read ESS Home 15's 0.1 kW, 0.1 V, 0.1 Hz and 0.01 A", () => {
    const s = samples(metricsOf("home15"));
    const at = (name: string, labels = "") => s.get(`${name}{serial="ESSFIX015001"${labels}}`);
    // home.statistics: *_01kW 3, 7, 2 (discharging), 2 (buying); GRID.freq 501.
    equal(at("ess_pv_power_watts"), 300);
    equal(at("ess_load_power_watts"), 700);
    equal(at("ess_battery_power_watts"), 200);
    equal(at("ess_grid_power_watts"), 200);
    equal(at("ess_grid_frequency_hertz"), 50.1);
    equal(at("ess_battery_soc_ratio"), 0.63);
    // common.ess[0].pv[0]: voltage 3120, current 32, power 100; ess[1] is not installed.
    equal(at("ess_pv_string_voltage_volts", ',string="1"'), 312);
    equal(at("ess_pv_string_current_amperes", ',string="1"'), 0.32);
    equal(at("ess_pv_string_power_watts", ',string="3"'), 70);
    equal(at("ess_pv_string_power_watts", ',string="4"'), undefined);
    equal(at("ess_grid_voltage_volts", ',phase="b"'), 232.4);
    equal(at("ess_grid_phase_power_watts", ',phase="a"'), -150);
    equal(at("ess_battery_safety_soc_ratio"), 0.15, "reserved_soc");
    equal(at("ess_fast_charge_enabled"), 1, "alg_setting fast_charge");
    equal(at("ess_backup_mode_enabled"), 1, "backup_setting simple");
  });
  await t.step("should read a newer Home 10's words and safety_soc", () => {
    const s = samples(metricsOf("home10"));
    const at = (name: string, labels = "") => s.get(`${name}{serial="ESSFIX010001"${labels}}`);
    equal(at("ess_battery_power_watts"), -1200);
    equal(at("ess_grid_power_watts"), -500);
    equal(at("ess_battery_safety_soc_ratio"), 0.2);
    equal(at("ess_backup_reserve_ratio"), 0.3);
    equal(at("ess_charge_strategy", ',strategy="weather-forecast"'), 1);
    equal(at("ess_grid_purchase_today_joules"), 1500 * 3600);
  });
  await t.step("should name the same metrics wherever the models share a figure", () => {
    const names = (family: string) =>
      new Set([...samples(metricsOf(family)).keys()].map((k) => k.slice(0, k.indexOf("{"))));
    const home15 = names("home15");
    const home10 = names("home10");
    const home5 = names("home5");
    for (
      const name of ["ess_pv_power_watts", "ess_grid_frequency_hertz", "ess_battery_soc_ratio"]
    ) {
      ok(home15.has(name) && home10.has(name) && home5.has(name), name);
    }
    ok(!home15.has("ess_pv_generation_today_joules"), "no counters in a Home 15's live answer");
  });
});

Deno.test("renderMetrics() leaves out what the reading does not have", async (t) => {
  await t.step("should omit empty, non-numeric and endless values", () => {
    const states = {
      home: {
        statistics: {
          pcs_pv_total_power: "",
          load_power: "n/a",
          batconv_power: "Infinity",
          grid_power: "1e999",
          bat_user_soc: "NaN",
        },
      },
      systeminfo: { pms: { serialno: "S1" } },
    };
    const text = renderMetrics({
      states,
      reading: normalise(states),
      lastSuccess: undefined,
      up: false,
    }, NOW);
    const names = [...samples(text).keys()];
    for (const name of ["power_watts", "soc_ratio"]) {
      ok(!names.some((k) => k.includes(name)), `${name} in ${names}`);
    }
    ok(names.includes('ess_info{serial="S1",family="home10-classic"}'));
    equal(samples(text).get('ess_up{serial="S1"}'), 0);
  });
  await t.step("should omit a value that becomes endless in base units", () => {
    // 1e308 Wh is a finite number, but not in joules.
    const states = {
      common: { PV: { today_pv_generation_sum: "1e308", capacity: "6120" } },
      systeminfo: { pms: { serialno: "S1" } },
    };
    const reading = normalise(states);
    const text = renderMetrics({ states, reading, lastSuccess: undefined, up: true }, NOW);
    ok(!text.includes("ess_pv_generation_today_joules"));
    equal(samples(text).get('ess_pv_capacity_watts{serial="S1"}'), 6120);
    equal(summaryValues(reading)["pv_capacity_watts"], 6120);
    equal(summaryValues(reading)["pv_generation_today_joules"], undefined);
  });
  await t.step("should send only ess_up until systeminfo names the serial", () => {
    const states = { home: { statistics: { pcs_pv_total_power: "1200", load_power: "400" } } };
    const text = renderMetrics({
      states,
      reading: normalise(states),
      lastSuccess: NOW - 2000,
      up: true,
    }, NOW);
    deepEqual([...samples(text).keys()], [
      'ess_up{serial="unknown"}',
      'ess_last_success_timestamp_seconds{serial="unknown"}',
      'ess_last_success_age_seconds{serial="unknown"}',
    ]);
  });
  await t.step("should escape backslashes, quotes and newlines in label values", () => {
    equal(escapeLabelValue('a\\b"c\nd'), 'a\\\\b\\"c\\nd');
    const states = { systeminfo: { pms: { serialno: 'ES"S\\1\n2', model: "x" } } };
    const text = renderMetrics({
      states,
      reading: normalise(states),
      lastSuccess: undefined,
      up: true,
    }, NOW);
    match(text, /^ess_up\{serial="ES\\"S\\\\1\\n2"\} 1$/m);
  });
});

Deno.test({
  name: `ess serve /metrics passes promtool check metrics${promtool.label}`,
  ignore: promtool.ignore,
  async fn(t) {
    promtool.assertPresent();
    for (const family of ["classic", "new", "home10", "home5", "home15"]) {
      await t.step(`should pass with the ${family} fixtures`, async () => {
        deepEqual(await promtoolCheck(metricsOf(family)), { code: 0, output: "" });
      });
    }
    await t.step("should pass as a running ess serve serves it", async () => {
      await withServe(async ({ url }) => {
        const res = await fetch(`${url}/metrics`);
        equal(res.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
        deepEqual(await promtoolCheck(await res.text()), { code: 0, output: "" });
      });
    });
  },
});

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

Deno.test({
  name: `ess serve /metrics is scraped by a real Prometheus${prometheus.label}`,
  ignore: prometheus.ignore,
  async fn(t) {
    prometheus.assertPresent();
    await withServe(async ({ sim, url }) => {
      const target = new URL(url).host;
      const dir = await Deno.makeTempDir({ prefix: "ess-prometheus-" });
      const port = freePort();
      await Deno.writeTextFile(
        `${dir}/prometheus.yml`,
        `global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n` +
          `  - job_name: ess\n    static_configs:\n      - targets: ["${target}"]\n`,
      );
      const child = new Deno.Command(PROMETHEUS!, {
        args: [
          `--config.file=${dir}/prometheus.yml`,
          `--storage.tsdb.path=${dir}/data`,
          `--web.listen-address=127.0.0.1:${port}`,
          "--log.level=error",
        ],
        stdin: "null",
        stdout: "null",
        stderr: "null",
      }).spawn();
      const query = async (expr: string) => {
        try {
          const res = await fetch(
            `http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent(expr)}`,
          );
          return (await res.json()).data?.result ?? [];
        } catch {
          return [];
        }
      };
      try {
        await t.step("should return ess_up and the PV power through its query API", async () => {
          let result: { metric: Record<string, string>; value: [number, string] }[] = [];
          await waitFor(async () => (result = await query("ess_up")).length > 0, {
            what: "Prometheus to return ess_up",
            timeoutMs: 45_000,
            everyMs: 250,
          });
          equal(result[0]!.value[1], "1");
          const serial = (sim.device.read("systeminfo")["pms"] as Record<string, string>)[
            "serialno"
          ];
          equal(result[0]!.metric["serial"], serial);
          equal(result[0]!.metric["job"], "ess");
          const pv = await query("ess_pv_power_watts");
          const home = sim.device.read("home")["statistics"] as Record<string, string>;
          equal(pv[0]?.value[1], String(Number(home["pcs_pv_total_power"])));
        });
      } finally {
        child.kill("SIGTERM");
        await child.status;
        await Deno.remove(dir, { recursive: true });
      }
    });
  },
});
