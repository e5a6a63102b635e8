/**
 * The CLI against a hostile device and hostile inputs, as a subprocess with the binary's flags
 * (run-flags.txt caps the V8 heap at 64 MB, so these runs prove the heap no longer dies).
 */
import assert from "node:assert/strict";
import { type CliResult, runCli, spawnCli } from "./_cli.ts";
import type { StateName } from "../lib/device/states.ts";
import { startAedes, watch } from "./_broker.ts";
import {
  deeplyNested,
  endlessInterim,
  HOSTILE_PASSWORD,
  type HostileDevice,
  type HostileRequest,
  json,
  manyKeys,
  readsHome,
  reset,
  startHostileDevice,
  text,
  withHostileDevice,
} from "./_hostile_device.ts";

const HOME = Deno.makeTempDirSync({ prefix: "ess-hardening-" });

/** Asserts a failure with exactly one line on stderr, nothing on stdout, no secret. */
function assertOneLine(run: CliResult, code: number, pattern: RegExp, secrets: string[] = []) {
  assert.equal(run.code, code, run.stderr);
  const lines = run.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, `expected one line, got:\n${run.stderr}`);
  assert.match(lines[0]!, /^ess: /);
  assert.match(lines[0]!, pattern);
  for (const secret of [HOSTILE_PASSWORD, ...secrets]) {
    assert.ok(!run.stderr.includes(secret), run.stderr);
  }
  assert.equal(run.stdout, "");
}

/** Runs `fn` against a hostile device, with the options that point `ess` at it and no config. */
function withHostile(
  misbehave: (request: HostileRequest) => ReturnType<HostileDevice["misbehave"]>,
  fn: (device: HostileDevice, args: string[]) => Promise<void>,
): Promise<void> {
  return withHostileDevice(
    misbehave,
    (device) => fn(device, ["--config", "/dev/null", "--host", device.host]),
  );
}

const password = ["--password", HOSTILE_PASSWORD];

Deno.test("ess data against answers that used to kill the process", async (t) => {
  const cases: [string, () => ReturnType<HostileDevice["misbehave"]>, RegExp][] = [
    [
      "a 3.6 MB answer with 200,000 keys",
      () => text(manyKeys(200_000)),
      /Refusing the answer from 127\.0\.0\.1:\d+: an answer of \d+ bytes is too large \(at most 1 MiB\)/,
    ],
    [
      "60,000 keys in under 1 MiB",
      () => text(manyKeys(60_000)),
      /Reading home on 127\.0\.0\.1:\d+: refusing the answer, it holds more than 10000 values/,
    ],
    [
      "an answer nested 3,000 levels deep",
      () => text(deeplyNested(3000)),
      /Reading home on 127\.0\.0\.1:\d+: refusing the answer, it is nested more than 32 levels/,
    ],
    [
      "endless 100 Continue answers",
      () => endlessInterim(),
      /more than 4 interim \(1xx\) answers/,
    ],
  ];
  for (const [what, behaviour, message] of cases) {
    await t.step(`should exit 1 with one line on ${what}`, async () => {
      await withHostile((r) => readsHome(r) ? behaviour() : undefined, async (_device, args) => {
        assertOneLine(await runCli(["data", ...args, ...password]), 1, message);
      });
    });
  }
});

