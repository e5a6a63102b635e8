/**
 * `ess simulate --mdns` for real: the simulator announces itself in one private network
 * namespace, and `ess discover` and `ess data` (without --host) find it from another. Multicast
 * never leaves the two namespaces (see tests/_netns.ts).
 */
import assert from "node:assert/strict";
import { runCli, spawnCli } from "./_cli.ts";
import { createNetnsPair, netnsUnavailable } from "./_netns.ts";
import { readUntil } from "./_wait.ts";
import { peerCheck } from "./_peers.ts";

const netns = peerCheck("netns", await netnsUnavailable());
const PORT = 8443;
const NAME = "SIM0000000005";

Deno.test({
  name: `ess simulate --mdns across two network namespaces${netns.label}`,
  ignore: netns.ignore,
  async fn(t) {
    netns.assertPresent();
    const pair = await createNetnsPair(`ess-s-${Deno.pid}`, "10.213.2");
    let sim: Deno.ChildProcess | undefined;
    try {
      sim = spawnCli([
        "simulate",
        "--mdns",
        "--host",
        pair.a.address,
        "--port",
        String(PORT),
        "--firmware",
        "new",
        "--seed",
        "5",
      ], { netns: pair.a.ns });
      const reader = sim.stdout.pipeThrough(new TextDecoderStream()).getReader();
      const banner = await readUntil(reader, (text) => /\nmdns: .+\n/.test(text), {
        what: "the simulator's mdns line",
      }).finally(() => reader.cancel());
      assert.match(
        banner,
        new RegExp(`^mdns: +LGE_ESS-${NAME}\\._pmsctrl\\._tcp\\.local\\.$`, "m"),
      );

      await t.step("should be found by ess discover", async () => {
        const r = await runCli(["discover", "--json", "--first", "--timeout", "10"], {
          netns: pair.b.ns,
        });
        assert.equal(r.code, 0, r.stderr);
        const [found] = JSON.parse(r.stdout);
        assert.equal(found.name, NAME);
        assert.equal(found.host, `${pair.a.address}:${PORT}`);
      });

      await t.step("should serve a device command that found it by mDNS", async () => {
        const r = await runCli(["data", "--only", "batt", "--password", "a1b2c3d4e5f6"], {
          netns: pair.b.ns,
        });
        assert.equal(r.code, 0, r.stderr);
        assert.equal(JSON.parse(r.stdout).batt.alg_setting, "0");
      });
    } finally {
      if (sim) {
        sim.kill("SIGTERM");
        const [status, stderr] = await Promise.all([sim.status, new Response(sim.stderr).text()]);
        assert.equal(status.code, 0, stderr);
      }
      await pair.close();
    }
  },
});

Deno.test({
  name: `ess simulate --devices 2 --mdns announces every device${netns.label}`,
  ignore: netns.ignore,
  async fn() {
    netns.assertPresent();
    const pair = await createNetnsPair(`ess-d-${Deno.pid}`, "10.213.4");
    let sim: Deno.ChildProcess | undefined;
    try {
      sim = spawnCli(
        ["simulate", "--devices", "2", "--mdns", "--host", pair.a.address, "--port", String(PORT)],
        { netns: pair.a.ns },
      );
      const reader = sim.stdout.pipeThrough(new TextDecoderStream()).getReader();
      await readUntil(reader, (text) => text.includes("Stop with Ctrl+C."), {
        what: "the simulators' banner",
      }).finally(() => reader.cancel());
      const r = await runCli(["discover", "--json", "--timeout", "5"], { netns: pair.b.ns });
      assert.equal(r.code, 0, r.stderr);
      const found = (JSON.parse(r.stdout) as { name: string; host: string }[])
        .map(({ name, host }) => `${name} ${host}`).sort();
      assert.deepEqual(found, [
        `SIM0000000001 ${pair.a.address}:${PORT}`,
        `SIM0000000002 ${pair.a.address}:${PORT + 1}`,
      ]);
    } finally {
      if (sim) {
        sim.kill("SIGTERM");
        const [status, stderr] = await Promise.all([sim.status, new Response(sim.stderr).text()]);
        assert.equal(status.code, 0, stderr);
      }
      await pair.close();
    }
  },
});
