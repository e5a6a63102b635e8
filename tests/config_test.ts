import assert from "node:assert/strict";
import { loadConfigFile, MAX_CONFIG_BYTES, parseConfig } from "../lib/config.ts";
import { ConfigError, UsageError } from "../lib/errors.ts";
import { exceededLimit, flatten } from "../lib/device/flatten.ts";
import {
  type Command,
  DEVICE_OPTIONS,
  GENERAL_OPTIONS,
  helpText,
  type Io,
  parseCommand,
} from "../commands/_cli.ts";
import { parseHostPort } from "../commands/_device.ts";
import { rejectsWith } from "./_assert.ts";
import { seededRandom } from "../lib/backoff.ts";
import { parsed } from "./_parse.ts";

Deno.test("parseConfig() reads pyess's ConfigArgParse format", async (t) => {
  await t.step("should accept every key/value form and skip comments and sections", () => {
    const text = [
      "# essmqtt config",
      "; ini comment",
      "[essmqtt]",
      "ess_password = a1b2c3d4e5f6",
      "mqtt_server: broker.lan",
      "mqtt_port 1884",
      "--interval_seconds=5",
      "once",
      'mqtt_user = "home assistant"',
      "common_divisor = 3   # every 30 s",
      "---",
      "",
    ].join("\n");
    assert.deepEqual(parseConfig(text, "/etc/essmqtt.conf"), [
      { key: "ess_password", value: "a1b2c3d4e5f6", origin: "/etc/essmqtt.conf:4" },
      { key: "mqtt_server", value: "broker.lan", origin: "/etc/essmqtt.conf:5" },
      { key: "mqtt_port", value: "1884", origin: "/etc/essmqtt.conf:6" },
      { key: "interval_seconds", value: "5", origin: "/etc/essmqtt.conf:7" },
      { key: "once", value: "true", origin: "/etc/essmqtt.conf:8" },
      { key: "mqtt_user", value: "home assistant", origin: "/etc/essmqtt.conf:9" },
      { key: "common_divisor", value: "3", origin: "/etc/essmqtt.conf:10" },
    ]);
  });
  await t.step("should keep a # inside a value", () => {
    assert.equal(parseConfig("mqtt_password = se#cret", "f")[0]!.value, "se#cret");
  });
  await t.step("should read every line as the single regular expression it replaced did", () => {
    // The old rule, which backtracked quadratically on blanks inside a value: now the oracle.
    const oracle = /^(?:--)?([A-Za-z][A-Za-z0-9_.-]*)(?:\s*[=:]\s*(.*?)|\s+(.*?))?(?:\s+[#;].*)?$/;
    const random = seededRandom(7);
    const alphabet = ["k", "v", "=", ":", " ", "\t", "#", ";", '"', "-", "x y"];
    for (let i = 0; i < 5000; i++) {
      const length = 1 + Math.floor(random() * 12);
      let line = "key";
      for (let j = 0; j < length; j++) line += alphabet[Math.floor(random() * alphabet.length)];
      line = line.trim();
      const m = oracle.exec(line);
      const value = m?.[2] ?? m?.[3];
      // parseConfig() unquotes what the split gives it, "x y" → x y, whichever way it split.
      const unquoted = value === undefined ? "true" : /^(["'])(.*)\1$/.exec(value)?.[2] ?? value;
      const expected = m ? [{ key: m[1], value: unquoted }] : undefined;
      let got: { key: string; value: string }[] | undefined;
      try {
        got = parseConfig(line, "f").map(({ key, value }) => ({ key, value }));
      } catch (err) {
        assert.ok(err instanceof ConfigError);
      }
      assert.deepEqual(got, expected, JSON.stringify(line));
    }
  });
  await t.step("should read a value with a million blanks inside in one pass", () => {
    const blanks = " ".repeat(1_000_000);
    assert.deepEqual(
      parseConfig(`mqtt_user = a${blanks}b  # comment`, "f")[0]!.value,
      `a${blanks}b`,
    );
    assert.throws(() => parseConfig(`1${blanks}x`, "f"), ConfigError);
  });
  await t.step("should name file and line of a malformed line, but not its text", () => {
    for (const bad of ["= value", "[section", "1abc = x"]) {
      assert.throws(
        () => parseConfig(`ess_host = x\n${bad}\n`, "my.conf"),
        /^ConfigError: my\.conf:2: /,
      );
    }
    assert.throws(
      () => parseConfig("ok = 1\n=secret-value\n", "my.conf"),
      (err: unknown) =>
        err instanceof ConfigError && err.exitCode === 2 && /^my\.conf:2: /.test(err.message) &&
        !err.message.includes("secret-value"),
    );
  });
});

Deno.test("flatten() keeps the device's text and order", () => {
  assert.deepEqual(
    flatten({ statistics: { load_power: "376", soc: "" }, ess: [{ v: 12 }], flag: null, top: "x" }),
    [
      { path: ["statistics", "load_power"], value: "376" },
      { path: ["statistics", "soc"], value: "" },
      { path: ["ess", "0", "v"], value: "12" },
      { path: ["flag"], value: "" },
      { path: ["top"], value: "x" },
    ],
  );
});

Deno.test("flatten() and exceededLimit() walk any depth without recursion", async (t) => {
  const deep = JSON.parse(`${'{"a":'.repeat(100_000)}"x"${"}".repeat(100_000)}`);
  await t.step("should flatten 100,000 levels without exhausting the stack", () => {
    const [leaf, ...rest] = flatten(deep);
    assert.equal(leaf?.path.length, 100_000);
    assert.equal(leaf?.value, "x");
    assert.deepEqual(rest, []);
  });
  await t.step("should name the depth limit, and the leaf limit, first passed", () => {
    assert.equal(exceededLimit(deep), "it is nested more than 32 levels deep");
    assert.equal(
      exceededLimit(Array.from({ length: 10_001 }, String)),
      "it holds more than 10000 values",
    );
    assert.equal(exceededLimit(Array.from({ length: 10_000 }, String)), undefined);
  });
});

Deno.test("parseHostPort()", async (t) => {
  await t.step("should accept names, IPv4 and IPv6 with and without ports", () => {
    assert.deepEqual(parseHostPort("192.168.1.20", 443), {
      hostname: "192.168.1.20",
      port: 443,
      authority: "192.168.1.20",
    });
    assert.equal(parseHostPort("ess.lan:8443", 443).authority, "ess.lan:8443");
    assert.equal(parseHostPort("[fe80::1]:8443", 443).authority, "[fe80::1]:8443");
    assert.equal(parseHostPort("fe80::1", 443).authority, "[fe80::1]");
  });
  await t.step("should refuse bad ports and hosts", () => {
    for (const bad of ["h:0", "h:65536", "h:http", "", "a b", "http://x/"]) {
      assert.throws(() => parseHostPort(bad, 443), UsageError, bad);
    }
  });
  await t.step("should refuse what would make no URL, as a usage error", () => {
    const bad = [
      "[::1",
      "%00",
      "a\u0000b",
      "[]",
      "[fe80::1%eth0]",
      "ess..lan",
      "-ess",
      "999.1.1.1",
    ];
    for (const text of bad) {
      assert.throws(
        () => parseHostPort(text, 443),
        (e: unknown) =>
          e instanceof UsageError && e.exitCode === 2 && /host name or address/.test(e.message),
        text,
      );
    }
    assert.throws(() => parseHostPort(`${"a".repeat(300)}.lan`, 443), /too long for a host name/);
    assert.equal(parseHostPort("LGE_ESS-DE1234.local", 443).authority, "LGE_ESS-DE1234.local");
  });
});

Deno.test("loadConfigFile() reads only a small regular file", async (t) => {
  const dir = await Deno.makeTempDir();
  try {
    await t.step("should read a regular file", async () => {
      await Deno.writeTextFile(`${dir}/ok.conf`, "ess_host = 10.0.0.1\n");
      assert.deepEqual(await loadConfigFile(`${dir}/ok.conf`), [
        { key: "ess_host", value: "10.0.0.1", origin: `${dir}/ok.conf:1` },
      ]);
    });
    await t.step("should take /dev/null as an empty file", async () => {
      assert.deepEqual(await loadConfigFile("/dev/null"), []);
    });
    const refused: [string, string, RegExp][] = [
      ["a directory", dir, /it is a directory, not a regular file$/],
      ["a device", "/dev/zero", /it is a device, not a regular file$/],
      ["a missing file", `${dir}/missing.conf`, /no such file$/],
      [
        "a file over 1 MiB",
        `${dir}/big.conf`,
        /it is 1048577 bytes; a config file may have at most 1048576$/,
      ],
      ["a file that is not UTF-8", `${dir}/binary.conf`, /it is not UTF-8 text$/],
    ];
    await Deno.writeFile(`${dir}/big.conf`, new Uint8Array(MAX_CONFIG_BYTES + 1).fill(0x23));
    await Deno.writeFile(`${dir}/binary.conf`, new Uint8Array([0x61, 0xff, 0xfe, 0x0a]));
    for (const [what, path, why] of refused) {
      await t.step(`should refuse ${what}, naming the path`, async () => {
        const err = await rejectsWith(() => loadConfigFile(path), ConfigError, why);
        assert.ok(err.message.startsWith(`Cannot read config file ${path}: `), err.message);
        assert.equal(err.exitCode, 2);
      });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

function io(env: Record<string, string> = {}) {
  const err: string[] = [];
  const out: string[] = [];
  const value: Io = {
    out: (t) => out.push(t),
    err: (t) => err.push(t),
    stdoutIsTerminal: false,
    stderrIsTerminal: false,
    env: (name) => env[name],
  };
  return { io: value, out, err };
}

const COMMAND = {
  name: "demo",
  usage: "demo",
  description: "test command",
  options: [
    { name: "interval-seconds", type: "string", help: "poll interval", default: "10" },
    { name: "once", type: "boolean", help: "one poll" },
    ...DEVICE_OPTIONS,
    ...GENERAL_OPTIONS,
  ],
  examples: [],
} as const satisfies Omit<Command, "run">;

Deno.test("parseCommand() resolves options", async (t) => {
  const dir = await Deno.makeTempDir();
  const config = `${dir}/essmqtt.conf`;
  await Deno.writeTextFile(
    config,
    "ess_host = 10.0.0.1\ness_password = from-file\ninterval_seconds = 30\nonce = yes\nfavourite_colour = blue\n",
  );
  try {
    await t.step("should prefer command line over environment over file over default", async () => {
      const { io: env, err } = io({ ESS_PASSWORD: "from-env" });
      const p = await parsed(COMMAND, ["--config", config, "--ess_host", "10.0.0.2"], env);
      assert.equal(p.get("host")?.value, "10.0.0.2");
      assert.equal(p.get("host")?.origin, "--ess_host");
      assert.equal(p.get("password")?.value, "from-env");
      assert.equal(p.integer("interval-seconds", 1, 3600), 30);
      assert.equal(p.get("interval-seconds")?.origin, `${config}:3`);
      assert.equal(p.flag("once"), true);
      assert.equal(p.get("timeout")?.value, "10");
      assert.deepEqual(err, [
        `ess: warning: ${config}:5: unknown key "favourite_colour" ignored\n`,
      ]);
    });
    await t.step("should accept --no-<flag> and pyess's snake_case spellings", async () => {
      const p = await parsed(
        COMMAND,
        ["--config", config, "--no-once", "--interval_seconds", "5"],
        io().io,
      );
      assert.equal(p.flag("once"), false);
      assert.equal(p.integer("interval-seconds", 1, 3600), 5);
    });
    await t.step("should name the file and line of a bad value", async () => {
      await Deno.writeTextFile(`${dir}/bad.conf`, "\ninterval_seconds = often\n");
      const p = await parsed(COMMAND, ["--config", `${dir}/bad.conf`], io().io);
      assert.throws(
        () => p.integer("interval-seconds", 1, 3600),
        (e: Error) =>
          e instanceof ConfigError && /bad\.conf:2: interval-seconds must be/.test(e.message),
      );
    });
    await t.step("should turn parse errors into usage errors", async () => {
      await rejectsWith(
        () => parseCommand(COMMAND, ["--nope"], io().io),
        UsageError,
        /unknown option --nope/,
      );
      await rejectsWith(
        () => parseCommand(COMMAND, ["--host"], io().io),
        UsageError,
        /option --host needs a value/,
      );
    });
    await t.step('should answer "help" for --help, before reading any config', async () => {
      const { io: h, out } = io();
      assert.equal(await parseCommand(COMMAND, ["--help", "--config", "/nonexistent"], h), "help");
      assert.deepEqual(out, []);
      assert.match(
        helpText(COMMAND),
        /--host HOST\[:PORT\]\s+the ESS's address \(default: find it by mDNS\) \(env ESS_HOST; also --ess-host\)/,
      );
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("parseCommand() takes pyess's spellings of a flag with a value", async (t) => {
  const command = {
    ...COMMAND,
    options: [
      { name: "once", type: "boolean", help: "one poll", pyessValue: true },
      { name: "json", type: "boolean", help: "as JSON" },
    ],
    positionals: true,
  } as const satisfies Omit<Command, "run">;
  await t.step("should read --once True, --once=true and their false forms", async () => {
    for (
      const [argv, want] of [
        [["--once", "True"], true],
        [["--once=true"], true],
        [["--once", "yes"], true],
        [["--once", "False"], false],
        [["--once=0"], false],
        [["--once"], true],
      ] as const
    ) {
      const p = await parsed(command, argv, io().io);
      assert.equal(p.flag("once"), want, argv.join(" "));
      assert.deepEqual(p.positionals, []);
    }
  });
  await t.step("should leave a word after --once that is no switch word a positional", async () => {
    const p = await parsed(command, ["--once", "pv"], io().io);
    assert.equal(p.flag("once"), true);
    assert.deepEqual(p.positionals, ["pv"]);
  });
  await t.step(
    "should take =value on any flag, but a following word only where pyess did",
    async () => {
      assert.equal((await parsed(command, ["--json=yes"], io().io)).flag("json"), true);
      const p = await parsed(command, ["--json", "true"], io().io);
      assert.deepEqual(p.positionals, ["true"]);
    },
  );
  await t.step("should refuse a value that is no switch word", async () => {
    await rejectsWith(() => parseCommand(command, ["--once=maybe"], io().io), UsageError, /maybe/);
  });
});

Deno.test("parseCommand() and config keys", async (t) => {
  const dir = await Deno.makeTempDir();
  const config = `${dir}/essmqtt.conf`;
  await Deno.writeTextFile(config, "mqtt_server = broker\nfavourite_colour = blue\n");
  try {
    await t.step("should warn only of keys that no command knows", async () => {
      const { io: h, err } = io();
      const known = new Set(["mqtt-server"]);
      await parsed(COMMAND, ["--config", config], h, { isKnownKey: (key) => known.has(key) });
      assert.deepEqual(err, [
        `ess: warning: ${config}:2: unknown key "favourite_colour" ignored\n`,
      ]);
    });
    await t.step("should resolve a relative --config against the given folder", async () => {
      const p = await parsed(COMMAND, ["--config", "essmqtt.conf"], io().io, { cwd: dir });
      assert.equal(p.get("config")?.value, "essmqtt.conf");
      await rejectsWith(
        () => parseCommand(COMMAND, ["--config", "nope.conf"], io().io, { cwd: dir }),
        ConfigError,
        new RegExp(`${dir}/nope\\.conf`),
      );
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Parsed only answers for the command's own options", async () => {
  const p = await parsed(COMMAND, [], io({ HOME: "/nonexistent" }).io);
  assert.equal(p.string("host"), undefined);
  // @ts-expect-error: "hots" is not an option of COMMAND
  assert.equal(p.string("hots"), undefined);
  // @ts-expect-error: "once" is a flag, not a string option
  p.string("once");
  // @ts-expect-error: "host" is a string option, not a flag
  p.flag("host");
});
