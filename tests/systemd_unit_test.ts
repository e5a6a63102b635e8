/**
 * The systemd unit keeps SIGUSR1 away from the service: Deno opens an unauthenticated debugger
 * on 127.0.0.1:9229 when a process gets that signal, and no Deno option prevents it. The unit
 * runs ess as its own dynamic user (no other user can signal it) and denies the debugger its
 * port. systemd-analyze, where installed, checks that systemd reads every line.
 */
import assert from "node:assert/strict";
import { peerCheck } from "./_peers.ts";

const UNIT = new URL("../systemd/ess-mqtt.service", import.meta.url);

/** The unit's `[Service]` settings, as `key=value` lines. */
async function serviceLines(): Promise<string[]> {
  const text = await Deno.readTextFile(UNIT);
  const service = text.split(/^\[Service\]$/m)[1]!.split(/^\[/m)[0]!;
  return service.split("\n").map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("#"));
}

function systemdAnalyze(): string | undefined {
  for (const dir of ["/usr/bin", "/bin", "/usr/local/bin"]) {
    try {
      if (Deno.statSync(`${dir}/systemd-analyze`).isFile) return `${dir}/systemd-analyze`;
    } catch {
      continue;
    }
  }
  return undefined;
}

Deno.test("the systemd unit keeps SIGUSR1 and the debugger's port from the service", async () => {
  const lines = await serviceLines();
  assert.ok(lines.includes("DynamicUser=yes"), "only the service's own user may signal it");
  assert.ok(lines.includes("SocketBindDeny=tcp:9229"), "the debugger cannot listen");
});

const ANALYZE = systemdAnalyze();
const analyze = peerCheck(
  "systemd-analyze",
  ANALYZE ? undefined : "systemd-analyze is not installed",
);

Deno.test({
  name: `systemd-analyze reads every line of the unit${analyze.label}`,
  ignore: analyze.ignore,
  async fn() {
    analyze.assertPresent();
    // verify wants the program to exist: the same unit, with a program that does.
    const dir = await Deno.makeTempDir({ prefix: "ess-unit-" });
    try {
      const unit = `${dir}/ess-mqtt.service`;
      const text = await Deno.readTextFile(UNIT);
      await Deno.writeTextFile(unit, text.replace(/^ExecStart=\S+/m, "ExecStart=/bin/true"));
      const run = await new Deno.Command(ANALYZE!, {
        args: ["verify", unit],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const said = new TextDecoder().decode(run.stderr) + new TextDecoder().decode(run.stdout);
      assert.equal(said.trim(), "", said);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
