// `ess discover` and device discovery with a stub browse: no socket is opened here.
import { deepEqual, equal, ok, rejects, throws } from "node:assert/strict";
import { DEVICE_OPTIONS, GENERAL_OPTIONS, type Io } from "../commands/_cli.ts";
import { parsed as parseFor } from "./_parse.ts";
import { cachedDiscover, deviceHost, type Discover, pickDevice } from "../commands/_device.ts";
import discoverCommand, {
  type Browse,
  type Probe,
  progressLine,
  runDiscover,
} from "../commands/discover.ts";
import { parseConfig } from "../lib/config.ts";
import { ConfigError, DiscoveryError, UsageError } from "../lib/errors.ts";
import type { BrowseOptions, EssDevice } from "../lib/device/mdns.ts";
import { silentLogger } from "../lib/log.ts";

const device = (name: string, address: string, txt: Record<string, string> = {}): EssDevice => ({
  name,
  instance: `LGE_ESS-${name}._pmsctrl._tcp.local`,
  address,
  port: 443,
  txt,
});
const ONE = device("TEST0815", "192.0.2.20");
const TWO = device("TEST4711", "192.0.2.21", { https_port: "8443" });

function fakeIo(stderrIsTerminal = false) {
  const out: string[] = [];
  const err: string[] = [];
  const io: Io = {
    out: (t) => void out.push(t),
    err: (t) => void err.push(t),
    stdoutIsTerminal: false,
    stderrIsTerminal,
    env: (name) => name === "ESS_CONFIG" ? "/dev/null" : undefined,
  };
  return { io, out, err };
}

/** A browse that reports `devices` at once and records the options it was given. */
function stubBrowse(devices: EssDevice[]) {
  const calls: BrowseOptions[] = [];
  const browse: Browse = (options) => {
    calls.push(options);
    for (const d of devices) options.onFound?.(d);
    return Promise.resolve(devices);
  };
  return { browse, calls };
}

/** A certificate probe that knows the fingerprints of some addresses, and records its calls. */
function stubProbe(known: Record<string, string>) {
  const calls: string[] = [];
  const probe: Probe = (hostname, port) => {
    calls.push(`${hostname}:${port}`);
    const fingerprint = known[hostname];
    return fingerprint === undefined
      ? Promise.reject(new Error("Connection refused"))
      : Promise.resolve(fingerprint);
  };
  return { probe, calls };
}

/** `ess discover` with `argv`, browsing with `browse`, reading certificates with `probe`. */
async function discoverWith(
  argv: string[],
  io: Io,
  browse: Browse,
  probe: Probe = stubProbe({}).probe,
): Promise<number> {
  return runDiscover(await parseFor(discoverCommand, argv, io), io, browse, probe);
}

