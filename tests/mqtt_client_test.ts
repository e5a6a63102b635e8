/**
 * connectMqtt() against a broker that misbehaves on purpose: a loopback listener speaking raw
 * bytes, so refusals, silence, split packets and QoS 2 are tested for real. The well-behaved
 * brokers (aedes, mosquitto) are in mqtt_test.ts.
 */
import { deepEqual, equal, match, ok as assert } from "node:assert/strict";
import { EssError } from "../lib/errors.ts";
import { encodePublish } from "../lib/mqtt/_packet.ts";
import { connectMqtt, type MqttConnection, type MqttConnectOptions } from "../lib/mqtt/client.ts";
import { MAX_IN_FLIGHT } from "../lib/mqtt/_in_flight.ts";
import { rejectsWith } from "./_assert.ts";
import { waitFor, withDeadline } from "./_wait.ts";

/** One packet as the client sent it. */
interface Frame {
  type: number;
  flags: number;
  body: Uint8Array;
}

const hex = (text: string) =>
  Uint8Array.from(text.split(/\s+/).filter(Boolean), (h) => parseInt(h, 16));
const CONNACK_OK = hex("20 02 00 00");

/** One client connection at the fake broker. */
class Peer {
  #conn: Deno.Conn;
  #frames: Frame[] = [];
  #wake: (() => void) | undefined;
  #ended = false;
  readonly done: Promise<void>;

  constructor(conn: Deno.Conn) {
    this.#conn = conn;
    this.done = this.#read();
  }

  async #read(): Promise<void> {
    let pending = new Uint8Array(0);
    const buffer = new Uint8Array(4096);
    try {
      for (;;) {
        const n = await this.#conn.read(buffer);
        if (n === null) break;
        const data = new Uint8Array(pending.length + n);
        data.set(pending);
        data.set(buffer.subarray(0, n), pending.length);
        let at = 0;
        for (;;) {
          let length = 0;
          let i = 1;
          for (let shift = 1; at + i < data.length; i++, shift *= 128) {
            length += (data[at + i]! & 0x7f) * shift;
            if ((data[at + i]! & 0x80) === 0) break;
          }
          if (at + i >= data.length || at + i + 1 + length > data.length) break;
          const body = data.slice(at + i + 1, at + i + 1 + length);
          this.#frames.push({ type: data[at]! >> 4, flags: data[at]! & 15, body });
          at += i + 1 + length;
        }
        pending = data.slice(at);
        this.#wake?.();
      }
    } catch {
      // Closed by the test.
    }
    this.#ended = true;
    this.#wake?.();
  }

  /** The next packet from the client, or `undefined` once it has hung up. */
  async next(): Promise<Frame | undefined> {
    await withDeadline(
      (async () => {
        while (this.#frames.length === 0 && !this.#ended) {
          await new Promise<void>((resolve) => this.#wake = resolve);
        }
      })(),
      { what: "a packet from the client" },
    );
    return this.#frames.shift();
  }

  async send(bytes: Uint8Array): Promise<void> {
    for (let at = 0; at < bytes.length;) at += await this.#conn.write(bytes.subarray(at));
  }

  async close(): Promise<void> {
    try {
      this.#conn.close();
    } catch {
      // The client's side ended it first.
    }
    await this.done;
  }
}

/** A loopback listener that hands each connection to the test. */
class FakeBroker {
  #listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  #peers: Peer[] = [];
  #stalled: Deno.Conn[] = [];
  readonly url = `mqtt://127.0.0.1:${(this.#listener.addr as Deno.NetAddr).port}`;

