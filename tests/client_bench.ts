/**
 * How long ess takes to read the device, against the simulator on loopback: one login and all
 * five states (what `ess data` does), and one state on a live session (what a poll does).
 * Issue 2's goal: `ess data` prints all five states "in well under a second".
 *
 * @module
 */
import { EssClient } from "../lib/device/client.ts";
import { startSimulator } from "../lib/sim/simulator.ts";
import { createDeviceFetch } from "../lib/device/transport.ts";

const sim = await startSimulator({ port: 0 });
const session = () => {
  const fetch = createDeviceFetch();
  return { fetch, client: new EssClient({ host: sim.host, password: sim.password, fetch }) };
};
const live = session();
await live.client.login();

Deno.bench("ess data: connect, log in, read all five states", async () => {
  const { fetch, client } = session();
  try {
    await client.readAll();
  } finally {
    fetch.close();
  }
});

Deno.bench("poll: read home on a live session", async () => {
  await live.client.read("home");
});

globalThis.addEventListener("unload", () => {
  live.fetch.close();
  void sim.close();
});
