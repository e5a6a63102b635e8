// Graphite: metric building, both senders against real listeners on 127.0.0.1, the loop's
// back-off with an injected clock, and `ess graphite` end to end against the simulator.
import dgram from "node:dgram";
import { deepEqual, equal, match, ok, rejects } from "node:assert/strict";
import { seededRandom } from "../lib/backoff.ts";
import { GraphiteError, UnreachableError, WrongPasswordError } from "../lib/errors.ts";
import type { JsonObject } from "../lib/device/flatten.ts";
import {
  MAX_METRIC_PATH,
  metricLines,
  metricNode,
  metricValue,
  runGraphite,
  type StateReader,
} from "../lib/export/graphite.ts";
import {
  type Connection,
  datagrams,
  type MetricSender,
  TcpSender,
  UdpSender,
} from "../lib/export/graphite_senders.ts";
import { createLogger } from "../lib/log.ts";
import { EssClient } from "../lib/device/client.ts";
import { type Simulator, startSimulator } from "../lib/sim/simulator.ts";
import { createDeviceFetch } from "../lib/device/transport.ts";
import { runCli, spawnCli } from "./_cli.ts";
import { readUntil, waitFor, withDeadline } from "./_wait.ts";

/** Our own values, shaped like an ESS Home 8/10's answers. */
const HOME: JsonObject = {
  statistics: {
    pcs_pv_total_power: "2140",
    batconv_power: "612",
    load_power: "487",
    grid_power: "",
  },
  direction: { is_battery_charging_: "1", is_grid_selling_: "0" },
  operation: { status: "start", mode: "1" },
  wintermode: { winter_status: "off" },
  pcs_fault: { pcs_status: "pcs_ok" },
};
const COMMON: JsonObject = {
  PV: { brand: "TEST-SOLAR", pv1_voltage: "301.250000", pv1_power: "1033" },
  BATT: { soc: "63.4", dc_power: "-612", winter_setting: "off", safty_soc: "15" },
  GRID: { active_power: "12.500000", freq: "50.010002" },
};
/** Metrics those values make: one per numeric (or on/off-like) leaf. */
const EXPECTED: Record<string, number> = {
  "home.statistics.pcs_pv_total_power": 2140,
  "home.statistics.batconv_power": 612,
  "home.statistics.load_power": 487,
  "home.direction.is_battery_charging_": 1,
  "home.direction.is_grid_selling_": 0,
  "home.operation.status": 1,
  "home.operation.mode": 1,
  "home.wintermode.winter_status": 0,
  "common.PV.pv1_voltage": 301.25,
  "common.PV.pv1_power": 1033,
  "common.BATT.soc": 63.4,
  "common.BATT.dc_power": -612,
  "common.BATT.winter_setting": 0,
  "common.BATT.safty_soc": 15,
  "common.GRID.active_power": 12.5,
  "common.GRID.freq": 50.010002,
};

