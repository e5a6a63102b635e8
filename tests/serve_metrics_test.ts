/**
 * `/metrics`: the exposition itself, `promtool check metrics` on it, and a real Prometheus
 * scraping a real `ess serve` process over the simulator. The tools are Debian's `prometheus` package; each
 * test that needs one is skipped, and says why, where it is missing.
 */
import { deepEqual, equal, match, ok } from "node:assert/strict";
import { escapeLabelValue, renderMetrics, summaryValues } from "../lib/export/prometheus.ts";
import { type Simulator, startSimulator } from "../lib/sim/simulator.ts";
import { spawnDaemon } from "./_cli.ts";
import { fixtureStates } from "./_serve_source.ts";
import { deviceArgs, NOON } from "./_world.ts";

function which(name: string): string | undefined {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":").concat(["/usr/bin"])) {
    try {
      if (Deno.statSync(`${dir}/${name}`).isFile) return `${dir}/${name}`;
    } catch {
      continue;
    }
  }
  return undefined;
}

const PROMTOOL = which("promtool");
const PROMETHEUS = which("prometheus");

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

async function promtoolCheck(text: string): Promise<{ code: number; output: string }> {
  const child = new Deno.Command(PROMTOOL!, {
    args: ["check", "metrics"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(text));
  await writer.close();
  const { code, stdout, stderr } = await child.output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code, output: decode(stdout) + decode(stderr) };
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
    const until = Date.now() + 15_000;
    while ((await (await fetch(`${url}/api/state`)).json())["up"] !== true) {
      if (Date.now() > until) throw new Error(`ess serve did not poll in 15 s:\n${ess.stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await fn({ sim, url });
  } finally {
    const { code, stderr } = await ess.stop();
    equal(code, 0, stderr);
    await sim.close();
  }
}

Deno.test("renderMetrics() exports the device's figures in base units", async (t) => {
  const text = renderMetrics(
    { states: fixtureStates("classic"), lastSuccess: NOW - 4_000, up: true },
    NOW,
  );
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
    equal(at("ess_grid_voltage_volts"), 229.6);
    equal(at("ess_grid_frequency_hertz"), 50.02);
    equal(at("ess_pv_string_current_amperes", ',string="2"'), 3.43);
  });
  await t.step("should give the poll status and the device's identity", () => {
    equal(at("ess_up"), 1);
    equal(at("ess_last_success_age_seconds"), 4);
    equal(at("ess_last_success_timestamp_seconds"), (NOW - 4_000) / 1000);
    ok(
      s.has(
        'ess_info{serial="ESSFIX0001",model="LG ESS Home 10",pms_version="10.05.6066",' +
          'pcs_version="LG P1 02.00.02.00 R1761",bms_version="LGBMS.01.01.02.00"}',
      ),
    );
  });
  await t.step("should give modes as 0/1 gauges", () => {
    equal(at("ess_running"), 1);
    equal(at("ess_winter_mode_enabled"), 0);
    equal(at("ess_fast_charge_enabled"), 0);
  });
  await t.step("should label every sample with the serial and type every family once", () => {
    for (const key of s.keys()) match(key, /\{serial="ESSFIX0001"/);
    const types = text.split("\n").filter((l) => l.startsWith("# TYPE "));
    equal(new Set(types).size, types.length);
    ok(types.every((l) => l.endsWith(" gauge")), "no counters: the device's sums reset");
    ok(!/_total\b/.test(text));
  });
});

Deno.test("renderMetrics() leaves out what the device did not send as a number", async (t) => {
  await t.step("should omit empty, non-numeric and endless values", () => {
    const text = renderMetrics({
      states: {
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
      },
      lastSuccess: undefined,
      up: false,
    }, NOW);
    deepEqual([...samples(text).keys()], ['ess_up{serial="S1"}', 'ess_info{serial="S1"}']);
    equal(samples(text).get('ess_up{serial="S1"}'), 0);
  });
  await t.step("should omit a value that becomes endless in base units", () => {
    // 1e308 Wh is a finite number, but not in joules; nor is 1e308 kW in watts.
    const states = {
      common: { PV: { today_pv_generation_sum: "1e308", capacity: "6120" } },
      home: { statistics: { pv_total_power_01kW: 1e308, batt_conv_power_01kW: -1e308 } },
      systeminfo: { pms: { serialno: "S1" } },
    };
    const text = renderMetrics({ states, lastSuccess: undefined, up: true }, NOW);
    deepEqual([...samples(text).keys()], [
      'ess_up{serial="S1"}',
      'ess_info{serial="S1"}',
      'ess_pv_capacity_watts{serial="S1"}',
    ]);
    deepEqual(summaryValues(states), { pv_capacity_watts: 6120 });
  });
  await t.step("should send only ess_up until systeminfo names the serial", () => {
    const text = renderMetrics({
      states: { home: { statistics: { pcs_pv_total_power: "1200", load_power: "400" } } },
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
    const text = renderMetrics({
      states: { systeminfo: { pms: { serialno: 'ES"S\\1\n2', model: "x" } } },
      lastSuccess: undefined,
      up: true,
    }, NOW);
    match(text, /^ess_up\{serial="ES\\"S\\\\1\\n2"\} 1$/m);
  });
  await t.step("should read ESS Home 15's 0.1 kW powers", () => {
    const s = samples(
      renderMetrics({ states: fixtureStates("home15"), lastSuccess: NOW, up: true }, NOW),
    );
    // pv_total_power_01kW 3, batt_conv_power_01kW 2 while discharging.
    equal(s.get('ess_pv_power_watts{serial="ESSFIX015001"}'), 300);
    equal(s.get('ess_battery_power_watts{serial="ESSFIX015001"}'), 200);
  });
});

Deno.test({
  name: PROMTOOL
    ? "ess serve /metrics passes promtool check metrics"
    : "ess serve /metrics passes promtool check metrics (skipped: promtool is not installed)",
  ignore: PROMTOOL === undefined,
  async fn(t) {
    for (const family of ["classic", "new", "home15"]) {
      await t.step(`should pass with the ${family} fixtures`, async () => {
        const text = renderMetrics(
          { states: fixtureStates(family), lastSuccess: NOW, up: true },
          NOW + 1500,
        );
        deepEqual(await promtoolCheck(text), { code: 0, output: "" });
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
  name: PROMETHEUS
    ? "ess serve /metrics is scraped by a real Prometheus"
    : "ess serve /metrics is scraped by a real Prometheus (skipped: prometheus is not installed)",
  ignore: PROMETHEUS === undefined,
  async fn(t) {
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
          const until = Date.now() + 45_000;
          let result: { metric: Record<string, string>; value: [number, string] }[] = [];
          while (result.length === 0) {
            if (Date.now() > until) throw new Error("Prometheus never returned ess_up");
            await new Promise((resolve) => setTimeout(resolve, 250));
            result = await query("ess_up");
          }
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
