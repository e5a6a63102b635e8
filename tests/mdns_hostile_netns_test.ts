/**
 * `ess discover` and `ess data` against hostile mDNS answers, for real: a peer in one private
 * network namespace answers as an LG ESS at 127.0.0.1, or floods the network with made-up ones,
 * and the CLI runs in the other. Multicast never leaves the two namespaces (see tests/_netns.ts).
 */
import { equal, match, ok } from "node:assert/strict";
import { PERMISSIONS, runCli } from "./_cli.ts";
import { createNetnsPair, type NetnsPair, netnsUnavailable } from "./_netns.ts";
import { peerCheck } from "./_peers.ts";

const netns = peerCheck("netns", await netnsUnavailable());
const ROOT = new URL("..", import.meta.url).pathname;
const MAX_FOUND_DEVICES = 64;

/** Starts tests/_mdns_hostile.ts in namespace A; resolves once it says `ready`. */
async function hostilePeer(pair: NetnsPair, args: string[]): Promise<Deno.ChildProcess> {
  const peer = new Deno.Command("ip", {
    args: [
      "netns",
      "exec",
      pair.a.ns,
      Deno.execPath(),
      "run",
      "--no-prompt",
      ...PERMISSIONS,
      `${ROOT}tests/_mdns_hostile.ts`,
      args[0]!,
      pair.a.address,
      ...args.slice(1),
    ],
    cwd: ROOT,
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = peer.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let said = "";
  const deadline = setTimeout(() => reader.cancel(), 30_000);
  while (!said.includes("\n")) {
    const chunk = await reader.read();
    if (chunk.done) break;
    said += chunk.value;
  }
  clearTimeout(deadline);
  await reader.cancel();
  equal(said.trim(), "ready", "the hostile peer starts");
  return peer;
}

/** Ends the peer: closes its stdin, and kills it if it has not gone within 5 s. */
async function stop(peer: Deno.ChildProcess): Promise<void> {
  await peer.stdin.close().catch(() => {});
  let timer: ReturnType<typeof setTimeout> | undefined;
  const status = await Promise.race([
    peer.status,
    new Promise<undefined>((resolve) => timer = setTimeout(() => resolve(undefined), 5000)),
  ]);
  clearTimeout(timer);
  if (!status) peer.kill("SIGKILL");
  await peer.status;
}

Deno.test({
  name: `ess against hostile mDNS answers across two network namespaces${netns.label}`,
  ignore: netns.ignore,
  async fn(t) {
    netns.assertPresent();
    const pair = await createNetnsPair(`ess-h-${Deno.pid}`, "10.213.3");
    const inB = (args: string[]) =>
      runCli(args, { netns: pair.b.ns, env: { ESS_CONFIG: "/dev/null" } });
    try {
      await t.step(
        "should not send the password to an LG ESS that says it is 127.0.0.1",
        async () => {
          const peer = await hostilePeer(pair, ["loopback", "TRAP", "8443"]);
          try {
            const found = await inB(["discover", "--json", "--timeout", "2"]);
            equal(found.code, 1, found.stderr);
            equal(found.stdout.trim(), "[]");
            const r = await inB(["data", "--name", "TRAP", "--password", "a1b2c3d4e5f6"]);
            equal(r.code, 1);
            match(r.stderr, /^ess: No LG ESS named "TRAP" answered on mDNS within 3 s/);
            ok(!r.stderr.includes("127.0.0.1"), r.stderr);
          } finally {
            await stop(peer);
          }
        },
      );

      await t.step(
        `should list at most ${MAX_FOUND_DEVICES} of a flood of 2,000 made-up devices a second`,
        async () => {
          const peer = await hostilePeer(pair, ["flood", "2000"]);
          try {
            const found = await inB(["discover", "--json", "--timeout", "2"]);
            equal(found.code, 0, found.stderr);
            const devices = JSON.parse(found.stdout) as { name: string }[];
            equal(devices.length, MAX_FOUND_DEVICES);
            equal(new Set(devices.map((d) => d.name)).size, MAX_FOUND_DEVICES, "each once");
            equal(
              found.stderr,
              `ess: warning: more than ${MAX_FOUND_DEVICES} LG ESS answered on mDNS; only the ` +
                `first ${MAX_FOUND_DEVICES} are listed (is something on the network flooding ` +
                "mDNS?)\n",
            );
            const r = await inB(["data", "--password", "a1b2c3d4e5f6"]);
            equal(r.code, 2, r.stderr);
            const lines = r.stderr.trim().split("\n");
            match(
              lines.at(-1)!,
              /^ess: Several LG ESS answered on mDNS: .* and \d+ more; pick one/,
            );
            ok(r.stderr.length < 1000, `${r.stderr.length} characters on stderr`);
          } finally {
            await stop(peer);
          }
        },
      );
    } finally {
      await pair.close();
    }
  },
});
