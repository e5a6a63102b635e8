/**
 * Several simulated devices at once, each its own: registration (and so serial) number, seed,
 * password and port, on loopback with the clock standing still.
 *
 * @module
 */
import { type Simulator, startSimulator } from "../lib/sim/simulator.ts";
import { NOON } from "./_world.ts";

/** `count` simulators, `SIM0000000001` with password `a1b2c3d4e501` and so on. */
export async function startSims(count: number): Promise<Simulator[]> {
  const sims: Simulator[] = [];
  try {
    for (let i = 1; i <= count; i++) {
      sims.push(
        await startSimulator({
          now: () => NOON,
          seed: i,
          password: `a1b2c3d4e5${String(i).padStart(2, "0")}`,
        }),
      );
    }
  } catch (err) {
    await Promise.all(sims.map((s) => s.close()));
    throw err;
  }
  return sims;
}
