import assert from "node:assert/strict";
import { MAX_DEVICES, parseConfig, RESERVED_DEVICE_NAMES } from "../lib/config.ts";
import { ConfigError, UsageError } from "../lib/errors.ts";
import { Redactor } from "../lib/redact.ts";
import {
  type Command,
  DEVICE_OPTIONS,
  DEVICE_SELECT_OPTION,
  GENERAL_OPTIONS,
  type Io,
  parseCommand,
} from "../commands/_cli.ts";
import { chosenDevice, daemonDevices } from "../commands/_devices.ts";
import { isDeviceKey, isKnownKey } from "../commands/_registry.ts";
import { rejectsWith } from "./_assert.ts";
import { parsed } from "./_parse.ts";

/** A daemon-like command: device options, a per-device poll interval, process-wide options. */
const COMMAND = {
  name: "demo",
  usage: "demo",
  description: "test command",
  options: [
    {
      name: "interval-seconds",
      type: "string",
      help: "poll interval",
      default: "10",
      env: "ESS_INTERVAL_SECONDS",
      perDevice: true,
    },
    { name: "mqtt-server", type: "string", help: "broker", env: "ESS_MQTT_SERVER" },
    { name: "rule", type: "string", help: "a rule", configPrefix: "surplus." },
    DEVICE_SELECT_OPTION,
    ...DEVICE_OPTIONS,
    ...GENERAL_OPTIONS,
  ],
  examples: [],
} as const satisfies Omit<Command, "run">;

/** A one-shot command that knows none of the daemon's options (as `ess data` does not). */
const ONE_SHOT = {
  ...COMMAND,
  name: "oneshot",
  options: [DEVICE_SELECT_OPTION, ...DEVICE_OPTIONS, ...GENERAL_OPTIONS],
} as const satisfies Omit<Command, "run">;

function testIo(env: Record<string, string> = {}) {
  const err: string[] = [];
  const redactor = new Redactor();
  const io: Io = {
    out: () => {},
    err: (t) => err.push(t),
    stdoutIsTerminal: false,
    stderrIsTerminal: false,
    env: (name) => env[name],
    redactor,
  };
  return { io, err, redactor };
}

const THREE = [
  "# the lines above every section apply to every device",
  "mqtt_server = broker.lan",
  "interval_seconds = 20",
  "timeout = 7",
  "[device garage]",
  "host = 192.168.1.20",
  "password = garage-secret",
  "[device house]",
  "ess_host = 192.168.1.21",
  "ess_password = house-secret",
  "interval_seconds = 5",
  "[device shed]",
  "host = 192.168.1.22",
  "password = shed-secret",
  "fingerprint = AB:CD",
  "timeout = 3",
  "",
].join("\n");