Deno.test("ess discover", async (t) => {
  await t.step("should print one line per device as it answers", async () => {
    const { io, out, err } = fakeIo();
    const { browse, calls } = stubBrowse([ONE, TWO]);
    equal(await discoverWith([], io, browse), 0);
    deepEqual(out, ["LGE_ESS-TEST0815  192.0.2.20:443\n", "LGE_ESS-TEST4711  192.0.2.21:8443\n"]);
    deepEqual(err, []);
    equal(calls[0]?.timeoutMs, 3000);
    equal(calls[0]?.first, false);
    equal(calls[0]?.name, undefined);
  });

  await t.step("should print one JSON array at the end with --json", async () => {
    const { io, out } = fakeIo();
    equal(await discoverWith(["--json"], io, stubBrowse([ONE, TWO]).browse), 0);
    equal(out.length, 1);
    deepEqual(
      JSON.parse(out[0]!),
      [
        { ...ONE, host: "192.0.2.20" },
        { ...TWO, host: "192.0.2.21:8443" },
      ].map(({ name, instance, host, address, port, txt }) => ({
        name,
        instance,
        host,
        address,
        port,
        txt,
      })),
    );
  });

  await t.step("should pass --timeout, --first, --name and --interface to the browse", async () => {
    const { io } = fakeIo();
    const { browse, calls } = stubBrowse([ONE]);
    const args = ["--timeout", "0.5", "--first", "--name", "TEST0815", "--interface", "10.0.0.2"];
    equal(await discoverWith(args, io, browse), 0);
    equal(calls[0]?.timeoutMs, 500);
    equal(calls[0]?.first, true);
    equal(calls[0]?.name, "TEST0815");
    equal(calls[0]?.interfaceAddress, "10.0.0.2");
  });

  await t.step("should fail with a DiscoveryError (exit 1) when nothing answers", async () => {
    const { io, out } = fakeIo();
    await rejects(discoverWith(["--json"], io, stubBrowse([]).browse), DiscoveryError);
    deepEqual(out, ["[]\n"], "--json still prints an (empty) array");
    await rejects(
      discoverWith([], fakeIo().io, stubBrowse([]).browse),
      (e: unknown) =>
        e instanceof DiscoveryError && e.exitCode === 1 && /No LG ESS/.test(e.message),
    );
  });

  await t.step("should refuse a bad --interface and stray arguments", async () => {
    const { browse } = stubBrowse([ONE]);
    await rejects(discoverWith(["--interface", "eth0"], fakeIo().io, browse), UsageError);
    await rejects(discoverWith(["extra"], fakeIo().io, browse), UsageError);
  });

  await t.step("should print a config section for each device with --config-block", async () => {
    const { io, out, err } = fakeIo();
    const { probe, calls } = stubProbe({ "192.0.2.20": "AB:CD:EF" });
    equal(await discoverWith(["--config-block"], io, stubBrowse([ONE, TWO]).browse, probe), 0);
    deepEqual(calls, ["192.0.2.20:443", "192.0.2.21:8443"]);
    deepEqual(err, []);
    equal(out.length, 1, "the sections come at once, at the end");
    equal(
      out[0],
      [
        "# LGE_ESS-TEST0815, found by mDNS at 192.0.2.20",
        "[device test0815]",
        "host = 192.0.2.20",
        "fingerprint = AB:CD:EF",
        "# password = (its wired LAN MAC, lowercase, no colons: 'ess password' reads it over " +
        "the device's own Wi-Fi)",
        "",
        "# LGE_ESS-TEST4711, found by mDNS at 192.0.2.21",
        "[device test4711]",
        "host = 192.0.2.21:8443",
        "# fingerprint = (could not be read; 'ess data --host 192.0.2.21:8443 " +
        "--show-fingerprint' prints it)",
        "# password = (its wired LAN MAC, lowercase, no colons: 'ess password' reads it over " +
        "the device's own Wi-Fi)",
        "",
      ].join("\n"),
    );
    // What it prints is a config file ess reads back, each device in its own section.
    const entries = parseConfig(out[0]!, "f");
    deepEqual(entries.map((e) => [e.device, e.key, e.value]), [
      ["test0815", "host", "192.0.2.20"],
      ["test0815", "fingerprint", "AB:CD:EF"],
      ["test4711", "host", "192.0.2.21:8443"],
    ]);
  });

  await t.step("should make the names valid and unique", async () => {
    const { io, out } = fakeIo();
    const odd = [
      device("DE 1234", "192.0.2.30"),
      device("de-1234", "192.0.2.31"),
      device("de_1234", "192.0.2.35"),
      device("Status", "192.0.2.32"),
      device("…", "192.0.2.33"),
      device(`X${"Y".repeat(40)}`, "192.0.2.34"),
    ];
    equal(await discoverWith(["--config-block"], io, stubBrowse(odd).browse), 0);
    const names = parseConfig(out[0]!, "f").map((e) => e.device);
    deepEqual([...new Set(names)], [
      "de-1234",
      "de-1234-2",
      "de_1234-3",
      "ess",
      "ess-2",
      `x${"y".repeat(27)}`,
    ]);
  });

  await t.step("should refuse --config-block with --json, and print none for none", async () => {
    await rejects(
      discoverWith(["--json", "--config-block"], fakeIo().io, stubBrowse([ONE]).browse),
      (e: unknown) => e instanceof UsageError && /choose one/.test(e.message),
    );
    const { io, out } = fakeIo();
    await rejects(discoverWith(["--config-block"], io, stubBrowse([]).browse), DiscoveryError);
    deepEqual(out, []);
  });

  await t.step("should show progress on stderr only when stderr is a terminal", async () => {
    const { io, out, err } = fakeIo(true);
    equal(await discoverWith([], io, stubBrowse([ONE]).browse), 0);
    deepEqual(out, ["LGE_ESS-TEST0815  192.0.2.20:443\n"]);
    ok(err.some((e) => e.includes("looking for LG ESS devices")));
    equal(err.at(-1), "\r\x1b[2K", "the progress line is cleared at the end");
  });
});

