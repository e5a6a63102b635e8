/**
 * Announces one LG ESS by mDNS until stdin closes: `deno run … tests/_mdns_announcer.ts NAME
 * ADDRESS PORT`. Prints `ready` once it answers. Run only inside a test's network namespace.
 *
 * @module
 */
import { announce } from "../lib/mdns.ts";

const [name = "", address = "", port = "443"] = Deno.args;
const announcer = announce({ name, address, port: Number(port), interfaceAddress: address });
await announcer.ready;
await Deno.stdout.write(new TextEncoder().encode("ready\n"));
for await (const _ of Deno.stdin.readable) { /* runs until the test closes stdin */ }
await announcer.close();
