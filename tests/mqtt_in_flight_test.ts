/**
 * The MQTT client's requests in flight (lib/mqtt/_in_flight.ts), without a socket: the cap, the
 * order of those waiting for a place, packet identifiers, and what a broker's wrong answer does.
 */
import { deepEqual, equal, notEqual, ok as assert, throws } from "node:assert/strict";
import { InFlight, MAX_IN_FLIGHT, type Pending } from "../lib/mqtt/_in_flight.ts";
import { MqttProtocolError } from "../lib/mqtt/_packet.ts";
import { rejectsWith } from "./_assert.ts";

const never = () => {
  throw new Error("overdue");
};

/** A request that must have been given its place at once. */
function placed(inFlight: InFlight, kind: "puback" | "suback" = "puback", filters = 0): Pending {
  const pending = inFlight.add(kind, filters, 60_000, never);
  if (pending instanceof Promise) throw new Error("no place at once");
  return pending;
}

/** Answers every request `pendings` holds and waits for the answers. */
async function answerAll(inFlight: InFlight, pendings: readonly Pending[]): Promise<void> {
  for (const p of pendings) inFlight.answer("puback", p.packetId, []);
  await Promise.all(pendings.map((p) => p.answered));
}

Deno.test("InFlight", async (t) => {
  await t.step(`should hold at most ${MAX_IN_FLIGHT}, and place the rest in order`, async () => {
    const inFlight = new InFlight();
    const first = Array.from({ length: MAX_IN_FLIGHT }, () => placed(inFlight));
    const later = Array.from(
      { length: 3 },
      () => inFlight.add("puback", 0, 60_000, never) as Promise<Pending>,
    );
    assert(later.every((p) => p instanceof Promise));
    equal(inFlight.size, MAX_IN_FLIGHT);
    const order: number[] = [];
    later.forEach((p, i) => p.then(() => order.push(i)));
    inFlight.answer("puback", first[1]!.packetId, []);
    inFlight.answer("puback", first[0]!.packetId, []);
    await Promise.resolve();
    deepEqual(order, [0, 1], "first come first served");
    const newcomer = inFlight.add("puback", 0, 60_000, never);
    assert(newcomer instanceof Promise, "no overtaking those who wait");
    inFlight.answer("puback", first[2]!.packetId, []);
    inFlight.answer("puback", first[3]!.packetId, []);
    await newcomer;
    deepEqual(order, [0, 1, 2]);
    const all = [...first.slice(4), ...await Promise.all(later), await newcomer];
    equal(new Set(all.map((p) => p.packetId)).size, all.length, "an identifier each");
    await answerAll(inFlight, all);
    equal(inFlight.size, 0);
  });

  await t.step("should never cap above MAX_IN_FLIGHT, nor below one", async () => {
    for (const [max, cap] of [[1_000_000, MAX_IN_FLIGHT], [0, 1]] as const) {
      const inFlight = new InFlight(max);
      const all = Array.from({ length: cap }, () => placed(inFlight));
      const over = inFlight.add("puback", 0, 60_000, never);
      assert(over instanceof Promise, `${max}: the place after ${cap} waits`);
      await answerAll(inFlight, all);
      await answerAll(inFlight, [await over]);
    }
  });

  await t.step("should give identifiers from 1 to 65535, never 0 nor one in use", async () => {
    const inFlight = new InFlight();
    const held = placed(inFlight);
    equal(held.packetId, 1);
    const seen = new Set<number>();
    for (let i = 0; i < 70_000; i++) {
      const p = placed(inFlight);
      notEqual(p.packetId, 0);
      notEqual(p.packetId, held.packetId, `request ${i}`);
      seen.add(p.packetId);
      await answerAll(inFlight, [p]);
    }
    equal(seen.size, 65_534, "every other identifier, after wrapping round");
    await answerAll(inFlight, [held]);
  });

  await t.step(
    "should fail those in flight and those waiting when the connection is lost",
    async () => {
      const inFlight = new InFlight(1);
      const first = placed(inFlight);
      const second = inFlight.add("puback", 0, 60_000, never);
      inFlight.fail(new Error("Lost the connection"));
      await rejectsWith(() => first.answered, Error, /Lost the connection/);
      await rejectsWith(() => Promise.resolve(second), Error, /Lost the connection/);
      equal(inFlight.size, 0);
      placed(inFlight);
    },
  );

  await t.step("should pass on the place of a request that was never sent", async () => {
    const inFlight = new InFlight(1);
    const first = placed(inFlight);
    const second = inFlight.add("puback", 0, 60_000, never);
    inFlight.cancel(first.packetId);
    const { packetId } = await second;
    equal(inFlight.size, 1);
    inFlight.answer("puback", packetId, []);
  });

  await t.step("should settle only when those waiting for a place are answered too", async () => {
    const inFlight = new InFlight(1);
    const first = placed(inFlight);
    const second = inFlight.add("puback", 0, 60_000, never);
    let settled = false;
    const all = inFlight.settled().then(() => settled = true);
    inFlight.answer("puback", first.packetId, []);
    const { packetId } = await second;
    // Every promise reaction runs before a timer: whatever was to settle has.
    await new Promise((resolve) => setTimeout(resolve, 0));
    equal(settled, false, "the second is in flight now");
    inFlight.answer("puback", packetId, []);
    await all;
    equal(settled, true);
  });

  await t.step("should throw on a SUBACK that does not answer each filter", async () => {
    const inFlight = new InFlight();
    const subscription = placed(inFlight, "suback", 2);
    throws(
      () => inFlight.answer("suback", subscription.packetId, [1]),
      (err: Error) =>
        err instanceof MqttProtocolError &&
        err.message ===
          "the broker answered a subscription to 2 topic filters with 1 return code",
    );
    throws(
      () => inFlight.answer("suback", subscription.packetId, [1, 1, 1]),
      /with 3 return codes/,
    );
    equal(inFlight.size, 1, "still waiting: the session ends, and fails it");
    inFlight.answer("puback", subscription.packetId, []);
    equal(inFlight.size, 1, "a PUBACK does not answer a subscription");
    inFlight.answer("suback", subscription.packetId, [0, 0x80]);
    deepEqual(await subscription.answered, [0, 0x80]);
  });

  await t.step("should call overdue when no answer comes in time", async () => {
    const inFlight = new InFlight();
    const { promise, resolve } = Promise.withResolvers<void>();
    const pending = inFlight.add("puback", 0, 10, resolve);
    await promise;
    inFlight.fail(new Error("the broker did not acknowledge"));
    await rejectsWith(() => Promise.resolve(pending).then((p) => p.answered), Error, /acknowledge/);
  });
});