Deno.test("ess data quotes a malformed answer head escaped, short and redacted", async (t) => {
  const heads: [string, string, RegExp][] = [
    [
      "a header name with a terminal escape and a line feed",
      `X-\x1b[2J\n${"y".repeat(60_000)}: 1`,
      /not an HTTP answer \(malformed header line "X-\?\[2J y{20,}…"\)$/,
    ],
    [
      "the password in a header name",
      `X-${HOSTILE_PASSWORD} Echo: 1`,
      /not an HTTP answer \(malformed header line "X-\*\*\* Echo: 1"\)$/,
    ],
    ["a NUL in a header value", "X-Echo: a\0b", /malformed header line "X-Echo: a\?b"\)$/],
  ];
  for (const [what, header, message] of heads) {
    await t.step(`should exit 1 with one line on ${what}`, async () => {
      const wire = `HTTP/1.1 200 OK\r\ncontent-length: 2\r\n${header}\r\n\r\n{}`;
      await withHostile(
        (r) => readsHome(r) ? (socket) => void socket.write(wire, "latin1") : undefined,
        async (_device, args) => {
          const run = await runCli(["data", ...args, ...password, "--only", "home"]);
          assertOneLine(run, 1, message);
          for (const raw of ["\0", "\x1b"]) {
            assert.ok(!run.stderr.includes(raw), JSON.stringify(run.stderr));
          }
          assert.ok(run.stderr.length < 300, `${run.stderr.length} characters`);
        },
      );
    });
  }
});

Deno.test("a device's control characters reach the terminal as ?", async (t) => {
  const steer = "\x1b[2J\u202e";
  const home = { statistics: { [`load${steer}`]: `1\n${steer}` } };
  const batt = { winter_setting: steer, winter_status: "on" };
  const graph = {
    db: "success",
    loginfo: [{ time: `t${steer}`, generation: "7", feed_in: `1${steer}` }],
  };
  const misbehave = (r: HostileRequest) =>
    readsHome(r)
      ? json(home)
      : r.method === "POST" && r.path === "/v1/user/setting/batt"
      ? json(batt)
      : r.path.startsWith("/v1/user/graph/")
      ? json(graph)
      : undefined;
  const runs: [string, string[], string][] = [
    [
      "ess data --format table",
      ["data", "--only", "home", "--format", "table"],
      "home   statistics/load?[2J?  1??[2J?\n",
    ],
    [
      "ess data --format flat",
      ["data", "--only", "home", "--format", "flat"],
      "home/statistics/load?[2J? 1??[2J?\n",
    ],
    [
      "ess graph --format table",
      ["graph", "pv", "day", "2024-06-15"],
      "\nt?[2J?  7           1?[2J?\n",
    ],
    [
      "ess graph --format chart",
      ["graph", "pv", "day", "2024-06-15", "--format", "chart"],
      "\nt?[2J? │" + "█".repeat(50) + " 7\n",
    ],
    [
      "ess control winter on",
      ["control", "winter", "on"],
      'winter mode: unknown (winter_setting="\\u001b[2J?" winter_status="on")\n',
    ],
  ];
  for (const [what, command, tail] of runs) {
    await t.step(`should show them in ${what}`, async () => {
      await withHostile(misbehave, async (_device, args) => {
        const run = await runCli([...command, ...args, ...password]);
        assert.equal(run.code, 0, run.stderr);
        assert.ok(run.stdout.endsWith(tail), JSON.stringify(run.stdout));
        assert.ok(!run.stdout.includes("\x1b"), JSON.stringify(run.stdout));
      });
    });
  }
});

Deno.test("ess data says when the device looks like an ESS Home 15", async () => {
  const home15 = JSON.parse(
    await Deno.readTextFile(new URL("../fixtures/home15/home.json", import.meta.url)),
  );
  const device = await startHostileDevice({ state: () => home15 });
  try {
    const run = await runCli([
      "data",
      "--config",
      "/dev/null",
      "--host",
      device.host,
      ...password,
      "--only",
      "home",
    ]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stderr, `ess: info: ${device.host} looks like an ESS Home 15\n`);
    assert.deepEqual(JSON.parse(run.stdout), { home: home15 });
  } finally {
    await device.close();
  }
});

