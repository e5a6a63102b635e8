/**
 * A hostile mDNS peer for tests, until stdin closes: `deno run … tests/_mdns_hostile.ts MODE
 * INTERFACE [ARGS]`, run only inside a test's network namespace (it sends multicast). It prints
 * `ready` once its socket listens.
 *
 * - `loopback NAME PORT`: answers every query as the LG ESS called NAME, but at 127.0.0.1 with
 *   TXT `https_port=PORT`: whoever believes it sends the device password to their own machine.
 * - `flood PER_SECOND`: announces PER_SECOND made-up LG ESS a second, each complete (PTR, SRV,
 *   TXT, A), each under a new name.
 *
 * @module
 */
// @ts-types="@types/dns-packet"
import type { Answer } from "dns-packet";
import { loadMulticastDns, MDNS_PORT } from "../lib/device/mdns.ts";
import { announcementRecords, answerQuestions } from "../lib/device/mdns_announce.ts";

const [mode = "", iface = "", ...args] = Deno.args;
const multicastDns = await loadMulticastDns();
const mdns = multicastDns({ bind: "0.0.0.0", interface: iface, port: MDNS_PORT });
mdns.on("error", () => {});
mdns.on("warning", () => {});
let timer: ReturnType<typeof setInterval> | undefined;

if (mode === "loopback") {
  const [name = "TRAP", port = "8443"] = args;
  const records = announcementRecords({
    name,
    port: Number(port),
    hostname: "lge-ess-trap.local",
    address: "127.0.0.1",
  });
  mdns.on("query", (query) => {
    const reply = answerQuestions(records, query.questions ?? []);
    if (reply.answers.length > 0) mdns.respond(reply);
  });
  // Announced again and again, as a poisoner would, so that no browse misses it.
  timer = setInterval(() => mdns.respond({ answers: records }), 200);
} else if (mode === "flood") {
  const perSecond = Number(args[0] ?? "2000");
  const perPacket = 20;
  let next = 0;
  timer = setInterval(() => {
    const answers: Answer[] = [];
    for (let i = 0; i < perPacket; i++, next++) {
      answers.push(...announcementRecords({
        name: `FLOOD${next}`,
        port: 443,
        hostname: `flood-${next}.local`,
        address: `10.99.${(next >> 8) & 255}.${(next & 255) || 1}`,
      }));
    }
    mdns.respond({ answers });
  }, 1000 / (perSecond / perPacket));
} else {
  throw new Error(`unknown mode ${JSON.stringify(mode)}`);
}

await new Promise<void>((resolve) => mdns.on("ready", () => resolve()));
await Deno.stdout.write(new TextEncoder().encode("ready\n"));
for await (const _ of Deno.stdin.readable) { /* runs until the test closes stdin */ }
clearInterval(timer);
await new Promise<void>((resolve) => mdns.destroy(() => resolve()));
