/**
 * ess's own CLI, run as a process with the binary's permissions, against the simulator on both
 * firmware settings; and `ess simulate` / `ess demo` themselves.
 */
import assert from "node:assert/strict";
import {
  DEFAULT_PASSWORD,
  type SimRequest,
  type Simulator,
  type SimulatorOptions,
  startSimulator,
} from "../lib/sim/simulator.ts";
import { type CliResult, runCli, spawnCli } from "./_cli.ts";
import { readUntil, withDeadline } from "./_wait.ts";

async function withSim(options: SimulatorOptions, fn: (sim: Simulator) => Promise<void>) {
  const sim = await startSimulator(options);
  try {
    await fn(sim);
  } finally {
    await sim.close();
  }
}

const device = (sim: Simulator) => ["--host", sim.host, "--password", sim.password];

function assertOk(result: CliResult): void {
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stderr, "");
}

/** A failure is exactly one `ess: ` line on stderr, nothing on stdout. */
function assertOneLine(result: CliResult, code: number): string {
  assert.equal(result.code, code, result.stderr);
  assert.equal(result.stdout, "");
  assert.match(result.stderr, /^ess: [^\n]+\n$/, result.stderr);
  return result.stderr;
}

for (const firmware of ["classic", "new"] as const) {
  Deno.test(`ess CLI against the simulator (${firmware} firmware)`, async (t) => {
    await withSim({ firmware, password: "0c1d2e3f4a5b" }, async (sim) => {
      await t.step("should print all five states as JSON", async () => {
        const result = await runCli(["data", ...device(sim)]);
        assertOk(result);
        const data = JSON.parse(result.stdout);
        assert.deepEqual(Object.keys(data), ["home", "common", "network", "systeminfo", "batt"]);
        assert.match(data.home.statistics.load_power, /^\d+$/);
        const logins = sim.requests.filter((r) => r.path.endsWith("/login"));
        assert.equal(logins.at(-1)?.status, 200);
      });

      await t.step("should print a table and flat lines", async () => {
        const table = await runCli(["data", ...device(sim), "--format", "table"]);
        assertOk(table);
        assert.match(table.stdout, /^STATE +FIELD +VALUE +MEANING\n/);
        assert.match(table.stdout, /\ncommon +GRID\/a_phase +\d{3}\.\d{6}\n/);
        const flat = await runCli(["data", ...device(sim), "--format", "flat", "--only", "home"]);
        assertOk(flat);
        assert.match(flat.stdout, /^home\/statistics\/pcs_pv_total_power \d+\n/);
        assert.match(flat.stdout, /\nhome\/operation\/status start\n/);
      });

      await t.step("should print a graph as CSV with the month it asked for", async () => {
        const result = await runCli([
          "graph",
          "load",
          "month",
          "2024-06-15",
          ...device(sim),
          "--format",
          "csv",
        ]);
        assertOk(result);
        const lines = result.stdout.trimEnd().split("\n");
        assert.equal(
          lines[0],
          "time,consumption,purchase,self_suffi,total_consumption,total_purchase",
        );
        assert.equal(lines.length, 1 + 30);
        assert.match(lines[1]!, /^2024-06-01,\d+,\d+,[\d.]+,\d+,\d+$/);
        const request = sim.requests.findLast((r) => r.path === "/v1/user/graph/load/month");
        assert.equal((request?.body as Record<string, string>)["year_month"], "202406");
        const day = await runCli([
          "graph",
          "pv",
          "day",
          "2024-06-15",
          ...device(sim),
          "--format",
          "csv",
        ]);
        assertOk(day);
        assert.equal(day.stdout.trimEnd().split("\n").length, 1 + 96);
      });

      await t.step("should switch winter mode on", async () => {
        const result = await runCli(["control", "winter", "on", ...device(sim)]);
        assertOk(result);
        assert.match(result.stdout, /^winter mode: on /);
        assert.equal(sim.device.winterMode, true);
        const put = sim.requests.findLast((r) =>
          r.method === "PUT" && r.path === "/v1/user/setting/batt"
        );
        assert.equal((put?.body as Record<string, string>)["wintermode"], "on");
      });

      await t.step("should stop the system", async () => {
        const result = await runCli(["control", "active", "off", ...device(sim)]);
        assertOk(result);
        assert.match(result.stdout, /^active: off /);
        assert.equal(sim.device.operation, "stop");
        assert.equal(sim.device.flows.pv, 0);
        assertOk(await runCli(["control", "active", "on", ...device(sim)]));
        assert.equal(sim.device.operation, "start");
      });

      await t.step("should set the charge strategy where the firmware has it", async () => {
        const result = await runCli(["control", "strategy", "weather-forecast", ...device(sim)]);
        if (firmware === "new") {
          assertOk(result);
          assert.match(result.stdout, /^charge strategy: weather-forecast \(alg_setting="2"\)/);
          assert.equal(sim.device.algSetting, "2");
        } else {
          assert.match(assertOneLine(result, 1), /only has fast charge on\/off/);
          assert.equal(sim.device.algSetting, "off");
        }
        const fast = await runCli(["control", "fastcharge", "on", ...device(sim)]);
        assertOk(fast);
        assert.equal(sim.device.algSetting, firmware === "new" ? "1" : "on");
      });

      await t.step("should say wrong password in one line, with the MAC hint", async () => {
        const wrong = "ffeeddccbbaa";
        const result = await runCli(["data", "--host", sim.host, "--password", wrong]);
        const line = assertOneLine(result, 1);
        assert.match(line, /wrong password/);
        assert.match(line, /MAC/);
        assert.ok(!line.includes(wrong) && !line.includes(sim.password), line);
      });
    });
  });
}