Deno.test("ess data and ess graph print tables of a device that sends a 500 kB key", async (t) => {
  // Within every answer limit, but padding each of the other rows to this key's length once
  // took the table past the 64 MB heap: V8 aborted the process (exit 133) with no line at all.
  const longKey = "k".repeat(500_000);
  const home: Record<string, string> = { [longKey]: "1" };
  for (let i = 0; i < 400; i++) home[`v${i}`] = String(i);
  const rows = Array.from({ length: 96 }, (_, i) => ({
    time: `20240615${String(i >> 2).padStart(2, "0")}${String((i % 4) * 15).padStart(2, "0")}00`,
    generation: String(i),
  }));
  const graph = { db: "success", loginfo: [{ time: longKey, [longKey]: "1" }, ...rows] };
  const misbehave = (r: HostileRequest) =>
    readsHome(r) ? json(home) : r.path.startsWith("/v1/user/graph/") ? json(graph) : undefined;
  const runs: [string, string[], RegExp][] = [
    [
      "ess data --format table",
      ["data", "--only", "home", "--format", "table"],
      /^home +v399 +399$/m,
    ],
    ["ess graph --format table", ["graph", "pv", "day", "2024-06-15"], /^23:45 +95$/m],
    [
      "ess graph --format chart",
      ["graph", "pv", "day", "2024-06-15", "--format", "chart"],
      /^23:45 +│█+ 95$/m,
    ],
  ];
  for (const [what, command, line] of runs) {
    await t.step(`should print ${what}, the long key sticking out of the alignment`, async () => {
      await withHostile(misbehave, async (_device, args) => {
        const run = await runCli([...command, ...args, ...password]);
        assert.equal(run.code, 0, run.stderr.slice(0, 2000));
        assert.match(run.stdout, line);
        assert.ok(run.stdout.includes(longKey));
        // The graph carries the key twice, as a time and as a field; padded, it was in every row.
        assert.ok(run.stdout.length < 3 * longKey.length, `${run.stdout.length} characters`);
      });
    });
  }
});

Deno.test("ess graph of 5,000 rows with a field of their own each", async (t) => {
  // 10,000 values, within every answer limit; as a table of 5,000 rows by 5,000 columns it once
  // took the process past the 64 MB heap (exit 133, no line at all).
  const rows = Array.from({ length: 4999 }, (_, i) => ({ time: "20240615000000", [`k${i}`]: "1" }));
  const misbehave = (r: HostileRequest) =>
    r.path.startsWith("/v1/user/graph/") ? json({ db: "success", loginfo: rows }) : undefined;
  const graph = ["graph", "pv", "day", "2024-06-15"];
  for (const format of ["table", "csv", "chart"]) {
    await t.step(`should refuse --format ${format} with one line`, async () => {
      await withHostile(misbehave, async (_device, args) => {
        assertOneLine(
          await runCli([...graph, "--format", format, ...args, ...password]),
          1,
          /the pv graph has 4999 fields, more than ess puts in a \w+ \(a real one has 5\): --format json prints it/,
        );
      });
    });
  }
  await t.step("should print it with --format json", async () => {
    await withHostile(misbehave, async (_device, args) => {
      const run = await runCli([...graph, "--format", "json", ...args, ...password]);
      assert.equal(run.code, 0, run.stderr.slice(0, 2000));
      assert.equal(JSON.parse(run.stdout).loginfo.length, rows.length);
    });
  });
});

Deno.test("one-shot commands try a transient failure once more", async (t) => {
  await t.step("should print the graph after a reset connection", async () => {
    // The login is the first request of a connection: the transport cannot take the reset for
    // a keep-alive the device let lapse, so only the retry can save the command.
    const login = (r: HostileRequest) => r.path === "/v1/user/setting/login";
    await withHostile(
      (r) => login(r) && r.index === 0 ? reset() : undefined,
      async (device, args) => {
        const run = await runCli([
          "graph",
          "pv",
          "day",
          "2024-06-15",
          "--format",
          "json",
          ...args,
          ...password,
        ]);
        assert.equal(run.code, 0, run.stderr);
        assert.deepEqual(JSON.parse(run.stdout), { db: "success", loginfo: [] });
        assert.equal(device.requests.filter(login).length, 2);
      },
    );
  });
});