/** Parses plaintext lines strictly: `<path> <value> <unix-seconds>`, nothing else. */
function parseLines(text: string): { path: string; value: number; time: number }[] {
  ok(text === "" || text.endsWith("\n"), "every line ends in a newline");
  return text.split("\n").filter((l) => l !== "").map((line) => {
    const m = /^([A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*) (-?\d+(?:\.\d+)?(?:e[-+]?\d+)?) (\d+)$/.exec(
      line,
    );
    if (!m) throw new Error(`not a plaintext line: ${JSON.stringify(line)}`);
    return { path: m[1]!, value: Number(m[2]), time: Number(m[3]) };
  });
}

Deno.test("metricNode()", async (t) => {
  await t.step("should keep [A-Za-z0-9_-] and replace everything else by _", () => {
    equal(metricNode("is_grid_selling_"), "is_grid_selling_");
    equal(metricNode("a.b c/d\ne"), "a_b_c_d_e");
    equal(metricNode(""), "_");
  });
});

Deno.test("metricValue()", async (t) => {
  await t.step("should read numbers as the device writes them", () => {
    deepEqual(
      ["376", "26.500000", "-612", "+3", ".5", "1e3", " 7 "].map(metricValue),
      [376, 26.5, -612, 3, 0.5, 1000, 7],
    );
  });
  await t.step("should map on/off, start/stop, true/false to 1/0", () => {
    deepEqual(
      ["on", "OFF", "start", "stop", "true", "False"].map(metricValue),
      [1, 0, 1, 0, 1, 0],
    );
  });
  await t.step("should skip everything else", () => {
    deepEqual(
      ["", "pcs_ok", "LGE-SOLAR", "1,5", "0x10", "NaN", "Infinity", "1.2.3"].map(metricValue),
      Array(8).fill(undefined),
    );
  });
});

Deno.test("metricLines()", async (t) => {
  await t.step("should make pyess's names for every numeric leaf", () => {
    const lines = parseLines(metricLines({ home: HOME, common: COMMON }, 1_700_000_000).join(""));
    deepEqual(Object.fromEntries(lines.map((l) => [l.path, l.value])), EXPECTED);
    ok(lines.every((l) => l.time === 1_700_000_000));
  });
  await t.step("should put a prefix in front, each level made safe", () => {
    deepEqual(metricLines({ home: { statistics: { load_power: "1" } } }, 5, "site 1.ess."), [
      "site_1.ess.home.statistics.load_power 1 5\n",
    ]);
  });
  await t.step("should leave out a metric whose name is too long to store or send", () => {
    const long = "k".repeat(70_000);
    deepEqual(
      metricLines(
        { home: { statistics: { [long]: "1", load_power: "376" }, [long]: { x: "2" } } },
        7,
      ),
      ["home.statistics.load_power 376 7\n"],
    );
    const edge = "e".repeat(MAX_METRIC_PATH - "home.".length);
    deepEqual(metricLines({ home: { [edge]: "1", [`${edge}f`]: "2" } }, 7, "site"), [
      `site.home.${edge} 1 7\n`,
    ]);
  });
  await t.step("should take JSON numbers, booleans and arrays (ESS Home 15)", () => {
    deepEqual(
      metricLines({ common: { ess: [{ soc: 55, ok: true }], x: { "a.b": 1 } } }, 9),
      ["common.ess.0.soc 55 9\n", "common.ess.0.ok 1 9\n", "common.x.a_b 1 9\n"],
    );
  });
  await t.step("should leave out the garbage of Home 15 units not installed", () => {
    const common = {
      ess: [
        { installed: true, sum_of_pv_power: 300, batt: [{ installed: false, soc: 212693561 }] },
        { installed: false, sum_of_pv_power: -35371816 },
      ],
    };
    deepEqual(metricLines({ common }, 9), [
      "common.ess.0.installed 1 9\n",
      "common.ess.0.sum_of_pv_power 300 9\n",
    ]);
  });
});

Deno.test("datagrams()", async (t) => {
  await t.step("should pack whole lines into datagrams no bigger than the limit", () => {
    const lines = Array.from({ length: 50 }, (_, i) => `home.statistics.metric_${i} ${i} 1\n`);
    const packets = datagrams(lines, 200);
    ok(packets.length > 1);
    ok(packets.every((p) => p.length <= 200 && p.endsWith("\n")));
    equal(packets.join(""), lines.join(""));
    deepEqual(datagrams([]), []);
  });
});

/** A connection that records writes; `failWrites` makes the next writes throw. */
function fakeConnection() {
  const written: string[] = [];
  let closed = false;
  let endRead: (() => void) | undefined;
  const conn: Connection & { failWrites: boolean } = {
    failWrites: false,
    write(p) {
      if (this.failWrites || closed) return Promise.reject(new Error("Broken pipe (os error 32)"));
      written.push(new TextDecoder().decode(p));
      return Promise.resolve(p.length);
    },
    read: () => new Promise((resolve) => endRead = () => resolve(null)),
    closeWrite: () => Promise.resolve(),
    close() {
      closed = true;
      endRead?.();
    },
  };
  return { conn, written, isClosed: () => closed };
}

Deno.test("TcpSender", async (t) => {
  await t.step("should not reconnect before the back-off allows, then reconnect", async () => {
    let clock = 0;
    let attempts = 0;
    const { conn, written } = fakeConnection();
    const sender = new TcpSender({
      hostname: "127.0.0.1",
      port: 2003,
      now: () => clock,
      random: () => 0.5,
      connect: () => {
        attempts++;
        return attempts <= 2
          ? Promise.reject(new Error("Connection refused (os error 111)"))
          : Promise.resolve(conn);
      },
    });
    await rejects(sender.send(["a 1 1\n"]), (e: unknown) =>
      e instanceof GraphiteError &&
      e.message === "Cannot connect to Graphite tcp://127.0.0.1:2003: Connection refused");
    equal(attempts, 1);
    clock += 700; // first back-off: 750 ms with random 0.5
    await rejects(sender.send(["a 1 1\n"]), /next try in 1 s/);
    equal(attempts, 1, "no connection attempt inside the back-off");
    clock += 50;
    await rejects(sender.send(["a 1 1\n"]), GraphiteError);
    equal(attempts, 2);
    clock += 1499; // second back-off: 1500 ms
    await rejects(sender.send(["a 1 1\n"]), /next try/);
    clock += 1;
    await sender.send(["a 1 1\n", "b 2 1\n"]);
    equal(attempts, 3);
    deepEqual(written, ["a 1 1\nb 2 1\n"]);
    await sender.close();
  });

  await t.step("should drop a connection whose write fails and back off", async () => {
    let clock = 0;
    const first = fakeConnection();
    const second = fakeConnection();
    const conns = [first.conn, second.conn];
    const sender = new TcpSender({
      hostname: "127.0.0.1",
      port: 2003,
      now: () => clock,
      random: () => 0,
      connect: () => Promise.resolve(conns.shift()!),
    });
    await sender.send(["a 1 1\n"]);
    first.conn.failWrites = true;
    await rejects(sender.send(["a 2 2\n"]), /Cannot send to Graphite .*Broken pipe/);
    ok(first.isClosed());
    equal(sender.connected, false);
    clock += 500;
    await sender.send(["a 3 3\n"]);
    deepEqual(second.written, ["a 3 3\n"]);
    await sender.close();
  });

  await t.step("should keep one connection for many batches on a real listener", async () => {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const accepted: string[] = [];
    const serving = (async () => {
      for await (const conn of listener) {
        accepted.push("conn");
        let text = "";
        for await (const chunk of conn.readable.pipeThrough(new TextDecoderStream())) text += chunk;
        accepted.push(text);
      }
    })();
    const sender = new TcpSender({ hostname: "127.0.0.1", port: listener.addr.port });
    try {
      await sender.send(["a 1 1\n"]);
      await sender.send(["b 2 2\n", "c 3 3\n"]);
      await sender.close();
      await waitFor(() => accepted.length >= 2, { what: "the connection to end" });
      deepEqual(accepted, ["conn", "a 1 1\nb 2 2\nc 3 3\n"]);
    } finally {
      await sender.close();
      listener.close();
      await serving.catch(() => {});
    }
  });

  await t.step("should count the server closing as a failure, then connect again", async () => {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const received: string[] = [];
    let connections = 0;
    const serving = (async () => {
      for await (const conn of listener) {
        connections++;
        if (connections === 1) {
          conn.close(); // a carbon restart
          continue;
        }
        for await (const chunk of conn.readable.pipeThrough(new TextDecoderStream())) {
          received.push(chunk);
        }
      }
    })();
    let clock = 0;
    const sender = new TcpSender({
      hostname: "127.0.0.1",
      port: listener.addr.port,
      now: () => clock,
      random: () => 0.5,
    });
    try {
      await sender.send(["lost 1 1\n"]).catch(() => {});
      await waitFor(() => !sender.connected, { what: "the end of the first connection" });
      await rejects(
        sender.send(["dropped 2 2\n"]),
        /^GraphiteError: Cannot send to Graphite tcp:\/\/127\.0\.0\.1:\d+: (it closed the connection|Connection reset by peer); the last metrics sent may be lost$/,
      );
      clock += 750; // the first back-off, with random 0.5
      equal(await sender.send(["kept 3 3\n"]), false, "a new connection proves nothing yet");
      equal(await sender.send(["kept 4 4\n"]), true, "it carried a batch and is still open");
      await sender.close();
      await waitFor(() => received.join("") === "kept 3 3\nkept 4 4\n", {
        what: "both batches at carbon",
      });
      equal(connections, 2);
    } finally {
      await sender.close();
      listener.close();
      await serving.catch(() => {});
    }
  });
});

/** A UDP listener on 127.0.0.1 that keeps every datagram. */
async function udpListener() {
  const socket = dgram.createSocket("udp4");
  const packets: string[] = [];
  socket.on("message", (msg) => packets.push(new TextDecoder().decode(msg)));
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", () => resolve()));
  return {
    port: socket.address().port,
    packets,
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}

Deno.test("UdpSender", async (t) => {
  await t.step("should deliver every line in datagrams to a real listener", async () => {
    const listener = await udpListener();
    const sender = new UdpSender({ hostname: "127.0.0.1", port: listener.port });
    try {
      const lines = Array.from({ length: 120 }, (_, i) => `home.statistics.m${i} ${i} 7\n`);
      await sender.send(lines);
      await waitFor(() => listener.packets.join("").length >= lines.join("").length, {
        what: "every line",
      });
      ok(listener.packets.length > 1, "split into several datagrams");
      equal(listener.packets.join(""), lines.join(""));
    } finally {
      await sender.close();
      await listener.close();
    }
  });
  await t.step("should deliver a device's metrics even beside a hostile key", async () => {
    const listener = await udpListener();
    const sender = new UdpSender({ hostname: "127.0.0.1", port: listener.port });
    try {
      const home = { statistics: { ["k".repeat(70_000)]: "1", load_power: "376" } };
      await sender.send(metricLines({ home }, 7));
      await waitFor(() => listener.packets.length > 0, { what: "a datagram" });
      deepEqual(listener.packets, ["home.statistics.load_power 376 7\n"]);
    } finally {
      await sender.close();
      await listener.close();
    }
  });
});

/** A device whose answers follow a script: a JSON object, or an error to throw. */
function scriptedDevice(script: (JsonObject | Error)[][]) {
  let cycle = 0;
  let reads = 0;
  const states: string[] = [];
  const device: StateReader = {
    host: "192.0.2.20",
    read(state) {
      states.push(state);
      const answers = script[Math.min(cycle, script.length - 1)]!;
      const answer = answers[state === "home" ? 0 : 1] ?? answers[0]!;
      if (state === "common" || answer instanceof Error) cycle++;
      reads++;
      return answer instanceof Error ? Promise.reject(answer) : Promise.resolve(answer);
    },
  };
  return { device, reads: () => reads, states };
}

function recordingSender(fail: (batch: number) => boolean = () => false) {
  const batches: string[][] = [];
  let n = 0;
  const sender: MetricSender = {
    target: "tcp://graphite.test:2003",
    send(lines) {
      if (fail(n++)) {
        return Promise.reject(
          new GraphiteError("Cannot send to Graphite tcp://graphite.test:2003"),
        );
      }
      batches.push([...lines]);
      return Promise.resolve(true);
    },
    finish: () => Promise.resolve(),
    close: () => Promise.resolve(),
  };
  return { sender, batches };
}

/** A clock that only moves when the loop sleeps; the loop stops after `cycles` sleeps. */
function fakeTime(stopAfterSleeps: number) {
  let clock = 1_700_000_000_000;
  const sleeps: number[] = [];
  const stop = new AbortController();
  return {
    now: () => clock,
    sleeps,
    signal: stop.signal,
    sleep: (ms: number) => {
      sleeps.push(ms);
      clock += ms;
      if (sleeps.length >= stopAfterSleeps) stop.abort();
      return Promise.resolve();
    },
  };
}

function logLines() {
  const lines: string[] = [];
  return { lines, logger: createLogger("info", (line) => lines.push(line)) };
}

Deno.test("runGraphite()", async (t) => {
  const unreachable = new UnreachableError("192.0.2.20", "Cannot reach 192.0.2.20: timed out");

  await t.step("should send one batch per cycle, timestamped by the clock", async () => {
    const time = fakeTime(3);
    const { sender, batches } = recordingSender();
    const scripted = scriptedDevice([[HOME, COMMON]]);
    await runGraphite({ device: scripted.device, sender, intervalMs: 10_000, ...time });
    deepEqual(scripted.states, ["home", "common", "home", "common", "home", "common"], "no batt");
    equal(batches.length, 3);
    deepEqual(time.sleeps, [10_000, 10_000, 10_000]);
    const first = parseLines(batches[0]!.join(""));
    equal(first.length, Object.keys(EXPECTED).length);
    ok(first.every((l) => l.time === 1_700_000_000));
    ok(parseLines(batches[1]!.join("")).every((l) => l.time === 1_700_000_010));
  });

  await t.step("should back off up to 1 min while the device fails, logging once", async () => {
    const time = fakeTime(13);
    const { sender, batches } = recordingSender();
    const { lines, logger } = logLines();
    const failures = Array.from({ length: 12 }, () => [unreachable]);
    await runGraphite({
      device: scriptedDevice([...failures, [HOME, COMMON]]).device,
      sender,
      intervalMs: 10_000,
      random: seededRandom(1),
      logger,
      ...time,
    });
    const waits = time.sleeps.slice(0, 12);
    ok(waits.every((w, i) => i === 0 || w >= waits[i - 1]! / 2), `${waits}`);
    ok(waits.every((w) => w <= 60_000), `${waits}`);
    ok(waits.slice(6).every((w) => w >= 30_000), `capped near 1 min: ${waits}`);
    equal(batches.length, 1, "sends again once the device answers");
    deepEqual(lines, [
      "warning: Cannot reach 192.0.2.20: timed out; retrying with back-off (at most every 1 min)",
      "info: device 192.0.2.20 answers again",
    ]);
  });

  await t.step("should drop batches the server does not take, logging once", async () => {
    const time = fakeTime(5);
    const { sender, batches } = recordingSender((n) => n >= 1 && n <= 3);
    const { lines, logger } = logLines();
    await runGraphite({
      device: scriptedDevice([[HOME, COMMON]]).device,
      sender,
      intervalMs: 10_000,
      logger,
      ...time,
    });
    equal(batches.length, 2);
    deepEqual(lines, [
      "warning: Cannot send to Graphite tcp://graphite.test:2003; dropping metrics until it is back",
      "info: Graphite tcp://graphite.test:2003 takes metrics again (3 batches dropped)",
    ]);
  });

  await t.step("should give up at once on a wrong password in the first cycle", async () => {
    const time = fakeTime(100);
    await rejects(
      runGraphite({
        device: scriptedDevice([[new WrongPasswordError("192.0.2.20")]]).device,
        sender: recordingSender().sender,
        intervalMs: 10_000,
        ...time,
      }),
      WrongPasswordError,
    );
    deepEqual(time.sleeps, []);
  });

  await t.step("should throw any failure with once", async () => {
    await rejects(
      runGraphite({
        device: scriptedDevice([[unreachable]]).device,
        sender: recordingSender().sender,
        intervalMs: 10_000,
        once: true,
      }),
      UnreachableError,
    );
    await rejects(
      runGraphite({
        device: scriptedDevice([[HOME, COMMON]]).device,
        sender: recordingSender(() => true).sender,
        intervalMs: 10_000,
        once: true,
      }),
      GraphiteError,
    );
  });

  await t.step("should stop while it waits when the signal aborts", async () => {
    const stop = new AbortController();
    const { sender, batches } = recordingSender();
    const running = runGraphite({
      device: scriptedDevice([[HOME, COMMON]]).device,
      sender,
      intervalMs: 3_600_000,
      signal: stop.signal,
    });
    await waitFor(() => batches.length > 0, { what: "the first batch", everyMs: 1 });
    stop.abort();
    await running;
    equal(batches.length, 1);
  });

  await t.step("should stop during a device read that hangs", async () => {
    const stop = new AbortController();
    let reading = false;
    const device: StateReader = {
      host: "192.0.2.20",
      read: () => {
        reading = true;
        return new Promise(() => {});
      },
    };
    const running = runGraphite({
      device,
      sender: recordingSender().sender,
      intervalMs: 10_000,
      signal: stop.signal,
    });
    await waitFor(() => reading, { what: "the device read", everyMs: 1 });
    stop.abort();
    await running;
  });
});

/** The metric paths a device's current `home` and `common` make, read straight from it. */
async function expectedPaths(sim: Simulator): Promise<string[]> {
  const fetch = createDeviceFetch();
  try {
    const client = new EssClient({ host: sim.host, password: sim.password, fetch });
    const states = { home: await client.read("home"), common: await client.read("common") };
    return parseLines(metricLines(states, 0).join("")).map((l) => l.path).sort();
  } finally {
    fetch.close();
  }
}

/** `ess <args>` with the flags of the compiled binary and no config file. */
const ess = (args: string[]) => runCli(args, { env: { ESS_CONFIG: "/dev/null" } });

Deno.test("ess graphite --once", async (t) => {
  const sim = await startSimulator({ port: 0 });
  const deviceArgs = ["--host", sim.host, "--password", sim.password];
  try {
    await t.step("should deliver one valid line per numeric value over TCP", async () => {
      const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const received = (async () => {
        const conn = await listener.accept();
        let text = "";
        for await (const chunk of conn.readable.pipeThrough(new TextDecoderStream())) text += chunk;
        return text;
      })();
      try {
        const r = await ess([
          "graphite",
          "--once",
          "--graphite",
          `127.0.0.1:${listener.addr.port}`,
          ...deviceArgs,
        ]);
        equal(r.code, 0, r.stderr);
        equal(r.stdout, "");
        const lines = parseLines(await received);
        const now = Date.now() / 1000;
        ok(lines.every((l) => Math.abs(l.time - now) < 30), "timestamped now");
        deepEqual(lines.map((l) => l.path).sort(), await expectedPaths(sim));
        for (const path of Object.keys(EXPECTED)) {
          ok(lines.some((l) => l.path === path), `${path} is sent`);
        }
        ok(!lines.some((l) => /pcs_status|brand/.test(l.path)), "text values are skipped");
      } finally {
        listener.close();
        await received.catch(() => {});
      }
    });

    await t.step("should deliver the same lines over UDP, under a prefix", async () => {
      const listener = await udpListener();
      try {
        const r = await ess([
          "graphite",
          "--once",
          "--protocol",
          "udp",
          "--prefix",
          "house",
          "--graphite",
          `127.0.0.1:${listener.port}`,
          ...deviceArgs,
        ]);
        equal(r.code, 0, r.stderr);
        const want = (await expectedPaths(sim)).length;
        await waitFor(() => parseLines(listener.packets.join("")).length >= want, {
          what: `${want} metrics`,
        });
        const lines = parseLines(listener.packets.join(""));
        deepEqual(
          lines.map((l) => l.path).sort(),
          (await expectedPaths(sim)).map((path) => `house.${path}`),
        );
      } finally {
        await listener.close();
      }
    });

    await t.step("should exit 1 with one line when the server refuses", async () => {
      const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const port = probe.addr.port;
      probe.close();
      const r = await ess(["graphite", "--once", "--graphite", `127.0.0.1:${port}`, ...deviceArgs]);
      equal(r.code, 1);
      match(r.stderr, /^ess: Cannot connect to Graphite tcp:\/\/127\.0\.0\.1:\d+: .*refused/i);
      equal(r.stderr.trim().split("\n").length, 1);
    });

    await t.step("should refuse a missing --graphite and a bad --protocol", async () => {
      const none = await ess(["graphite", "--once", ...deviceArgs]);
      equal(none.code, 2);
      match(none.stderr, /no Graphite server/);
      const bad = await ess(["graphite", "--graphite", "x", "--protocol", "sctp", ...deviceArgs]);
      equal(bad.code, 2);
      match(bad.stderr, /unknown protocol "sctp": one of tcp, udp/);
    });

    await t.step("should name the file and line of a bad graphite key", async () => {
      const config = await Deno.makeTempFile({ suffix: ".conf" });
      try {
        await Deno.writeTextFile(config, "# carbon\ngraphite = a b\n");
        const r = await ess(["graphite", "--once", "--config", config, ...deviceArgs]);
        equal(r.code, 2);
        match(r.stderr, /^ess: \S+\.conf:2: graphite server "a b" is not a host name or address/);
      } finally {
        await Deno.remove(config);
      }
    });
  } finally {
    await sim.close();
  }
});

Deno.test("ess graphite", async (t) => {
  await t.step("should stop cleanly on SIGTERM and exit 0", async () => {
    const sim = await startSimulator({ port: 0 });
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const child = spawnCli(
      [
        "graphite",
        "--graphite",
        `127.0.0.1:${listener.addr.port}`,
        "--host",
        sim.host,
        "--password",
        sim.password,
        "--interval-seconds",
        "3600",
      ],
      { env: { ESS_CONFIG: "/dev/null" } },
    );
    try {
      const conn = await withDeadline(listener.accept(), { what: "ess to connect" });
      const reader = conn.readable.pipeThrough(new TextDecoderStream()).getReader();
      await readUntil(reader, (text) => text.includes("common.BATT.soc"), {
        what: "the battery's state of charge",
      });
      child.kill("SIGTERM");
      const out = await child.output();
      await reader.cancel();
      equal(out.code, 0);
      match(new TextDecoder().decode(out.stderr), /stopped/);
    } finally {
      listener.close();
      await sim.close();
    }
  });
});
