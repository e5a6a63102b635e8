import assert from "node:assert/strict";
import denoJson from "../deno.json" with { type: "json" };
import { type CliResult, runCli } from "./_cli.ts";
import { fixture, htmlPage, serveStub, stubDevice, type StubFirmware } from "./_stub.ts";

const PASSWORD = "a1b2c3d4e5f6";
const FINGERPRINT =
  "12:1E:4C:D4:82:57:E0:A4:90:9B:94:D3:4D:EF:54:98:A8:41:EA:65:A6:ED:C9:39:B0:A5:88:86:51:56:F6:55";
/** Where the tests write their config files. */
const HOME = Deno.makeTempDirSync({ prefix: "ess-cli-" });

/** Runs `ess` as a user would, with the binary's permissions, an empty home and no ESS_* variables. */
const ess = (args: string[], env: Record<string, string> = {}): Promise<CliResult> =>
  runCli(args, { env });

/** Asserts a failure with one line on stderr, no stack trace, no secret. */
function assertOneLineError(run: CliResult, code: number, pattern: RegExp): void {
  assert.equal(run.code, code, run.stderr);
  const lines = run.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, `expected one line, got:\n${run.stderr}`);
  assert.match(lines[0]!, /^ess: /);
  assert.match(lines[0]!, pattern);
  assert.ok(!run.stderr.includes(PASSWORD) && !run.stderr.includes("stub-key"), run.stderr);
  assert.equal(run.stdout, "");
}

async function withDevice(
  firmware: StubFirmware,
  fn: (host: string, stub: ReturnType<typeof stubDevice>) => Promise<void>,
): Promise<void> {
  const stub = stubDevice(firmware, PASSWORD);
  const server = serveStub(stub);
  try {
    await fn(server.host, stub);
  } finally {
    await server.close();
  }
}

Deno.test("ess without a command", async (t) => {
  await t.step("should list every command for --help", async () => {
    const run = await ess(["--help"]);
    assert.equal(run.code, 0);
    for (const name of ["data", "graph", "control", "password"]) {
      assert.match(run.stdout, new RegExp(`^  ${name} `, "m"));
    }
  });
  await t.step("should print the version from deno.json", async () => {
    const run = await ess(["--version"]);
    assert.equal(run.stdout, `ess ${denoJson.version}\n`);
  });
  await t.step("should refuse an unknown command with exit code 2", async () => {
    assertOneLineError(await ess(["frobnicate"]), 2, /unknown command "frobnicate"/);
  });
  await t.step("should print a command's help", async () => {
    const run = await ess(["graph", "--help"]);
    assert.equal(run.code, 0);
    assert.match(run.stdout, /^Usage: ess graph <pv\|load\|batt>/);
    assert.match(run.stdout, /--ess_host|--ess-host/);
  });
});

Deno.test("ess for pyess and esscli users", async (t) => {
  await t.step("should print usage on stderr and exit 2 without a command", async () => {
    const run = await ess([]);
    assert.equal(run.code, 2);
    assert.equal(run.stdout, "");
    assert.match(run.stderr, /^Usage: ess <command>/m);
  });
  await t.step("should map esscli's --action to the ess command, without running it", async () => {
    const actions = {
      get_data: "data",
      list_ess: "discover",
      get_password: "password",
      log_against_graphite: "graphite",
    };
    for (const [action, command] of Object.entries(actions)) {
      const run = await ess(["--action", action, "--password", PASSWORD]);
      assertOneLineError(run, 2, new RegExp(`--action ${action} is 'ess ${command}'`));
    }
    assertOneLineError(await ess(["--action=get_data"]), 2, /is 'ess data'/);
    assertOneLineError(await ess(["--password", "x", "--action"]), 2, /get_data → ess data/);
  });
  await t.step(
    "should offer no mDNS --name for the password (only the device's Wi-Fi)",
    async () => {
      const run = await ess(["password", "--help"]);
      assert.equal(run.code, 0);
      assert.doesNotMatch(run.stdout, /--name/);
      assert.match(run.stdout, /--host HOST\[:PORT\]/);
    },
  );
  await t.step(
    "should take decimal seconds only, and poll no faster than every second",
    async () => {
      for (const bad of ["1e-9", "0x10", "0.5", "-1", "Infinity", "10s", ""]) {
        const run = await ess(["mqtt", `--interval-seconds=${bad}`, "--host", "127.0.0.1"]);
        assertOneLineError(
          run,
          2,
          /--interval-seconds: interval-seconds must be a number of seconds/,
        );
      }
    },
  );
  await t.step("should read a relative --config from where 'deno task ess' was typed", async () => {
    const dir = await Deno.makeTempDir({ dir: HOME });
    const run = await ess(["data", "--config", "missing.conf"], { INIT_CWD: dir });
    assertOneLineError(run, 2, new RegExp(`${dir}/missing\\.conf: no such file`));
  });
});