Deno.test("secrets a device echoes never reach the terminal", async (t) => {
  await t.step(
    "should redact the password a login echoes, even with --log-level debug",
    async () => {
      await withHostile(
        (r) =>
          r.path === "/v1/user/setting/login"
            ? json({ status: `oops ${String(r.body?.["password"])}` }, 500)
            : undefined,
        async (_device, args) => {
          const run = await runCli(["data", ...args, ...password, "--log-level", "debug"]);
          assert.equal(run.code, 1, run.stderr);
          assert.match(
            run.stderr,
            /Login on 127\.0\.0\.1:\d+ failed: HTTP 500, status "oops \*\*\*"/,
          );
          assert.ok(!run.stderr.includes(HOSTILE_PASSWORD), run.stderr);
        },
      );
    },
  );
  await t.step("should redact an auth key echoed in a refused control", async () => {
    await withHostile(
      (r) =>
        r.method === "PUT" && r.path === "/v1/user/setting/batt"
          ? json({ status: `rejected ${String(r.body?.["auth_key"])}` })
          : undefined,
      async (device, args) => {
        const run = await runCli(["control", "winter", "on", ...args, ...password]);
        assertOneLine(
          run,
          1,
          /Switching winter mode on on 127\.0\.0\.1:\d+ was refused: the device answered status "rejected \*\*\*"$/,
          [device.keys[0]!.slice(0, 8)],
        );
      },
    );
  });
});

Deno.test("ess control reads backup settings back in the firmware's own spelling", async (t) => {
  // Before the write, and after it: backup_status alone (docs/protocol.md#controls), numbers as ESS Home 15.
  const batt = (_: StateName, count: number) => ({
    winter_setting: "off",
    backup_status: count === 0 ? "off" : "on",
    backup_soc: "30",
    auto_charge: count === 0 ? 0 : 1,
  });
  const cases: [string, string[], string][] = [
    [
      "backup on",
      ["backup", "on", "--soc", "30"],
      'backup mode: on (backup_status="on" backup_soc="30")',
    ],
    ["gridcharge on", ["gridcharge", "on"], "grid charging: on (auto_charge=1)"],
  ];
  for (const [what, command, line] of cases) {
    await t.step(`should print what ${what} left on the device`, async () => {
      const device = await startHostileDevice({ state: batt });
      try {
        const run = await runCli([
          "control",
          ...command,
          "--config",
          "/dev/null",
          "--host",
          device.host,
          ...password,
        ]);
        assert.equal(run.code, 0, run.stderr);
        assert.equal(run.stdout, `${line}\n`);
      } finally {
        await device.close();
      }
    });
  }
});

Deno.test("ess control of a feature the firmware lacks", async (t) => {
  for (const target of ["backup", "gridcharge"]) {
    await t.step(
      `should refuse ${target} on firmware without backup mode, sending nothing`,
      async () => {
        await withHostile(() => undefined, async (device, args) => {
          assertOneLine(
            await runCli(["control", target, "on", ...args, ...password]),
            1,
            /on 127\.0\.0\.1:\d+: this firmware has no backup mode/,
          );
          assert.deepEqual(
            device.requests.filter((r) => r.method === "PUT" && r.path.endsWith("/batt")),
            [],
          );
        });
      },
    );
  }
});

Deno.test("--host values that are no host are usage errors", async () => {
  const values = ["[::1", "%00", "a b", "x".repeat(300), "[fe80::1%eth0]", "999.1.1.1"];
  const runs = await Promise.all(
    values.map((host) => runCli(["data", "--config", "/dev/null", "--host", host, ...password])),
  );
  for (const run of runs) {
    assertOneLine(run, 2, /host .*(is not a (valid )?host name or address|is too long)/);
  }
});