Deno.test("progressLine()", async (t) => {
  await t.step("should show a spinner, the elapsed time and the count", () => {
    equal(
      progressLine(1234, 3000, 1),
      "⠹ looking for LG ESS devices (_pmsctrl._tcp.local) 1.2 s of 3.0 s, 1 found",
    );
    ok(progressLine(0, 3000, 0) !== progressLine(100, 3000, 0));
  });
});

Deno.test("pickDevice()", async (t) => {
  await t.step("should take the only device", () => {
    equal(pickDevice([ONE], undefined), ONE);
  });
  await t.step("should take the named device among several", () => {
    equal(pickDevice([ONE, TWO], "test4711"), TWO);
    equal(pickDevice([ONE, TWO], "LGE_ESS-TEST4711"), TWO);
  });
  await t.step("should refuse several without --name, listing them", () => {
    throws(
      () => pickDevice([ONE, TWO], undefined),
      (e: unknown) =>
        e instanceof UsageError &&
        /LGE_ESS-TEST0815 \(192\.0\.2\.20\), LGE_ESS-TEST4711 \(192\.0\.2\.21:8443\)/.test(
          e.message,
        ) && /--name/.test(e.message),
    );
  });
  await t.step("should name five of a flood of devices in a short line, and count the rest", () => {
    const flood = Array.from({ length: 2000 }, (_, i) => device(`FAKE${i}`, "192.0.2.99"));
    for (const name of [undefined, "OTHER"]) {
      throws(
        () => pickDevice(flood, name),
        (e: unknown) =>
          e instanceof Error && e.message.length < 400 &&
          /LGE_ESS-FAKE4 \(192\.0\.2\.99\) and 1995 more/.test(e.message) &&
          !e.message.includes("FAKE5 "),
      );
    }
  });
  await t.step("should say none answered, and how to give --host", () => {
    throws(
      () => pickDevice([], undefined),
      (e: unknown) => e instanceof DiscoveryError && e.exitCode === 1 && /--host/.test(e.message),
    );
  });
  await t.step("should name the devices found when none has the name", () => {
    throws(
      () => pickDevice([ONE], "OTHER"),
      (e: unknown) =>
        e instanceof DiscoveryError && /"OTHER".*found LGE_ESS-TEST0815/.test(e.message),
    );
  });
});

Deno.test("cachedDiscover()", async (t) => {
  await t.step("should browse once per name and share the answer", async () => {
    let calls = 0;
    const discover = cachedDiscover(() => {
      calls++;
      return Promise.resolve([ONE]);
    });
    const [a, b] = await Promise.all([
      discover(undefined, silentLogger),
      discover(undefined, silentLogger),
    ]);
    equal(a, b);
    await discover("TEST0815", silentLogger);
    await discover("test0815", silentLogger);
    equal(calls, 2);
  });
  await t.step("should not keep a failure", async () => {
    let calls = 0;
    const discover = cachedDiscover(() =>
      ++calls === 1 ? Promise.reject(new Error("no socket")) : Promise.resolve([ONE])
    );
    await rejects(discover(undefined, silentLogger), /no socket/);
    deepEqual(await discover(undefined, silentLogger), [ONE]);
  });
});

