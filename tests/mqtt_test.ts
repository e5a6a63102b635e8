import { deepEqual, equal, match, ok as assert } from "node:assert/strict";
import { connectMqtt, type MqttConnection } from "../lib/mqtt/client.ts";
import { BROKERS, startAedes, watch } from "./_broker.ts";
import { waitFor } from "./_wait.ts";

interface Events {
  log: string[];
  messages: { topic: string; payload: string; retained: boolean }[];
}

function connect(url: string, events: Events, will = false): MqttConnection {
  const connection = connectMqtt({
    url,
    clientId: `ess-test-${crypto.randomUUID().slice(0, 8)}`,
    reconnectBaseMs: 50,
    reconnectMaxMs: 200,
    random: () => 0.5,
    ...(will ? { will: { topic: "t/status", payload: "offline", retain: true, qos: 1 } } : {}),
  });
  connection.listen({
    connected: () => events.log.push("connected"),
    disconnected: () => events.log.push("disconnected"),
    message: (topic, payload, retained) => events.messages.push({ topic, payload, retained }),
  });
  return connection;
}

for (const { name, start, ignore } of BROKERS) {
  Deno.test({
    name: `connectMqtt() against ${name}`,
    ignore,
    async fn(t) {
      const broker = await start();
      const watcher = await watch(broker.url);
      try {
        await t.step(
          "should publish, subscribe, and tell retained from live messages",
          async () => {
            await watcher.publish("t/cmd", "old", true);
            const events: Events = { log: [], messages: [] };
            const connection = connect(broker.url, events);
            try {
              await waitFor(() => connection.connected, { what: "connect" });
              await connection.subscribe(["t/cmd"]);
              await waitFor(() => events.messages.length === 1, { what: "the retained message" });
              await watcher.publish("t/cmd", "new");
              await waitFor(() => events.messages.length === 2, { what: "the live message" });
              deepEqual(events.messages, [
                { topic: "t/cmd", payload: "old", retained: true },
                { topic: "t/cmd", payload: "new", retained: false },
              ]);
              await connection.publish("t/state", "42", { retain: true });
              await watcher.until(() => watcher.last.get("t/state")?.payload === "42", "t/state");
            } finally {
              await connection.close();
              await watcher.publish("t/cmd", "", true);
            }
          },
        );

        await t.step(
          "should reconnect after a broker restart and drop what comes between",
          async () => {
            const events: Events = { log: [], messages: [] };
            const connection = connect(broker.url, events, true);
            try {
              await waitFor(() => connection.connected, { what: "connect" });
              await broker.stop();
              await waitFor(() => events.log.includes("disconnected"), { what: "the disconnect" });
              equal(connection.connected, false);
              await connection.publish("t/lost", "x");
              await broker.start();
              await waitFor(() => events.log.filter((e) => e === "connected").length === 2, {
                what: "reconnect",
              });
              await connection.subscribe(["t/again"]);
              const again = await watch(broker.url);
              try {
                await again.publish("t/again", "yes");
                await waitFor(() => events.messages.some((m) => m.topic === "t/again"), {
                  what: "message",
                });
                await connection.publish("t/state", "after", { retain: true });
                await again.until(() => again.last.get("t/state")?.payload === "after", "t/state");
                equal(again.last.get("t/lost"), undefined, "nothing queued while disconnected");
              } finally {
                await again.close();
              }
            } finally {
              await connection.close();
            }
            assert(!connection.connected);
          },
        );

        await t.step("should send no last will on close()", async () => {
          const events: Events = { log: [], messages: [] };
          const connection = connect(broker.url, events, true);
          await waitFor(() => connection.connected, { what: "connect" });
          const w = await watch(broker.url);
          try {
            await connection.close();
            // The sentinel: a message published after the close; a will would have come first.
            await w.publish("t/sync", "after the close");
            await w.until(() => w.last.has("t/sync"), "the message published after the close");
            equal(w.last.get("t/status"), undefined);
          } finally {
            await w.close();
          }
        });
      } finally {
        await watcher.close();
        await broker.close();
      }
    },
  });
}

Deno.test("connectMqtt() over TLS", async (t) => {
  const read = (name: string) =>
    Deno.readTextFileSync(new URL(`../fixtures/tls/${name}`, import.meta.url));
  const broker = await startAedes(0, { cert: read("broker.crt"), key: read("broker.key") });
  try {
    await t.step("should connect to mqtts:// trusting the CA from --mqtt-ca", async () => {
      const connection = connectMqtt({
        url: broker.url,
        ca: read("broker-ca.crt"),
        clientId: "ess-tls-test",
      });
      try {
        await waitFor(() => connection.connected, { what: "a TLS connection" });
        await connection.publish("t/tls", "ok");
      } finally {
        await connection.close();
      }
    });

    await t.step("should refuse a broker whose certificate it cannot verify", async () => {
      const events: Events = { log: [], messages: [] };
      const connection = connectMqtt({
        url: broker.url,
        clientId: "ess-tls-test-2",
        reconnectBaseMs: 10_000,
      });
      const reasons: string[] = [];
      connection.listen({
        connected: () => events.log.push("connected"),
        disconnected: (reason) => reasons.push(reason),
        message: () => {},
      });
      try {
        await waitFor(() => reasons.length > 0, { what: "the refusal" });
        assert(!connection.connected);
        assert(/certificate|issuer|unknown/i.test(reasons[0]!), String(reasons[0]));
        deepEqual(events.log, []);
      } finally {
        await connection.close();
      }
    });
    await t.step("should say to use mqtts:// when mqtt:// meets the TLS port", async () => {
      const reason = await firstRefusal(`mqtt://127.0.0.1:${broker.port}`);
      match(
        reason,
        /answered in TLS: use mqtts:\/\/127\.0\.0\.1:\d+ \(or --mqtt-tls\)/,
      );
    });
  } finally {
    await broker.close();
  }
});

/** Why the first connection to `url` failed, as the listener hears it. */
async function firstRefusal(url: string): Promise<string> {
  const reasons: string[] = [];
  const connection = connectMqtt({ url, clientId: "ess-tls-test-3", reconnectBaseMs: 10_000 });
  connection.listen({
    connected: () => reasons.push("connected"),
    disconnected: (reason) => reasons.push(reason),
    message: () => {},
  });
  try {
    await waitFor(() => reasons.length > 0, { what: "the first try" });
    return reasons[0]!;
  } finally {
    await connection.close();
  }
}

Deno.test("connectMqtt() with mqtts:// pointed at a plain MQTT port", async (t) => {
  const broker = await startAedes();
  try {
    await t.step("should say in one line that the port is not a TLS port", async () => {
      const reason = await firstRefusal(`mqtts://127.0.0.1:${broker.port}`);
      match(
        reason,
        /^the broker at 127\.0\.0\.1:\d+ did not complete a TLS handshake \(.*\): is it a TLS port \(usually 8883\)\? For plain MQTT use mqtt:\/\/127\.0\.0\.1:1883$/,
      );
      assert(!reason.includes("\n"));
    });
  } finally {
    await broker.close();
  }
});