Deno.test("a host name that does not resolve is one line, exit 1", async () => {
  assertOneLine(
    await runCli(["data", "--config", "/dev/null", "--host", "nonexistent.invalid", ...password]),
    1,
    /Cannot reach nonexistent\.invalid: the name nonexistent\.invalid cannot be resolved/,
  );
});

Deno.test("--config and --mqtt-ca refuse what is not a small regular file at once", async (t) => {
  const fifo = `${HOME}/fifo.conf`;
  const mkfifo = await new Deno.Command("mkfifo", { args: [fifo] }).output().catch(() => undefined);
  const big = `${HOME}/big.conf`;
  await Deno.writeTextFile(big, `# ${"x".repeat(2 * 1024 * 1024)}\n`);
  const cases: [string, string, RegExp, boolean][] = [
    ["/dev/zero", "/dev/zero", /it is a device, not a regular file/, true],
    ["a directory", HOME, /it is a directory, not a regular file/, true],
    ["a 2 MiB file", big, /it is \d+ bytes; a config file may have at most 1048576/, true],
    [
      mkfifo?.success ? "a FIFO" : "a FIFO (skipped: mkfifo is not available)",
      fifo,
      /it is a named pipe \(FIFO\), not a regular file/,
      mkfifo?.success ?? false,
    ],
  ];
  for (const [what, path, why, possible] of cases) {
    await t.step({
      name: `should refuse ${what} with exit 2`,
      ignore: !possible,
      fn: async () => {
        const run = await runCli(["data", "--config", path, "--host", "127.0.0.1", ...password]);
        assertOneLine(run, 2, new RegExp(`Cannot read config file ${path}: ${why.source}`));
      },
    });
    // The CA file once went to Deno.readTextFile(): /dev/zero grew until the machine ran out
    // of memory, a FIFO blocked the start for ever.
    await t.step({
      name: `should refuse ${what} as --mqtt-ca with exit 2`,
      ignore: !possible,
      fn: async () => {
        const run = await runCli(["mqtt", "--config", "/dev/null", "--mqtt-ca", path]);
        const limit = why.source.replace("a config file", "a CA file");
        assertOneLine(run, 2, new RegExp(`--mqtt-ca ${path}: cannot read it \\(${limit}\\)$`));
      },
    });
  }
  await t.step("should name the absolute path of a relative one", async () => {
    const run = await runCli(["data", "--config", "fixtures", "--host", "127.0.0.1"]);
    assertOneLine(run, 2, /Cannot read config file \/.*\/fixtures: it is a directory/);
  });
});

Deno.test("ess mqtt stays up when the device sends what used to kill it", async () => {
  const device = await startHostileDevice({
    misbehave: (r) => readsHome(r) ? text(deeplyNested(3000)) : undefined,
  });
  const broker = await startAedes();
  const watcher = await watch(broker.url);
  const child = spawnCli([
    "mqtt",
    "--config",
    "/dev/null",
    "--host",
    device.host,
    ...password,
    "--mqtt-server",
    broker.url,
    "--interval-seconds",
    "1",
    "--no-hass",
  ]);
  const output = child.output();
  try {
    // Failed polls back off (1 s, then about 2 s): the second poll shows it survived the first.
    await watcher.until(() => device.requests.filter(readsHome).length >= 2, "two polls");
  } finally {
    child.kill("SIGTERM");
    const { code, stderr } = await output;
    const log = new TextDecoder().decode(stderr);
    await watcher.close();
    await broker.close();
    await device.close();
    assert.equal(code, 0, log);
    assert.match(log, /nested more than 32 levels/);
    assert.ok(!log.includes("Maximum call stack"), log);
  }
});

Deno.test("an error that quotes an option value never shows a password", async () => {
  const run = await runCli(["data", "--config", "/dev/null", "--host", "s3cr3t-pw x"], {
    env: { ESS_PASSWORD: "s3cr3t-pw" },
  });
  assertOneLine(run, 2, /host "\*\*\* x" is not a host name or address/, ["s3cr3t-pw"]);
});