Deno.test("deviceHost()", async (t) => {
  const spec = { name: "t", summary: "", usage: "", description: "", examples: [] };
  const parsed = async (args: string[]) =>
    await parseFor(
      { ...spec, options: [...DEVICE_OPTIONS, ...GENERAL_OPTIONS] },
      args,
      fakeIo().io,
    );
  const discoverer = (devices: EssDevice[]) => {
    const names: (string | undefined)[] = [];
    const discover: Discover = (name) => {
      names.push(name);
      return Promise.resolve(devices);
    };
    return { discover, names };
  };

  await t.step("should not discover when --host is given", async () => {
    const { discover, names } = discoverer([ONE]);
    equal(
      (await deviceHost(await parsed(["--host", "192.0.2.9"]), discover)).authority,
      "192.0.2.9",
    );
    deepEqual(names, []);
  });
  await t.step("should name the config file and line of a bad ess_host", async () => {
    const dir = await Deno.makeTempDir();
    try {
      await Deno.writeTextFile(`${dir}/essmqtt.conf`, "\ness_host = a b\n");
      const p = await parsed(["--config", `${dir}/essmqtt.conf`]);
      await rejects(
        deviceHost(p, discoverer([]).discover),
        (err: Error) =>
          err instanceof ConfigError &&
          err.message.startsWith(`${dir}/essmqtt.conf:2: host "a b" is not a host name`),
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
  await t.step("should use the discovered device, on its HTTPS port", async () => {
    const { discover, names } = discoverer([TWO]);
    const host = await deviceHost(await parsed([]), discover);
    deepEqual(host, { hostname: "192.0.2.21", port: 8443, authority: "192.0.2.21:8443" });
    deepEqual(names, [undefined]);
  });
  await t.step("should say where it logs in before it does", async () => {
    const { io, err } = fakeIo();
    const p = await parseFor(
      { ...spec, options: [...DEVICE_OPTIONS, ...GENERAL_OPTIONS] },
      [],
      io,
    );
    await deviceHost(p, discoverer([TWO]).discover);
    deepEqual(err, [
      "ess: info: found LGE_ESS-TEST4711 (192.0.2.21:8443) by mDNS; logging in there\n",
    ]);
  });
  await t.step("should warn about an https_port it does not use, and use 443", async () => {
    const { io, err } = fakeIo();
    const p = await parseFor(
      { ...spec, options: [...DEVICE_OPTIONS, ...GENERAL_OPTIONS] },
      [],
      io,
    );
    const sshPort = device("TEST4711", "192.0.2.21", { https_port: "22" });
    equal((await deviceHost(p, discoverer([sshPort]).discover)).authority, "192.0.2.21");
    deepEqual(err, [
      'ess: warning: LGE_ESS-TEST4711 announces https_port "22", which ess does not use ' +
      "(only 443 or 1024-65535): trying port 443\n",
      "ess: info: found LGE_ESS-TEST4711 (192.0.2.21) by mDNS; logging in there\n",
    ]);
  });
  await t.step("should pass --name to the discovery and pick that device", async () => {
    const { discover, names } = discoverer([ONE, TWO]);
    equal(
      (await deviceHost(await parsed(["--name", "TEST0815"]), discover)).authority,
      "192.0.2.20",
    );
    deepEqual(names, ["TEST0815"]);
  });
  await t.step("should refuse several devices without --name", async () => {
    await rejects(deviceHost(await parsed([]), discoverer([ONE, TWO]).discover), UsageError);
  });
});
