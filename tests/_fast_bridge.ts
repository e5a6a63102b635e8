/**
 * The bridge as `ess mqtt` runs it (EssClient over the device transport, ess's own MQTT client,
 * the Bridge), at a poll interval the CLI does not offer: tests/mqtt_bench.ts runs it as its own
 * process, with the binary's flags, to see whether memory stays flat over tens of thousands of
 * polls.
 *
 * Usage: `deno run $(cat run-flags.txt) tests/_fast_bridge.ts HOST PASSWORD FINGERPRINT BROKER_URL`
 *
 * @module
 */
import { sleep } from "../lib/backoff.ts";
import { EssClient } from "../lib/device/client.ts";
import { createDeviceFetch } from "../lib/device/transport.ts";
import { createLogger } from "../lib/log.ts";
import { Bridge } from "../lib/mqtt/bridge.ts";
import { connectMqtt } from "../lib/mqtt/client.ts";
import { BRIDGE_OPTIONS } from "./_bridge_fakes.ts";

if (import.meta.main) {
  const [host, password, fingerprint, url] = Deno.args;
  if (!host || !password || !fingerprint || !url) {
    throw new Error("usage: _fast_bridge.ts HOST PASSWORD FINGERPRINT BROKER_URL");
  }
  const logger = createLogger("warning", (line) => {
    Deno.stderr.writeSync(new TextEncoder().encode(`fast bridge: ${line}\n`));
  });
  const fetch = createDeviceFetch({ fingerprint });
  const stop = new AbortController();
  Deno.addSignalListener("SIGTERM", () => stop.abort());
  const bridge = new Bridge({
    device: new EssClient({ host, password, fetch, logger }),
    mqtt: connectMqtt({ url, clientId: `ess-fast-${Deno.pid}` }),
    options: { ...BRIDGE_OPTIONS, intervalMs: 1 },
    logger,
    now: Date.now,
    sleep,
    random: Math.random,
  });
  await bridge.run(stop.signal);
  fetch.close();
}
