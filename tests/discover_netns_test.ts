// `ess discover` for real: two private network namespaces joined by a veth pair, a simulated
// ESS announced by mDNS in one, the CLI in the other. Multicast stays inside the namespaces: the veth pair is
// created inside namespace A with its peer moved straight into B, so the host's own namespace
// never sees an interface, an address or a packet of this test.
import { deepEqual, equal, match, ok } from "node:assert/strict";
import { PERMISSIONS, runCli } from "./_cli.ts";
import { readUntil } from "./_wait.ts";
import { peerCheck } from "./_peers.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const NS_A = `ess-t-${Deno.pid}-a`;
const NS_B = `ess-t-${Deno.pid}-b`;
const ADDRESS_A = "10.213.1.1";
const ADDRESS_B = "10.213.1.2";
const DEVICE = "TEST0815";
const PORT = 8443;
const PASSWORD = "a1b2c3d4e5f6";

async function run(cmd: string, args: string[]): Promise<Deno.CommandOutput> {
  return await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
}

async function ip(...args: string[]): Promise<void> {
  const out = await run("ip", args);
  if (!out.success) {
    throw new Error(`ip ${args.join(" ")}: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
}

/** Why the test cannot run here, or `undefined` when it can. */
async function whyNot(): Promise<string | undefined> {
  if (Deno.uid() !== 0) return "needs root";
  try {
    if (!(await run("ip", ["-V"])).success) return "needs iproute2's ip";
  } catch {
    return "needs iproute2's ip";
  }
  const probe = `ess-t-${Deno.pid}-probe`;
  if (!(await run("ip", ["netns", "add", probe])).success) {
    return "cannot create network namespaces here";
  }
  await run("ip", ["netns", "del", probe]);
  return undefined;
}

const netns = peerCheck("netns", await whyNot());

/** Runs `ess <args>` inside namespace B with the flags of the compiled binary. */
async function essInB(args: string[]) {
  const started = performance.now();
  const out = await runCli(args, { netns: NS_B, env: { ESS_CONFIG: "/dev/null" } });
  return { ...out, ms: performance.now() - started };
}

Deno.test({
  name: `ess discover across two network namespaces${netns.label}`,
  ignore: netns.ignore,
  sanitizeResources: false,
  async fn(t) {
    netns.assertPresent();
    let announcer: Deno.ChildProcess | undefined;
    try {
      await ip("netns", "add", NS_A);
      await ip("netns", "add", NS_B);
      await ip(
        "-n",
        NS_A,
        "link",
        "add",
        "ess-va",
        "type",
        "veth",
        "peer",
        "name",
        "ess-vb",
        "netns",
        NS_B,
      );
      await ip("-n", NS_A, "addr", "add", `${ADDRESS_A}/24`, "dev", "ess-va");
      await ip("-n", NS_B, "addr", "add", `${ADDRESS_B}/24`, "dev", "ess-vb");
      for (const [ns, dev] of [[NS_A, "ess-va"], [NS_B, "ess-vb"]] as const) {
        await ip("-n", ns, "link", "set", "lo", "up");
        await ip("-n", ns, "link", "set", dev, "up");
        await ip("-n", ns, "route", "add", "224.0.0.0/4", "dev", dev);
      }

      await t.step("should say so on stderr and exit 1 when nothing answers", async () => {
        const r = await essInB(["discover", "--timeout", "0.5"]);
        equal(r.code, 1);
        equal(r.stdout, "");
        match(r.stderr, /^ess: No LG ESS answered on mDNS within 0\.\d s/);
        equal(r.stderr.trim().split("\n").length, 1);
      });

      announcer = new Deno.Command("ip", {
        args: [
          "netns",
          "exec",
          NS_A,
          Deno.execPath(),
          "run",
          "--no-prompt",
          ...PERMISSIONS,
          `${ROOT}tests/_mdns_announcer.ts`,
          DEVICE,
          ADDRESS_A,
          String(PORT),
        ],
        cwd: ROOT,
        stdin: "piped",
        stdout: "piped",
        stderr: "inherit",
      }).spawn();
      const reader = announcer.stdout.pipeThrough(new TextDecoderStream()).getReader();
      const said = await readUntil(reader, (text) => text.includes("\n"), {
        what: "the announcer's first line",
      }).finally(() => reader.cancel());
      equal(said.trim(), "ready", "the announcer starts");

      await t.step("should list the device's name and address with --json", async () => {
        const r = await essInB(["discover", "--json"]);
        equal(r.code, 0, r.stderr);
        deepEqual(JSON.parse(r.stdout), [{
          name: DEVICE,
          instance: `LGE_ESS-${DEVICE}._pmsctrl._tcp.local`,
          host: `${ADDRESS_A}:${PORT}`,
          address: ADDRESS_A,
          port: PORT,
          txt: { Device: "LGEESS", HWRevison: "1.5", https_port: String(PORT) },
        }]);
      });

      await t.step("should stop at the first device with --first, not at the timeout", async () => {
        const r = await essInB(["discover", "--json", "--first", "--timeout", "60"]);
        equal(r.code, 0, r.stderr);
        equal(JSON.parse(r.stdout)[0]?.address, ADDRESS_A);
        ok(r.ms < 60_000, `took ${r.ms} ms`);
      });

      await t.step("should print one line per device without --json", async () => {
        const r = await essInB(["discover", "--first"]);
        equal(r.code, 0, r.stderr);
        equal(r.stdout, `LGE_ESS-${DEVICE}  ${ADDRESS_A}:${PORT}\n`);
        equal(r.stderr, "", "no progress output when stderr is not a terminal");
      });

      await t.step("should print a config section that device commands read back", async () => {
        const r = await essInB(["discover", "--first", "--config-block"]);
        equal(r.code, 0, r.stderr);
        const name = DEVICE.toLowerCase().replace(/[^a-z0-9_-]+/g, "-");
        match(r.stdout, new RegExp(`^\\[device ${name}\\]$`, "m"));
        match(r.stdout, new RegExp(`^host = ${ADDRESS_A.replaceAll(".", "\\.")}:${PORT}$`, "m"));
        match(r.stdout, /^fingerprint = ([0-9A-F]{2}:){31}[0-9A-F]{2}$/m);
        match(r.stdout, /^# password = .*'ess password'/m);
        const config = await Deno.makeTempFile({ suffix: ".conf" });
        try {
          // The user fills in the password, as the commented line asks.
          await Deno.writeTextFile(config, `${r.stdout}password = ${PASSWORD}\n`);
          const data = await runCli(["data", "--only", "home", "--config", config], {
            netns: NS_B,
          });
          equal(data.code, 0, data.stderr);
          equal(typeof JSON.parse(data.stdout).home?.statistics?.load_power, "string");
        } finally {
          await Deno.remove(config);
        }
      });

      await t.step("should list only the device --name names", async () => {
        const r = await essInB(["discover", "--json", "--name", "OTHER", "--timeout", "1"]);
        equal(r.code, 1);
        equal(r.stdout.trim(), "[]");
        match(r.stderr, /No LG ESS named "OTHER" answered/);
      });

      await t.step("should make device commands without --host use the found device", async () => {
        const r = await essInB(["data", "--only", "home", "--password", PASSWORD]);
        equal(r.code, 0, r.stderr);
        equal(typeof JSON.parse(r.stdout).home?.statistics?.load_power, "string");
      });

      await t.step("should pick the device --name names for a device command", async () => {
        const r = await essInB([
          "data",
          "--only",
          "batt",
          "--name",
          DEVICE,
          "--password",
          PASSWORD,
        ]);
        equal(r.code, 0, r.stderr);
        ok(JSON.parse(r.stdout).batt);
      });

      await t.step("should name the devices found when --name matches none", async () => {
        const r = await essInB(["data", "--password", "x", "--name", "OTHER"]);
        equal(r.code, 1);
        match(r.stderr, /No LG ESS named "OTHER" answered on mDNS.*found LGE_ESS-TEST0815/);
      });
    } finally {
      if (announcer) {
        await announcer.stdin.close().catch(() => {});
        let timer: ReturnType<typeof setTimeout> | undefined;
        const status = await Promise.race([
          announcer.status,
          new Promise<undefined>((r) => timer = setTimeout(() => r(undefined), 5000)),
        ]);
        clearTimeout(timer);
        if (!status) announcer.kill("SIGKILL");
        await announcer.status;
      }
      await run("ip", ["netns", "del", NS_A]);
      await run("ip", ["netns", "del", NS_B]);
    }
  },
});
