/**
 * A simulated LG ESS announced by mDNS, until stdin closes: `deno run … tests/_mdns_announcer.ts
 * NAME ADDRESS PORT`. It listens on ADDRESS:PORT and prints `ready` once it serves and answers
 * mDNS. Run only inside a test's network namespace: it sends multicast.
 *
 * @module
 */
import { announce } from "../lib/device/mdns_announce.ts";
import { startSimulator } from "../lib/sim/simulator.ts";

const [name = "", address = "", port = "443"] = Deno.args;
let announcer: ReturnType<typeof announce> | undefined;
const sim = await startSimulator({
  hostname: address,
  port: Number(port),
  name,
  mdns: { interfaceAddress: address },
  announce: (info) => announcer = announce(info),
});
await announcer?.ready;
await Deno.stdout.write(new TextEncoder().encode("ready\n"));
for await (const _ of Deno.stdin.readable) { /* runs until the test closes stdin */ }
await sim.close();