for (const firmware of ["classic", "new"] as const) {
  Deno.test(`ess data on ${firmware} firmware`, async (t) => {
    await withDevice(firmware, async (host) => {
      await t.step("should print all five states as the device sent them", async () => {
        const run = await ess(["data", "--host", host, "--password", PASSWORD]);
        assert.equal(run.code, 0, run.stderr);
        assert.equal(run.stderr, "");
        const data = JSON.parse(run.stdout);
        assert.deepEqual(Object.keys(data), ["home", "common", "network", "systeminfo", "batt"]);
        for (const state of Object.keys(data)) {
          assert.deepEqual(data[state], fixture(`${firmware}/${state}.json`));
        }
        assert.ok(run.stdout.includes('"a_phase": "229.600000"'));
        assert.ok(run.stdout.includes('"month_co2_reduction_accum": ""'));
      });
      await t.step("should print flat lines and tables", async () => {
        const flat = await ess([
          "data",
          "--host",
          host,
          "--password",
          PASSWORD,
          "--only",
          "home",
          "--format",
          "flat",
        ]);
        assert.match(flat.stdout, /^home\/statistics\/load_power 488$/m);
        assert.match(flat.stdout, /^home\/direction\/is_grid_selling_ 1$/m);
        const table = await ess([
          "data",
          "--host",
          host,
          "--password",
          PASSWORD,
          "--only",
          "common",
          "--format",
          "table",
        ]);
        assert.match(table.stdout, /^STATE\s+FIELD\s+VALUE\s+MEANING$/m);
        assert.match(table.stdout, /^common\s+GRID\/a_phase\s+229\.600000$/m);
      });
      await t.step(
        "should take the password from ESS_PASSWORD and the host from a config file",
        async () => {
          const config = `${HOME}/ess-${firmware}.conf`;
          await Deno.writeTextFile(config, `# pyess style\ness_host = ${host}\n`);
          const run = await ess(["data", "--config", config, "--only", "batt"], {
            ESS_PASSWORD: PASSWORD,
          });
          assert.equal(run.code, 0, run.stderr);
          assert.deepEqual(JSON.parse(run.stdout).batt, fixture(`${firmware}/batt.json`));
        },
      );
    });
  });
}

Deno.test("ess graph", async (t) => {
  await withDevice("classic", async (host, stub) => {
    await t.step(
      "should send year_month and print a CSV header plus one line per row",
      async () => {
        const run = await ess([
          "graph",
          "load",
          "month",
          "2024-06-15",
          "--format",
          "csv",
          "--host",
          host,
          "--password",
          PASSWORD,
        ]);
        assert.equal(run.code, 0, run.stderr);
        const request = stub.requests.findLast((r) => r.path === "/v1/user/graph/load/month")!;
        assert.equal(request.body["year_month"], "202406");
        const lines = run.stdout.trimEnd().split("\n");
        const rows = fixture("graph/load_month.json")["loginfo"] as Record<string, string>[];
        assert.equal(
          lines[0],
          "time,consumption,purchase,self_suffi,total_consumption,total_purchase",
        );
        assert.equal(lines.length, 1 + rows.length);
        assert.equal(
          lines[1],
          `2024-06-01,${rows[0]!.consumption},${rows[0]!.purchase},${rows[0]!.self_suffi},${
            rows[0]!.total_consumption
          },${rows[0]!.total_purchase}`,
        );
      },
    );
    await t.step("should draw a chart of the day in quarter hours", async () => {
      const run = await ess([
        "graph",
        "pv",
        "day",
        "2024-06-15",
        "--format",
        "chart",
        "--host",
        host,
        "--password",
        PASSWORD,
      ]);
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stdout, /^pv generation \(Wh\) per 15 minutes$/m);
      assert.match(run.stdout, /^12:00 │█+/m);
      assert.equal(run.stdout.trimEnd().split("\n").length, 1 + 96);
    });
    await t.step("should refuse a date that does not exist with exit code 2", async () => {
      assertOneLineError(
        await ess(["graph", "pv", "day", "2024-02-30", "--host", host, "--password", PASSWORD]),
        2,
        /bad date "2024-02-30"/,
      );
      assertOneLineError(
        await ess(["graph", "sun", "day", "--host", host]),
        2,
        /unknown graph device "sun"/,
      );
    });
  });
});