Deno.test("ess CLI against a failing simulator", async (t) => {
  await t.step("should report a 502 page in one line with status and first bytes", async () => {
    await withSim({ errorRate: 1 }, async (sim) => {
      const line = assertOneLine(await runCli(["data", ...device(sim)]), 1);
      assert.match(line, /HTTP 502/);
      assert.match(line, /<html> <head><title>502 Bad Gateway/);
    });
  });

  await t.step("should log in again by itself when the key expires", async () => {
    // Ten simulated seconds pass with every request; keys live 25 s, so they expire mid-run.
    const seen: { requests: SimRequest[] } = { requests: [] };
    const base = new Date("2026-06-17T10:00:00Z").getTime();
    const now = () => new Date(base + seen.requests.length * 10_000);
    await withSim({ now, keyLifetimeSeconds: 25 }, async (sim) => {
      seen.requests = sim.requests;
      const result = await runCli(["data", ...device(sim)]);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(Object.keys(JSON.parse(result.stdout)).length, 5);
      assert.equal(result.stderr, "");
      const logins = sim.requests.filter((r) => r.path === "/v1/user/setting/login");
      assert.ok(logins.length >= 2, `${logins.length} logins`);
      assert.ok(sim.requests.some((r) => r.status === 405));
    });
  });

  await t.step("should report a refused connection in one line", async () => {
    await withSim({}, async (sim) => {
      await sim.refuseConnections(60_000);
      const line = assertOneLine(await runCli(["data", ...device(sim)]), 1);
      assert.match(
        line,
        new RegExp(`Cannot reach ${sim.host.replaceAll(".", "\\.")}: connection refused`),
      );
    });
  });
});

Deno.test("ess simulate", async (t) => {
  await t.step("should print where it listens, serve, and stop cleanly on SIGTERM", async () => {
    const child = spawnCli([
      "simulate",
      "--port",
      "0",
      "--firmware",
      "new",
      "--password",
      "0f1e2d3c4b5a",
    ]);
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    const drain = async () => {
      let text = "";
      for (let r = await reader.read(); !r.done; r = await reader.read()) text += r.value;
      return text;
    };
    let after: [string, string, Deno.CommandStatus];
    try {
      const banner = await readUntil(reader, (text) => /\nfingerprint: .+\n/.test(text), {
        what: "the banner's fingerprint line",
      });
      const host = /^host: +(\S+)$/m.exec(banner)?.[1];
      assert.match(host ?? "", /^127\.0\.0\.1:\d+$/, banner);
      assert.doesNotMatch(host!, /:0$/);
      assert.match(banner, /^password: +0f1e2d3c4b5a$/m);
      assert.match(banner, /^fingerprint: +([0-9A-F]{2}:){31}[0-9A-F]{2}$/m);
      assert.match(banner, /new firmware/);
      const data = await runCli([
        "data",
        "--only",
        "batt",
        "--host",
        host!,
        "--password",
        "0f1e2d3c4b5a",
      ]);
      assertOk(data);
      assert.equal(JSON.parse(data.stdout).batt.alg_setting, "0");
    } finally {
      child.kill("SIGTERM");
      after = await withDeadline(
        Promise.all([drain(), new Response(child.stderr).text(), child.status]),
        { what: "the simulator to stop on SIGTERM" },
      );
    }
    const [rest, stderr, status] = after;
    assert.equal(status.code, 0, stderr);
    assert.equal(rest, "");
    assert.equal(stderr, "ess: SIGTERM: stopping the simulator\n");
  });

  await t.step("should refuse bad option values with exit code 2", async () => {
    const cases = [
      ["--port", "70000"],
      ["--port", "http"],
      ["--firmware", "beta"],
      ["--error-rate", "1.5"],
      ["--latency", "-5"],
      ["--key-lifetime", "0"],
      ["--password", ""],
      ["--host", "a host"],
      ["extra"],
    ];
    const results = await Promise.all(cases.map((args) => runCli(["simulate", ...args])));
    results.forEach((result, i) => {
      assert.equal(result.code, 2, `${cases[i]!.join(" ")}: ${result.stderr}`);
      assert.match(result.stderr, /^ess: [^\n]+\n$/);
    });
  });

  await t.step("should name its default password in its help", async () => {
    const result = await runCli(["simulate", "--help"]);
    assertOk(result);
    assert.ok(result.stdout.includes(DEFAULT_PASSWORD));
  });
});

Deno.test("ess demo runs ess against the simulator and exits 0", async () => {
  const result = await runCli(["demo"]);
  assertOk(result);
  assert.match(result.stdout, /=== 1\. ess data --format table/);
  assert.match(result.stdout, /\nhome +statistics\/load_power +\d+\n/);
  assert.match(result.stdout, /=== 2\. ess graph pv day --format chart/);
  assert.match(result.stdout, /\n12:00 │/);
  assert.match(result.stdout, /=== 3\. ess mqtt: the bridge publishes pyess's topics/);
  assert.match(result.stdout, /\n {2}ess\/home\/statistics\/load_power \d+ {3}\(retained\)\n/);
  assert.match(result.stdout, /\n {2}ess\/common\/BATT\/winter_setting on {3}\(retained\)\n/);
  assert.match(result.stdout, /\nwinter mode on the device is now on\n/);
});
