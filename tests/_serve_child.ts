/**
 * The process `tests/serve_bench.ts` measures: a source polling the simulator at HOST every
 * second, and `ess serve`'s server on a free loopback port, whose URL it prints.
 *
 * `deno run <run-flags.txt> tests/_serve_child.ts HOST PASSWORD FINGERPRINT`
 *
 * @module
 */
import { startServer } from "../lib/serve/server.ts";
import { PollingSource } from "./_serve_source.ts";

if (import.meta.main) {
  const [host = "", password = "", fingerprint = ""] = Deno.args;
  const source = new PollingSource({ host, password, fingerprint }, 1000);
  await source.start();
  const server = startServer({ hostname: "127.0.0.1", port: 0 }, {
    source,
    controlToken: "bench-control-token-0123",
    intervalSeconds: 1,
  });
  Deno.stdout.writeSync(new TextEncoder().encode(`${server.url}\n`));
}