Deno.test("ess control", async (t) => {
  for (const firmware of ["classic", "new"] as const) {
    await withDevice(firmware, async (host, stub) => {
      const lastPut = () => {
        const { auth_key: _, ...body } = stub.requests.findLast((r) => r.method === "PUT")!.body;
        return body;
      };
      await t.step(`should switch winter mode on with wintermode=on (${firmware})`, async () => {
        const run = await ess(["control", "winter", "on", "--host", host, "--password", PASSWORD]);
        assert.equal(run.code, 0, run.stderr);
        assert.deepEqual(lastPut(), { wintermode: "on" });
        assert.match(run.stdout, /^winter mode: (on|off) \(winter_setting="(on|off)"/);
      });
      await t.step(`should write fast charge in the device's own form (${firmware})`, async () => {
        const run = await ess([
          "control",
          "fastcharge",
          "on",
          "--host",
          host,
          "--password",
          PASSWORD,
        ]);
        assert.equal(run.code, 0, run.stderr);
        assert.deepEqual(lastPut(), { alg_setting: firmware === "new" ? "1" : "on" });
      });
      await t.step(`should stop the system (${firmware})`, async () => {
        const run = await ess(["control", "active", "off", "--host", host, "--password", PASSWORD]);
        assert.equal(run.code, 0, run.stderr);
        assert.deepEqual(lastPut(), { operation: "stop" });
        assert.match(run.stdout, /^active: /);
      });
      await t.step(`should take the MQTT control's words too (${firmware})`, async () => {
        const device = ["--host", host, "--password", PASSWORD];
        const start = await ess(["control", "active", "Start", ...device]);
        assert.equal(start.code, 0, start.stderr);
        assert.deepEqual(lastPut(), { operation: "start" });
        const strategy = await ess(["control", "strategy", "Battery_Care", ...device]);
        assert.equal(strategy.code, 0, strategy.stderr);
        assert.deepEqual(lastPut(), { alg_setting: firmware === "new" ? "0" : "off" });
      });
    });
  }
  await t.step("should refuse a value that is not on or off with exit code 2", async () => {
    assertOneLineError(
      await ess(["control", "winter", "maybe", "--host", "127.0.0.1"]),
      2,
      /"maybe" is not on or off/,
    );
    assertOneLineError(
      await ess(["control", "winter", "start", "--host", "127.0.0.1"]),
      2,
      /"start" is not on or off \(true\/false, on\/off, yes\/no, 1\/0 \(also y\/n, t\/f\)\)$/,
    );
    assertOneLineError(
      await ess(["control", "active", "go", "--host", "127.0.0.1"]),
      2,
      /"go" is not on or off \(.*, or start\/stop\)$/,
    );
    assertOneLineError(
      await ess(["control", "strategy", "turbo", "--host", "127.0.0.1"]),
      2,
      /unknown strategy "turbo": one of battery-care, fast-charge, weather-forecast$/,
    );
    assertOneLineError(
      await ess(["control", "backup", "on", "--soc", "120", "--host", "127.0.0.1"]),
      2,
      /soc must be a whole number from 0 to 100/,
    );
  });
});

Deno.test("ess password reads the password on the device's Wi-Fi", async () => {
  await withDevice("classic", async (host) => {
    const run = await ess(["password", "--host", host]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, `${PASSWORD}\n`);
  });
});

Deno.test("ess data errors end in one line and the right exit code", async (t) => {
  await withDevice("classic", async (host, stub) => {
    await t.step("wrong password: exit 1 with the MAC hint", async () => {
      assertOneLineError(
        await ess(["data", "--host", host, "--password", "0123456789ab"]),
        1,
        /Cannot log in to 127\.0\.0\.1:\d+: wrong password \(the password is the device's wired LAN MAC/,
      );
    });
    await t.step("a single nginx 502 page: tried once more, exit 0", async () => {
      stub.queue("/v1/user/essinfo/home", () => htmlPage(502, "Bad Gateway"));
      const run = await ess(["data", "--host", host, "--password", PASSWORD, "--only", "home"]);
      assert.equal(run.code, 0, run.stderr);
      assert.deepEqual(JSON.parse(run.stdout).home, fixture("classic/home.json"));
    });
    await t.step(
      "two nginx 502 pages: exit 1 with status, first bytes, may be transient",
      async () => {
        stub.queue("/v1/user/essinfo/home", () => htmlPage(502, "Bad Gateway"));
        stub.queue("/v1/user/essinfo/home", () => htmlPage(502, "Bad Gateway"));
        assertOneLineError(
          await ess(["data", "--host", host, "--password", PASSWORD]),
          1,
          /Reading home on 127\.0\.0\.1:\d+ gave HTTP 502 with no JSON: "<html> <head><title>502 Bad Gateway.*this may be transient/,
        );
      },
    );
    await t.step(
      "a pinned fingerprint that does not match: exit 1 naming the one seen",
      async () => {
        assertOneLineError(
          await ess([
            "data",
            "--host",
            host,
            "--password",
            PASSWORD,
            "--fingerprint",
            "ab".repeat(32),
          ]),
          1,
          new RegExp(
            `Refusing 127\\.0\\.0\\.1:\\d+: its certificate has SHA-256 fingerprint ${FINGERPRINT}`,
          ),
        );
      },
    );
    await t.step("--show-fingerprint prints what to pin", async () => {
      const run = await ess(["data", "--host", host, "--show-fingerprint"]);
      assert.equal(run.stdout, `${FINGERPRINT}\n`);
      const pinned = await ess([
        "data",
        "--host",
        host,
        "--password",
        PASSWORD,
        "--only",
        "network",
        "--fingerprint",
        FINGERPRINT,
      ]);
      assert.equal(pinned.code, 0, pinned.stderr);
    });
    await t.step("--log-level debug may show the stack", async () => {
      const run = await ess([
        "data",
        "--host",
        host,
        "--password",
        "0123456789ab",
        "--log-level",
        "debug",
      ]);
      assert.equal(run.code, 1);
      assert.match(run.stderr, /WrongPasswordError: Cannot log in/);
      assert.ok(!run.stderr.includes("0123456789ab"));
    });
  });
  await t.step("device unreachable: exit 1", async () => {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (listener.addr as Deno.NetAddr).port;
    listener.close();
    assertOneLineError(
      await ess(["data", "--host", `127.0.0.1:${port}`, "--password", PASSWORD]),
      1,
      /Cannot reach 127\.0\.0\.1:\d+: connection refused/,
    );
  });
  await t.step("a device that never answers: exit 1 after --timeout", async () => {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (listener.addr as Deno.NetAddr).port;
    const held: Deno.Conn[] = [];
    const accepting = (async () => {
      for await (const conn of listener) held.push(conn);
    })();
    try {
      assertOneLineError(
        await ess([
          "data",
          "--host",
          `127.0.0.1:${port}`,
          "--password",
          PASSWORD,
          "--timeout",
          "0.5",
        ]),
        1,
        /127\.0\.0\.1:\d+.* within 0\.5 s/,
      );
    } finally {
      listener.close();
      held.forEach((c) => c.close());
      await accepting.catch(() => {});
    }
  });
  await t.step("usage errors: exit 2", async () => {
    assertOneLineError(await ess(["data", "--bogus"]), 2, /ess data: unknown option --bogus/);
    assertOneLineError(
      await ess(["data", "--host", "127.0.0.1", "--password", "x", "--only", "weather"]),
      2,
      /unknown state "weather"/,
    );
    assertOneLineError(
      await ess(["data", "--host", "127.0.0.1:70000", "--password", "x"]),
      2,
      /bad port/,
    );
    assertOneLineError(await ess(["data", "--host", "127.0.0.1"]), 2, /no device password/);
    assertOneLineError(
      await ess(["data", "--format", "xml", "--host", "127.0.0.1"]),
      2,
      /unknown format "xml"/,
    );
  });
  await t.step("config file errors name the file and line", async () => {
    const config = `${HOME}/broken.conf`;
    await Deno.writeTextFile(config, "ess_host = 127.0.0.1\n= oops\n");
    assertOneLineError(
      await ess(["data", "--config", config]),
      2,
      new RegExp(`${config}:2: cannot read this line`),
    );
    assertOneLineError(
      await ess(["data", "--config", `${HOME}/missing.conf`]),
      2,
      /Cannot read config file .*missing\.conf: no such file/,
    );
  });
});

Deno.test("every command without arguments refuses a stray one in one line", async () => {
  const commands = ["password", "discover", "data", "mqtt", "hass", "graphite", "simulate", "demo"];
  const runs = await Promise.all(commands.map((name) => ess([name, "stray"])));
  runs.forEach((run, i) => {
    assertOneLineError(
      run,
      2,
      new RegExp(`^ess: ess ${commands[i]} takes no arguments \\(got "stray"\\)$`),
    );
  });
});
