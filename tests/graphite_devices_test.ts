// `ess graphite` with a config of several `[device NAME]` sections: one process, one connection
// to carbon, each device's values under `<prefix>.<name>.`, and a device that hangs never holding
// up the others' batches.
import net from "node:net";
import { deepEqual, equal, match, ok } from "node:assert/strict";
import { EssClient } from "../lib/device/client.ts";
import { GraphiteError } from "../lib/errors.ts";
import { metricLines, runGraphite, SenderHealth } from "../lib/export/graphite.ts";
import { type MetricSender, SharedSender } from "../lib/export/graphite_senders.ts";
import { createLogger, labelledLogger } from "../lib/log.ts";
import { createDeviceFetch } from "../lib/device/transport.ts";
import { type Simulator, startSimulator } from "../lib/sim/simulator.ts";
import { runCli, spawnDaemon } from "./_cli.ts";
import { waitFor } from "./_wait.ts";

const NAMES = ["garage", "house", "shed"];

/** A carbon on 127.0.0.1 that keeps every line it reads and counts its connections. */
async function fakeCarbon() {
  const state = { text: "", connections: 0 };
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    state.connections++;
    sockets.add(socket);
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => state.text += chunk);
    socket.on("end", () => socket.end());
    socket.on("error", () => {});
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    address: `127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    state,
    /** The metric paths received so far, each once per line. */
    paths: () => state.text.split("\n").filter(Boolean).map((line) => line.split(" ")[0]!),
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A port that takes connections and never answers: a device hung behind a live TCP stack. */
async function hungDevice() {
  const held = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    held.add(socket);
    socket.on("error", () => {});
    socket.on("close", () => held.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    host: `127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    close: () => {
      for (const socket of held) socket.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The metric paths a simulator's `home` and `common` make now, under `prefix`. */
async function expectedPaths(sim: Simulator, prefix: string): Promise<string[]> {
  const fetch = createDeviceFetch();
  try {
    const client = new EssClient({ host: sim.host, password: sim.password, fetch });
    const states = { home: await client.read("home"), common: await client.read("common") };
    return metricLines(states, 0, prefix).map((line) => line.split(" ")[0]!).sort();
  } finally {
    fetch.close();
  }
}

/** A config declaring each of `hosts` (name → host and password) as a section. */
async function writeConfig(
  top: string[],
  devices: [string, { host: string; password: string }][],
): Promise<string> {
  const config = await Deno.makeTempFile({ prefix: "ess-graphite-", suffix: ".conf" });
  const lines = [...top];
  for (const [name, { host, password }] of devices) {
    lines.push(`[device ${name}]`, `host = ${host}`, `password = ${password}`);
  }
  await Deno.writeTextFile(config, `${lines.join("\n")}\n`);
  return config;
}

Deno.test("ess graphite --once with several devices", async (t) => {
  const sims = await Promise.all(
    NAMES.map((_, i) => startSimulator({ seed: i + 1, password: `device-pass-${i}` })),
  );
  const devices = NAMES.map((name, i) => [name, sims[i]!] as [string, Simulator]);
  const config = await writeConfig(["graphite_prefix = site", "timeout = 3"], devices);
  try {
    await t.step(
      "should send every device's values under site.<name>, one connection",
      async () => {
        const carbon = await fakeCarbon();
        try {
          const run = await runCli([
            "graphite",
            "--once",
            "--config",
            config,
            "--graphite",
            carbon.address,
          ]);
          equal(run.code, 0, run.stderr);
          await waitFor(() => carbon.state.connections === 1 && carbon.paths().length > 0, {
            what: "the batches",
          });
          const want = (await Promise.all(devices.map(([name, sim]) =>
            expectedPaths(sim, `site.${name}`)
          )))
            .flat().sort();
          deepEqual(carbon.paths().sort(), want);
          equal(carbon.state.connections, 1);
        } finally {
          await carbon.close();
        }
      },
    );
    await t.step(
      "should send the others' values when one is down, and fail naming it",
      async () => {
        const carbon = await fakeCarbon();
        const down = await writeConfig(["graphite_prefix = site", "timeout = 3"], [
          ["garage", sims[0]!],
          ["house", { host: "127.0.0.1:1", password: "house-pass-9" }],
          ["shed", sims[2]!],
        ]);
        try {
          const run = await runCli([
            "graphite",
            "--once",
            "--config",
            down,
            "--graphite",
            carbon.address,
          ]);
          equal(run.code, 1, run.stderr);
          match(run.stderr, /^ess: error: house: Cannot reach /m);
          equal(run.stderr.trim().split("\n").length, 1, run.stderr);
          ok(!run.stderr.includes("house-pass-9"));
          const prefixes = new Set(
            carbon.paths().map((path) => path.split(".").slice(0, 2).join(".")),
          );
          deepEqual([...prefixes].sort(), ["site.garage", "site.shed"]);
        } finally {
          await carbon.close();
          await Deno.remove(down);
        }
      },
    );
  } finally {
    await Promise.all(sims.map((s) => s.close()));
    await Deno.remove(config);
  }
});

Deno.test("ess graphite keeps sending for the others while one hangs and one is refused", async () => {
  const garage = await startSimulator({ seed: 1, password: "garage-pass" });
  const shed = await startSimulator({ seed: 3, password: "shed-pass" });
  const hung = await hungDevice();
  const carbon = await fakeCarbon();
  // The hung device's requests time out only after 60 s; the others send every second.
  const config = await writeConfig(["interval_seconds = 1", "timeout = 60"], [
    ["garage", garage],
    ["house", { host: hung.host, password: "house-pass" }],
    ["shed", shed],
    ["attic", { host: shed.host, password: "wrong-password" }],
  ]);
  const ess = spawnDaemon(["graphite", "--config", config, "--graphite", carbon.address]);
  try {
    await ess.waitFor(
      /house: sending 127\.0\.0\.1:\d+'s values to tcp:\/\/127\.0\.0\.1:\d+ every 1 s/,
    );
    const batches = (name: string) =>
      carbon.paths().filter((path) => path === `${name}.common.BATT.soc`).length;
    await waitFor(() => batches("garage") >= 3 && batches("shed") >= 3, {
      what: "three batches from garage and from shed",
    });
    equal(batches("house"), 0);
    equal(batches("attic"), 0);
    match(ess.stderr, /^ess: error: attic: stopped sending: .*password/im);
    ok(!ess.stderr.includes("wrong-password"));
    equal(carbon.state.connections, 1);
    const { code, stderr } = await ess.stop("SIGTERM");
    equal(code, 0, stderr);
    match(stderr, /^ess: info: stopped$/m);
  } finally {
    await ess.stop();
    await carbon.close();
    await hung.close();
    await garage.close();
    await shed.close();
    await Deno.remove(config);
  }
});

Deno.test("devices sharing one sender report a carbon outage once, and its end once", async () => {
  let batch = 0;
  const sent: string[] = [];
  const inner: MetricSender = {
    target: "tcp://graphite.test:2003",
    send(lines) {
      // The first four batches, whichever device's, find carbon down.
      if (batch++ < 4) {
        return Promise.reject(
          new GraphiteError("Cannot send to Graphite tcp://graphite.test:2003"),
        );
      }
      sent.push(...lines);
      return Promise.resolve(true);
    },
    finish: () => Promise.resolve(),
    close: () => Promise.resolve(),
  };
  const lines: string[] = [];
  const log = createLogger("info", (line) => lines.push(line));
  const sender = new SharedSender(inner);
  const senderHealth = new SenderHealth(log);
  const loop = (name: string) => {
    const stop = new AbortController();
    let sleeps = 0;
    return runGraphite({
      device: {
        host: `${name}.lan`,
        read: (state) =>
          Promise.resolve(state === "home" ? { statistics: { load_power: "1" } } : {}),
      },
      sender,
      senderHealth,
      prefix: name,
      intervalMs: 1000,
      logger: labelledLogger(log, name),
      now: () => 0,
      sleep: () => {
        if (++sleeps >= 6) stop.abort();
        return Promise.resolve();
      },
      signal: stop.signal,
    });
  };
  await Promise.all([loop("garage"), loop("house"), loop("shed")]);
  deepEqual(lines, [
    "warning: Cannot send to Graphite tcp://graphite.test:2003; dropping metrics until it is back",
    "info: Graphite tcp://graphite.test:2003 takes metrics again (4 batches dropped)",
  ]);
  deepEqual(
    new Set(sent.map((line) => line.split(".")[0])),
    new Set(["garage", "house", "shed"]),
  );
});