  async accept(): Promise<Peer> {
    const peer = new Peer(await this.#listener.accept());
    this.#peers.push(peer);
    return peer;
  }

  /** Accepts a connection, answers its CONNECT, and then reads nothing: a stalled broker. */
  async acceptStalled(): Promise<void> {
    const conn = await this.#listener.accept();
    this.#stalled.push(conn);
    await conn.read(new Uint8Array(4096));
    await conn.write(CONNACK_OK);
  }

  async close(): Promise<void> {
    this.#listener.close();
    for (const conn of this.#stalled) {
      try {
        conn.close();
      } catch {
        // The client's side ended it first.
      }
    }
    await Promise.all(this.#peers.map((p) => p.close()));
  }
}

interface Events {
  log: string[];
  messages: [string, string, boolean][];
  warnings: string[];
}

function client(
  broker: FakeBroker,
  extra: Partial<MqttConnectOptions> = {},
): [MqttConnection, Events] {
  const events: Events = { log: [], messages: [], warnings: [] };
  const connection = connectMqtt({
    url: broker.url,
    clientId: "c",
    reconnectBaseMs: 20,
    reconnectMaxMs: 40,
    random: () => 0.5,
    // The fake broker never hangs up after DISCONNECT.
    closeTimeoutMs: 100,
    ...extra,
  });
  connection.listen({
    connected: () => events.log.push("connected"),
    disconnected: (reason) => events.log.push(`disconnected: ${reason}`),
    message: (topic, payload, retained) => events.messages.push([topic, payload, retained]),
    warning: (message) => events.warnings.push(message),
  });
  return [connection, events];
}

/** A client of a new fake broker, with `extra` options, for `fn`; both closed again after it. */
async function withClient(
  extra: Partial<MqttConnectOptions>,
  fn: (h: { broker: FakeBroker; connection: MqttConnection; events: Events }) => Promise<void>,
): Promise<void> {
  const broker = new FakeBroker();
  const [connection, events] = client(broker, extra);
  try {
    await fn({ broker, connection, events });
  } finally {
    await connection.close();
    await broker.close();
  }
}

/** The payload of a PUBLISH the client sent, as text. */
function published(frame: Frame): string {
  const topicLength = (frame.body[0]! << 8) | frame.body[1]!;
  const qos = (frame.flags >> 1) & 3;
  return new TextDecoder().decode(frame.body.subarray(2 + topicLength + (qos > 0 ? 2 : 0)));
}

/** The packet identifier of a QoS 1 PUBLISH the client sent. */
function packetIdOf(frame: Frame): number {
  const at = 2 + ((frame.body[0]! << 8) | frame.body[1]!);
  return (frame.body[at]! << 8) | frame.body[at + 1]!;
}

/** Accepts the next connection, checks its CONNECT, and accepts it. */
async function handshake(broker: FakeBroker): Promise<Peer> {
  const peer = await broker.accept();
  equal((await peer.next())?.type, 1);
  await peer.send(CONNACK_OK);
  return peer;
}

Deno.test("connectMqtt() with a broker that misbehaves", async (t) => {
  await t.step("should send CONNECT with credentials and will, byte for byte", async () => {
    await withClient({
      username: "u",
      password: "p",
      keepaliveSeconds: 30,
      will: { topic: "w", payload: "off", retain: true, qos: 1 },
    }, async ({ broker }) => {
      const peer = await broker.accept();
      const connect = await peer.next();
      deepEqual(connect, {
        type: 1,
        flags: 0,
        body: hex(
          "00 04 4d 51 54 54 04 ee 00 1e 00 01 63 00 01 77 00 03 6f 66 66 00 01 75 00 01 70",
        ),
      });
    });
  });

  await t.step("should say why the broker refused the connection, and try again", async () => {
    await withClient({}, async ({ broker, connection, events }) => {
      for (const code of ["04", "05"]) {
        const peer = await broker.accept();
        await peer.next();
        await peer.send(hex(`20 02 00 ${code}`));
      }
      await waitFor(() => events.log.length === 2, { what: "two refusals" });
      deepEqual(events.log, [
        "disconnected: the broker refused the user name or password",
        "disconnected: the broker says this client is not authorised to connect",
      ]);
      await handshake(broker);
      await waitFor(() => connection.connected, { what: "the third try" });
      equal(events.log.at(-1), "connected");
    });
  });

  await t.step("should read packets coalesced in one read and split over many", async () => {
    await withClient({}, async ({ broker, events }) => {
      const peer = await broker.accept();
      await peer.next();
      // CONNACK, a retained QoS 1 message and a live QoS 0 one, in one write.
      await peer.send(hex(
        "20 02 00 00  33 0a 00 03 61 2f 62 00 07 6f 6c 64  30 06 00 01 63 c3 a4 21",
      ));
      const ack = await peer.next();
      deepEqual(ack, { type: 4, flags: 0, body: hex("00 07") });
      for (const byte of hex("30 05 00 01 64 6f 6b")) await peer.send(Uint8Array.of(byte));
      await waitFor(() => events.messages.length === 3, { what: "three messages" });
      deepEqual(events.messages, [["a/b", "old", true], ["c", "ä!", false], ["d", "ok", false]]);
    });
  });

  await t.step("should deliver a QoS 2 message once and complete its handshake", async () => {
    await withClient({}, async ({ broker, events }) => {
      const peer = await handshake(broker);
      await peer.send(hex("34 06 00 01 71 00 09 31"));
      deepEqual(await peer.next(), { type: 5, flags: 0, body: hex("00 09") });
      // The broker did not see the PUBREC, so it sends the message again, marked dup.
      await peer.send(hex("3c 06 00 01 71 00 09 31"));
      deepEqual(await peer.next(), { type: 5, flags: 0, body: hex("00 09") });
      await peer.send(hex("62 02 00 09"));
      deepEqual(await peer.next(), { type: 7, flags: 0, body: hex("00 09") });
      deepEqual(events.messages, [["q", "1", false]]);
    });
  });

  await t.step("should reject a refused subscription, naming the filter", async () => {
    await withClient({}, async ({ broker, connection }) => {
      const peer = await handshake(broker);
      await waitFor(() => connection.connected, { what: "connect" });
      const subscribed = connection.subscribe(["ok/#", "secret/#"]);
      const subscribe = await peer.next();
      equal(subscribe?.type, 8);
      equal(subscribe?.flags, 2);
      const id = subscribe!.body.subarray(0, 2);
      await peer.send(Uint8Array.of(0x90, 4, ...id, 0x01, 0x80));
      await rejectsWith(() => subscribed, EssError, /refused the subscription to secret\/#$/);
    });
  });

  await t.step(
    "should resolve QoS 1 on PUBACK and reject it when the connection drops",
    async () => {
      await withClient({}, async ({ broker, connection, events }) => {
        const peer = await handshake(broker);
        await waitFor(() => connection.connected, { what: "connect" });
        const first = connection.publish("s", "online", { qos: 1, retain: true });
        const publish = await peer.next();
        equal(publish?.flags, 3);
        await peer.send(Uint8Array.of(0x40, 2, ...publish!.body.subarray(3, 5)));
        await first;
        const second = connection.publish("s", "again", { qos: 1 });
        await peer.next();
        await peer.close();
        await rejectsWith(() => second, EssError, /Lost the connection to mqtt:\/\/127\.0\.0\.1/);
        await waitFor(() => events.log.length === 2, { what: "the disconnect" });
        match(events.log[1]!, /^disconnected: the broker closed the connection$/);
        equal(connection.connected, false);
        await connection.publish("s", "dropped", { qos: 1 });
        await handshake(broker);
        await waitFor(() => connection.connected, { what: "the reconnect" });
        deepEqual(events.log.filter((e) => e === "connected").length, 2);
      });
    },
  );

  await t.step("should ping and give up on a broker that stops answering", async () => {
    await withClient({
      keepaliveSeconds: 1,
      pingTimeoutMs: 100,
      reconnectBaseMs: 60_000,
    }, async ({ broker, events }) => {
      const peer = await handshake(broker);
      const started = Date.now();
      deepEqual(await peer.next(), { type: 12, flags: 0, body: new Uint8Array(0) });
      assert(Date.now() - started >= 900, "the first ping comes after the keepalive interval");
      await peer.send(hex("d0 00"));
      deepEqual(await peer.next(), { type: 12, flags: 0, body: new Uint8Array(0) });
      await waitFor(() => events.log.length === 2, { what: "the disconnect" });
      equal(events.log[1], "disconnected: the broker did not answer a ping within 0.1 s");
    });
  });

  await t.step("should not let a broker that stops reading hold publishing for ever", async () => {
    await withClient({
      keepaliveSeconds: 1,
      pingTimeoutMs: 500,
      reconnectBaseMs: 60_000,
    }, async ({ broker, connection, events }) => {
      await broker.acceptStalled();
      await waitFor(() => connection.connected, { what: "connect" });
      // The socket's buffers fill, then every publish waits for them: the ping queued behind
      // the values is never answered, and that ends the connection.
      const payload = "x".repeat(60_000);
      let published = 0;
      await withDeadline(
        (async () => {
          while (connection.connected) {
            await connection.publish("ess/json/home", payload);
            published++;
          }
        })(),
        { what: "the unanswered ping to end the connection" },
      );
      assert(published > 1, `${published} messages`);
      deepEqual(events.log, [
        "connected",
        "disconnected: the broker did not answer a ping within 0.5 s",
      ]);
    });
  });

  await t.step(
    "should give up on a broker that answers pings but never a QoS 1 message or a subscription",
    async () => {
      await withClient({
        keepaliveSeconds: 1,
        ackTimeoutMs: 2000,
        reconnectBaseMs: 20,
      }, async ({ broker, connection, events }) => {
        for (
          const [what, request] of [
            ["a message", () => connection.publish("ess/status", "online", { qos: 1 })],
            ["a subscription", () => connection.subscribe(["ess/control/#"])],
          ] as const
        ) {
          const peer = await handshake(broker);
          await waitFor(() => connection.connected, { what: "connect" });
          const waiting = request();
          equal((await peer.next())?.type, what === "a message" ? 3 : 8);
          // A ping comes after a second, before the acknowledgement is overdue: answered.
          deepEqual(await peer.next(), { type: 12, flags: 0, body: new Uint8Array(0) });
          await peer.send(hex("d0 00"));
          await rejectsWith(() => waiting, EssError, /Lost the connection to mqtt:\/\/127/);
          await waitFor(() => !connection.connected, { what: "the disconnect" });
          equal(
            events.log.at(-1),
            `disconnected: the broker did not acknowledge ${what} within 2 s`,
          );
        }
        await handshake(broker);
        await waitFor(() => connection.connected, { what: "the reconnect" });
      });
    },
  );

  await t.step(
    "should end a session on a malformed packet, say what it was, and reconnect",
    async () => {
      await withClient({}, async ({ broker, connection, events }) => {
        const garbage = [
          ["36 03 00 01 61", "PUBLISH with QoS 3"],
          ["30 04 00 05 61 62", "PUBLISH topic runs past the end"],
          ["30 04 00 02 ff fe", "PUBLISH topic is not UTF-8"],
          ["40 03 00 01 00", "PUBACK should be 2 bytes long, not 3"],
          ["50 02 00 01", "the broker sent PUBREC for a message never sent"],
          ["20 02 00 00", "the broker sent a second CONNACK"],
          ["c0 00", "a broker does not send packets of type 12"],
          // A command the client could not acknowledge: refused before it is delivered.
          [
            "32 17 00 12 65 73 73 2f 63 6f 6e 74 72 6f 6c 2f 61 63 74 69 76 65 00 00 31",
            "PUBLISH of QoS 1 with packet identifier 0",
          ],
          ["30 ff ff ff ff 7f", "a remaining length longer than four bytes"],
        ] as const;
        for (const [bytes, why] of garbage) {
          const peer = await handshake(broker);
          await waitFor(() => connection.connected, { what: "connect" });
          await peer.send(hex(bytes));
          await waitFor(() => !connection.connected, { what: `the disconnect after ${bytes}` });
          equal(events.log.at(-1), `disconnected: ${why}`);
        }
        await handshake(broker);
        await waitFor(() => connection.connected, { what: "the reconnect" });
        deepEqual(events.messages, [], "nothing malformed was delivered");
      });
    },
  );

  await t.step("should end the session on a SUBACK that leaves out a filter", async () => {
    await withClient({}, async ({ broker, connection, events }) => {
      const peer = await handshake(broker);
      await waitFor(() => connection.connected, { what: "connect" });
      const subscribed = connection.subscribe(["ess/control/#", "homeassistant/status"]);
      const subscribe = await peer.next();
      const id = subscribe!.body.subarray(0, 2);
      await peer.send(Uint8Array.of(0x90, 3, ...id, 0x01));
      await rejectsWith(() => subscribed, EssError, /Lost the connection to mqtt:\/\/127/);
      await waitFor(() => !connection.connected, { what: "the disconnect" });
      equal(
        events.log.at(-1),
        "disconnected: the broker answered a subscription to 2 topic filters with 1 return code",
      );
    });
  });

  await t.step(
    `should keep at most ${MAX_IN_FLIGHT} messages unacknowledged and send the rest as acknowledgements come`,
    async () => {
      await withClient({ ackTimeoutMs: 60_000 }, async ({ broker, connection }) => {
        const peer = await handshake(broker);
        await waitFor(() => connection.connected, { what: "connect" });
        const count = MAX_IN_FLIGHT + 4;
        const sent = Promise.allSettled(Array.from(
          { length: count },
          (_, i) => connection.publish("ess/status", `m${i}`, { qos: 1 }),
        ));
        // Not held back: it proves that the messages past the limit were.
        await connection.publish("ess/sentinel", "after", { qos: 0 });
        const frames: Frame[] = [];
        for (let i = 0; i <= MAX_IN_FLIGHT; i++) frames.push((await peer.next())!);
        deepEqual(
          frames.map(published),
          [...Array.from({ length: MAX_IN_FLIGHT }, (_, i) => `m${i}`), "after"],
        );
        const ids = frames.slice(0, -1).map(packetIdOf);
        equal(new Set(ids).size, MAX_IN_FLIGHT, "an identifier each");
        for (const id of ids.slice(0, 4)) {
          await peer.send(Uint8Array.of(0x40, 2, id >> 8, id & 255));
        }
        const rest: Frame[] = [];
        for (let i = 0; i < 4; i++) rest.push((await peer.next())!);
        deepEqual(rest.map(published), [
          `m${count - 4}`,
          `m${count - 3}`,
          `m${count - 2}`,
          `m${count - 1}`,
        ]);
        for (const id of [...ids.slice(4), ...rest.map(packetIdOf)]) {
          await peer.send(Uint8Array.of(0x40, 2, id >> 8, id & 255));
        }
        deepEqual(
          (await sent).filter((r) => r.status !== "fulfilled"),
          [],
          "all acknowledged",
        );
      });
    },
  );

  await t.step(
    "should fail the messages waiting for a place when the broker acknowledges none in time",
    async () => {
      await withClient(
        { maxInFlight: 1, ackTimeoutMs: 200, reconnectBaseMs: 60_000 },
        async ({ broker, connection, events }) => {
          const peer = await handshake(broker);
          await waitFor(() => connection.connected, { what: "connect" });
          const first = connection.publish("ess/status", "online", { qos: 1 });
          const second = connection.publish("ess/status", "again", { qos: 1 });
          equal(published((await peer.next())!), "online");
          await rejectsWith(() => first, EssError, /Lost the connection/);
          await rejectsWith(() => second, EssError, /Lost the connection/);
          equal(
            events.log.at(-1),
            "disconnected: the broker did not acknowledge a message within 0.2 s",
          );
          equal(await peer.next(), undefined, "the second was never sent");
        },
      );
    },
  );

  await t.step("should take a 1 MB message that comes in 100-byte pieces", async () => {
    await withClient({}, async ({ broker, connection, events }) => {
      const peer = await handshake(broker);
      await waitFor(() => connection.connected, { what: "connect" });
      const payload = "y".repeat(1_000_000);
      const packet = encodePublish({ topic: "ess/json/home", payload, qos: 0, retain: false });
      for (let at = 0; at < packet.length; at += 100) {
        await peer.send(packet.subarray(at, at + 100));
      }
      await waitFor(() => events.messages.length === 1, { what: "the message" });
      equal(events.messages[0]![1], payload);
      deepEqual(events.log, ["connected"]);
    });
  });

  await t.step("should give up on a broker that never sends CONNACK", async () => {
    await withClient(
      { connectTimeoutMs: 100, reconnectBaseMs: 60_000 },
      async ({ broker, events }) => {
        const peer = await broker.accept();
        await peer.next();
        await waitFor(() => events.log.length === 1, { what: "the timeout" });
        deepEqual(events.log, ["disconnected: no answer from the broker within 0.1 s"]);
      },
    );
  });

  await t.step(
    "should acknowledge and discard a 2 MB message, warn once per topic, and stay connected",
    async () => {
      await withClient({}, async ({ broker, connection, events }) => {
        const peer = await handshake(broker);
        await waitFor(() => connection.connected, { what: "connect" });
        const huge = "x".repeat(2_000_000);
        for (const packetId of [9, 10]) {
          await peer.send(
            encodePublish({
              topic: "ess/control/active",
              payload: huge,
              qos: 1,
              retain: true,
              packetId,
            }),
          );
          deepEqual(await peer.next(), { type: 4, flags: 0, body: Uint8Array.of(0, packetId) });
        }
        await peer.send(
          encodePublish({ topic: "ess/control/active", payload: "on", qos: 0, retain: false }),
        );
        await waitFor(() => events.messages.length === 1, { what: "the next message" });
        deepEqual(events.messages, [["ess/control/active", "on", false]]);
        deepEqual(events.log, ["connected"], "one session throughout");
        equal(events.warnings.length, 1, events.warnings.join("\n"));
        match(
          events.warnings[0]!,
          /^discarded a message of 2,000,022 bytes on "ess\/control\/active" from mqtt:\/\/127\.0\.0\.1:\d+: ess takes messages of up to 1 MiB; it is retained, .* clear it with an empty retained message$/,
        );
        assert(!events.warnings[0]!.includes("xxx"), "the payload stays out of the log");
      });
    },
  );

  await t.step(
    "should back off and warn once when the broker keeps closing the session right after CONNACK",
    async () => {
      await withClient({
        clientId: "ess-kitchen",
        reconnectBaseMs: 100,
        reconnectMaxMs: 800,
      }, async ({ broker, connection, events }) => {
        const accepted: number[] = [];
        for (let i = 0; i < 5; i++) {
          const peer = await handshake(broker);
          accepted.push(Date.now());
          await waitFor(() => connection.connected, { what: "connect" });
          // What a broker does to the older of two clients with one id.
          await peer.close();
        }
        await waitFor(() => events.warnings.length === 1, { what: "the warning" });
        match(
          events.warnings[0]!,
          /closed the connection soon after accepting it 3 times in a row: another client with the id "ess-kitchen" is probably connected/,
        );
        equal(events.warnings.length, 1);
        // Jitter 0.5 makes the delays 75, 150, 300, 600 ms; a reset at every CONNACK kept 75.
        const gaps = accepted.slice(1).map((at, i) => at - accepted[i]!);
        assert(gaps[3]! >= 550, `the delays grow: ${gaps.join(", ")} ms`);
      });
    },
  );

  await t.step("should say to use mqtts:// when the broker answers in TLS", async () => {
    await withClient({ reconnectBaseMs: 60_000 }, async ({ broker, events }) => {
      const peer = await broker.accept();
      await peer.next();
      // A TLS alert: what a TLS listener sends back for a plain CONNECT.
      await peer.send(hex("15 03 03 00 02 02 32"));
      await peer.close();
      await waitFor(() => events.log.length === 1, { what: "the disconnect" });
      match(
        events.log[0]!,
        /^disconnected: the broker at 127\.0\.0\.1:\d+ answered in TLS: use mqtts:\/\/127\.0\.0\.1:\d+ \(or --mqtt-tls\)$/,
      );
    });
  });

  await t.step("close() should say DISCONNECT and not wait for ever on the broker", async () => {
    await withClient({}, async ({ broker, connection, events }) => {
      const peer = await handshake(broker);
      await waitFor(() => connection.connected, { what: "connect" });
      const started = Date.now();
      // The broker keeps its side open: close() drops the socket after closeTimeoutMs.
      await connection.close();
      assert(Date.now() - started < 1000);
      deepEqual(await peer.next(), { type: 14, flags: 0, body: new Uint8Array(0) });
      equal(await peer.next(), undefined);
      equal(connection.connected, false);
      deepEqual(events.log, ["connected"]);
    });
  });
});