/** Runs `fn` with `text` written to a config file in a fresh folder. */
async function withConfig(text: string, fn: (path: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/essmqtt.conf`, text);
    await fn(`${dir}/essmqtt.conf`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("parseConfig() reads [device NAME] sections", async (t) => {
  await t.step("should file each line under its section, with the header's place", () => {
    const entries = parseConfig(THREE, "f");
    assert.deepEqual(entries.slice(2, 6), [
      { key: "timeout", value: "7", origin: "f:4" },
      { key: "host", value: "192.168.1.20", origin: "f:6", device: "garage", deviceOrigin: "f:5" },
      {
        key: "password",
        value: "garage-secret",
        origin: "f:7",
        device: "garage",
        deviceOrigin: "f:5",
      },
      {
        key: "ess_host",
        value: "192.168.1.21",
        origin: "f:9",
        device: "house",
        deviceOrigin: "f:8",
      },
    ]);
  });
  await t.step("should still ignore ConfigArgParse's other sections, which end a device's", () => {
    const text = "[essmqtt]\nhost = a\n[device garage]\nhost = b\n[general]\nmqtt_server = m\n";
    assert.deepEqual(parseConfig(text, "f"), [
      { key: "host", value: "a", origin: "f:2" },
      { key: "host", value: "b", origin: "f:4", device: "garage", deviceOrigin: "f:3" },
      { key: "mqtt_server", value: "m", origin: "f:6" },
    ]);
    assert.deepEqual(parseConfig("[devices]\nhost = a\n", "f"), [
      { key: "host", value: "a", origin: "f:2" },
    ]);
  });
  await t.step("should take the header's spacing and case as written by hand", () => {
    const [entry] = parseConfig("[ Device  garage-2_b ]\nhost = a\n", "f");
    assert.equal(entry?.device, "garage-2_b");
  });
  const refused: [string, string, RegExp][] = [
    ["a section without a name", "[device]\nhost = a\n", /^f:1: a device section needs a name/],
    ["an upper-case name", "[device Garage]\nhost = a\n", /^f:1: a device name is 1 to 32/],
    ["a name with a slash", "\n[device a/b]\nhost = a\n", /^f:2: a device name is/],
    ["a name with a blank", "[device a b]\nhost = a\n", /^f:1: a device name is/],
    ["a name of 33 characters", `[device ${"a".repeat(33)}]\nhost = a\n`, /^f:1: a device name/],
    ["a name starting with -", "[device -a]\nhost = a\n", /^f:1: a device name is/],
    ["a reserved name", "[device status]\nhost = a\n", /^f:1: "status" is taken by ess's/],
    [
      "a name declared twice",
      "[device a]\nhost = a\n[device a]\nhost = b\n",
      /^f:3: device a is declared twice \(first at f:1\)$/,
    ],
    [
      "names that differ only in - and _",
      "[device a-b]\nhost = a\n[device a_b]\nhost = b\n",
      /^f:3: device a_b and device a-b \(at f:1\) differ only in "-" and "_"/,
    ],
    [
      "an empty section before another",
      "[device a]\n# nothing\n[device b]\nhost = b\n",
      /^f:1: \[device a\] sets nothing: give at least its host and password$/,
    ],
    ["an empty section at the end", "host = x\n[device a]\n", /^f:2: \[device a\] sets nothing/],
    [
      "an empty section before an ignored one",
      "[device a]\n[essmqtt]\nhost = a\n",
      /^f:1: \[device a\] sets nothing/,
    ],
    ["a malformed header", "[device a\nhost = a\n", /^f:1: malformed section header/],
  ];
  for (const [what, text, message] of refused) {
    await t.step(`should refuse ${what}, naming the file and line`, () => {
      assert.throws(
        () => parseConfig(text, "f"),
        (e: unknown) => e instanceof ConfigError && e.exitCode === 2 && message.test(e.message),
      );
    });
  }
  await t.step("should refuse every reserved name", () => {
    for (const name of RESERVED_DEVICE_NAMES) {
      assert.throws(() => parseConfig(`[device ${name}]\nhost = a\n`, "f"), /is taken by ess's/);
    }
  });
  await t.step(`should take ${MAX_DEVICES} devices and refuse one more`, () => {
    const section = (i: number) => `[device d${i}]\nhost = 10.0.0.${i}\n`;
    const sixteen = Array.from({ length: MAX_DEVICES }, (_, i) => section(i)).join("");
    assert.equal(new Set(parseConfig(sixteen, "f").map((e) => e.device)).size, MAX_DEVICES);
    assert.throws(
      () => parseConfig(sixteen + section(99), "f"),
      (e: unknown) =>
        e instanceof ConfigError &&
        e.message === `f:33: at most ${MAX_DEVICES} devices in one config`,
    );
  });
});

Deno.test("parseCommand() resolves each [device NAME] section", async (t) => {
  await withConfig(THREE, async (config) => {
    await t.step("should list the sections in order, each resolved for its device", async () => {
      const p = await parsed(COMMAND, ["--config", config], testIo().io);
      assert.deepEqual(p.devices.map((d) => [d.name, d.origin]), [
        ["garage", `${config}:5`],
        ["house", `${config}:8`],
        ["shed", `${config}:12`],
      ]);
      const [garage, house, shed] = p.devices.map((d) => d.p);
      assert.equal(garage?.string("host"), "192.168.1.20");
      assert.equal(house?.string("host"), "192.168.1.21");
      assert.equal(house?.get("password")?.origin, `${config}:10`);
      assert.equal(shed?.string("fingerprint"), "AB:CD");
      // Each device's own view declares no further devices.
      assert.deepEqual(garage?.devices, []);
      // The top-level view has no device's host.
      assert.equal(p.get("host"), undefined);
    });
    await t.step("should take section over top of file over default", async () => {
      const p = await parsed(COMMAND, ["--config", config], testIo().io);
      const [garage, house, shed] = p.devices.map((d) => d.p);
      assert.deepEqual(garage?.get("interval-seconds"), { value: "20", origin: `${config}:3` });
      assert.deepEqual(house?.get("interval-seconds"), { value: "5", origin: `${config}:11` });
      assert.deepEqual(garage?.get("timeout"), { value: "7", origin: `${config}:4` });
      assert.deepEqual(shed?.get("timeout"), { value: "3", origin: `${config}:16` });
      assert.deepEqual(garage?.get("log-level"), { value: "info", origin: "default" });
      // Process-wide options are the same for every device.
      assert.equal(shed?.string("mqtt-server"), "broker.lan");
    });
    await t.step("should take command line over environment over section", async () => {
      const { io } = testIo({ ESS_INTERVAL_SECONDS: "15", ESS_MQTT_SERVER: "env-broker" });
      const p = await parsed(COMMAND, ["--config", config, "--timeout", "9"], io);
      for (const device of p.devices) {
        assert.deepEqual(device.p.get("interval-seconds"), {
          value: "15",
          origin: "env ESS_INTERVAL_SECONDS",
        });
        assert.deepEqual(device.p.get("timeout"), { value: "9", origin: "--timeout" });
        assert.equal(device.p.string("mqtt-server"), "env-broker");
      }
    });
    await t.step("should register every section's password with the redactor", async () => {
      const { io, err, redactor } = testIo({ ESS_MQTT_PASSWORD: "unused" });
      const p = await parsed(COMMAND, ["--config", config], io);
      p.log.warning("garage-secret house-secret shed-secret");
      assert.deepEqual(err, ["ess: warning: *** *** ***\n"]);
      assert.equal(redactor.redact("shed-secret"), "***");
      for (const device of p.devices) {
        device.p.log.error(`login with ${device.p.string("password")}`);
      }
      assert.deepEqual(err.slice(1), Array(3).fill("ess: error: login with ***\n"));
    });
  });
  await t.step("should leave a config without sections in single mode", async () => {
    await withConfig("host = 10.0.0.1\npassword = top-secret\n", async (config) => {
      const p = await parsed(COMMAND, ["--config", config], testIo().io);
      assert.deepEqual(p.devices, []);
      assert.equal(p.string("host"), "10.0.0.1");
      assert.equal(daemonDevices(p), undefined);
    });
  });
  await t.step("should merge a device's sections of several default files", async () => {
    const home = await Deno.makeTempDir();
    try {
      await Deno.writeTextFile(`${home}/.essmqtt.conf`, "[device a]\nhost = 1.1.1.1\n");
      await Deno.writeTextFile(`${home}/essmqtt.conf`, "[device a]\npassword = pass-home\n");
      const p = await parsed(ONE_SHOT, [], testIo({ HOME: home }).io);
      assert.equal(p.devices.length, 1);
      assert.equal(p.devices[0]?.p.string("host"), "1.1.1.1");
      assert.equal(p.devices[0]?.p.string("password"), "pass-home");
    } finally {
      await Deno.remove(home, { recursive: true });
    }
  });
  await t.step("should refuse names of several files that differ only in - and _", async () => {
    const home = await Deno.makeTempDir();
    try {
      await Deno.writeTextFile(`${home}/.essmqtt.conf`, "[device a-b]\nhost = 1.1.1.1\n");
      await Deno.writeTextFile(`${home}/essmqtt.conf`, "[device a_b]\nhost = 1.1.1.2\n");
      await rejectsWith(
        () => parseCommand(ONE_SHOT, [], testIo({ HOME: home }).io),
        ConfigError,
        /essmqtt\.conf:1: device a_b and device a-b \(at .*\.essmqtt\.conf:1\) differ only/,
      );
    } finally {
      await Deno.remove(home, { recursive: true });
    }
  });
});

Deno.test("parseCommand() refuses a process-wide key inside a section", async (t) => {
  const cases: [string, string, RegExp][] = [
    [
      "an option of this command",
      "[device a]\nhost = a\nmqtt_server = b\n",
      /:3: mqtt_server applies to the whole process, not to one device: move it above the first \[device\] section$/,
    ],
    [
      "an entry under an option's prefix",
      "[device a]\nhost = a\nsurplus.rule.x = 1\n",
      /:3: surplus\.rule\.x applies to the whole process/,
    ],
    ["the log level", "[device a]\nhost = a\nlog_level = debug\n", /:3: log_level applies/],
  ];
  for (const [what, text, message] of cases) {
    await t.step(`should refuse ${what}, naming the file and line`, async () => {
      await withConfig(text, async (config) => {
        await rejectsWith(
          () => parseCommand(COMMAND, ["--config", config], testIo().io),
          ConfigError,
          message,
        );
      });
    });
  }
  await t.step("should refuse another command's process-wide option too", async () => {
    // One config serves every command: `ess data` reads the daemon's file and judges it alike.
    await withConfig("[device a]\nhost = a\nmqtt_server = b\n", async (config) => {
      await rejectsWith(
        () =>
          parseCommand(ONE_SHOT, ["--config", config], testIo().io, { isKnownKey, isDeviceKey }),
        ConfigError,
        /:3: mqtt_server applies to the whole process/,
      );
    });
  });
  await t.step("should take another command's per-device option in a section", async () => {
    await withConfig("[device a]\nhost = a\ninterval_seconds = 5\n", async (config) => {
      const { io, err } = testIo();
      const p = await parsed(ONE_SHOT, ["--config", config], io, { isKnownKey, isDeviceKey });
      assert.equal(p.devices[0]?.p.string("host"), "a");
      assert.deepEqual(err, []);
    });
  });
  await t.step("should warn of an unknown key in a section, as above them", async () => {
    await withConfig("[device a]\nhost = a\nfavourite_colour = blue\n", async (config) => {
      const { io, err } = testIo();
      await parsed(ONE_SHOT, ["--config", config], io, { isKnownKey, isDeviceKey });
      assert.deepEqual(err, [
        `ess: warning: ${config}:3: unknown key "favourite_colour" ignored\n`,
      ]);
    });
  });
  await t.step(`should refuse more than ${MAX_DEVICES} devices over several files`, async () => {
    const home = await Deno.makeTempDir();
    try {
      const sections = (from: number, to: number) =>
        Array.from({ length: to - from }, (_, i) => `[device d${from + i}]\nhost = h\n`).join("");
      await Deno.writeTextFile(`${home}/.essmqtt.conf`, sections(0, 10));
      // d5 to d9 are the first file's again; d16, on line 23, is the 17th device.
      await Deno.writeTextFile(`${home}/essmqtt.conf`, sections(5, 17));
      await rejectsWith(
        () => parseCommand(ONE_SHOT, [], testIo({ HOME: home }).io),
        ConfigError,
        new RegExp(`^${home}/essmqtt\\.conf:23: at most ${MAX_DEVICES} devices in one config$`),
      );
    } finally {
      await Deno.remove(home, { recursive: true });
    }
  });
});

Deno.test("daemonDevices() refuses a device's identity outside the sections", async (t) => {
  await withConfig(THREE, async (config) => {
    await t.step("should run every section in order", async () => {
      const p = await parsed(COMMAND, ["--config", config], testIo().io);
      assert.deepEqual(daemonDevices(p)?.map((d) => d.name), ["garage", "house", "shed"]);
    });
    const outside: [string, string[], Record<string, string>, RegExp][] = [
      [
        "--host",
        ["--host", "10.0.0.9"],
        {},
        /^--host: host would apply to every device of the config's \[device\] sections \(garage, house and shed\): set host in each section instead$/,
      ],
      ["ESS_PASSWORD", [], { ESS_PASSWORD: "x".repeat(12) }, /^env ESS_PASSWORD: password would/],
      ["ESS_FINGERPRINT", [], { ESS_FINGERPRINT: "AB" }, /^env ESS_FINGERPRINT: fingerprint/],
      ["--name", ["--ess-name", "x"], {}, /^--ess-name: name would apply/],
    ];
    for (const [what, argv, env, message] of outside) {
      await t.step(`should refuse ${what} as a usage error`, async () => {
        const p = await parsed(COMMAND, ["--config", config, ...argv], testIo(env).io);
        assert.throws(
          () => daemonDevices(p),
          (e: unknown) => e instanceof UsageError && message.test(e.message),
        );
      });
    }
  });
  for (const key of ["host", "ess_password", "fingerprint", "ess_name"]) {
    await t.step(`should refuse ${key} above the sections with its file and line`, async () => {
      await withConfig(`${key} = x\n${THREE}`, async (config) => {
        const p = await parsed(COMMAND, ["--config", config], testIo().io);
        assert.throws(
          () => daemonDevices(p),
          (e: unknown) =>
            e instanceof ConfigError &&
            e.message.startsWith(`${config}:1: ${key.replace("ess_", "")} would apply to every`),
        );
      });
    });
  }
});

Deno.test("chosenDevice() picks the device of a one-shot command", async (t) => {
  await withConfig(THREE, async (config) => {
    const p = await parsed(ONE_SHOT, ["--config", config], testIo().io);
    await t.step("should pick the named section", () => {
      const chosen = chosenDevice(p, "house");
      assert.equal(chosen.name, "house");
      assert.equal(chosen.p.string("host"), "192.168.1.21");
    });
    await t.step("should ask for a name when there are several, listing them", () => {
      assert.throws(
        () => chosenDevice(p, undefined),
        (e: unknown) =>
          e instanceof UsageError &&
          e.message ===
            "the config declares 3 devices (garage, house and shed): say which with --device NAME",
      );
    });
    await t.step("should list the names for an unknown one", () => {
      assert.throws(
        () => chosenDevice(p, "attic"),
        (e: unknown) =>
          e instanceof UsageError &&
          e.message === '--device "attic": the config declares garage, house and shed',
      );
    });
    await t.step("should let the command line override the section's host", async () => {
      const q = await parsed(ONE_SHOT, ["--config", config, "--host", "10.9.9.9"], testIo().io);
      assert.equal(chosenDevice(q, "shed").p.string("host"), "10.9.9.9");
      assert.equal(chosenDevice(q, "shed").p.string("fingerprint"), "AB:CD");
    });
  });
  await t.step("should take the only section without a name", async () => {
    await withConfig("[device solo]\nhost = h\n", async (config) => {
      const p = await parsed(ONE_SHOT, ["--config", config], testIo().io);
      assert.equal(chosenDevice(p, undefined).name, "solo");
    });
  });
  await t.step("should refuse --device for a config without sections", async () => {
    const p = await parsed(ONE_SHOT, ["--config", "/dev/null", "--host", "h"], testIo().io);
    assert.equal(chosenDevice(p, undefined).p, p);
    assert.throws(() => chosenDevice(p, "garage"), /declares no \[device NAME\] section/);
  });
});

Deno.test("every command lets a section set the same options", async () => {
  // One config serves every command: a key one command takes in a section, none may refuse.
  const { COMMANDS } = await import("../commands/_registry.ts");
  const perDevice = new Map<string, boolean[]>();
  for (const entry of Object.values(COMMANDS)) {
    const { options } = (await entry.load()).default;
    // A command that reads no config file (ess simulate) has its own --host and --password.
    if (!options.some((o) => o.name === "config")) continue;
    for (const option of options.filter((o) => o.config !== false)) {
      perDevice.set(option.name, [...perDevice.get(option.name) ?? [], option.perDevice === true]);
    }
  }
  const mixed = [...perDevice].filter(([, flags]) => new Set(flags).size > 1).map(([n]) => n);
  assert.deepEqual(mixed, []);
  assert.ok(perDevice.get("interval-seconds")?.every(Boolean));
});
