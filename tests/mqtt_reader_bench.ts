/**
 * How long ess's MQTT reader takes to put together a large message from small reads: a 1 MB
 * PUBLISH in 100-byte pieces (what a slow or hostile broker can send), against the same in one
 * piece. Before the reader joined the pieces once, this took seconds.
 *
 * @module
 */
import { encodePublish } from "../lib/mqtt/_packet.ts";
import { PacketReader } from "../lib/mqtt/_reader.ts";

const packet = encodePublish({
  topic: "ess/json/home",
  payload: new Uint8Array(1_000_000).fill(0x78),
  qos: 1,
  retain: false,
  packetId: 1,
});

Deno.bench("PacketReader: a 1 MB PUBLISH in 100-byte reads", { group: "1 MB" }, () => {
  const reader = new PacketReader();
  for (let at = 0; at < packet.length; at += 100) reader.push(packet.subarray(at, at + 100));
});

Deno.bench("PacketReader: a 1 MB PUBLISH in one read", { group: "1 MB", baseline: true }, () => {
  new PacketReader().push(packet);
});
