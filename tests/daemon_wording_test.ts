/**
 * What a new user reads: `ess mqtt` without a broker says so and nothing else (`--once` fails at
 * once, with the reason), the daemons say when they stopped, a word after a flag is named with
 * the flag, and a misspelt config key gets a "did you mean".
 */
import assert from "node:assert/strict";
import { runCli, spawnDaemon } from "./_cli.ts";
import { HOSTILE_PASSWORD, readsHome, startHostileDevice } from "./_hostile_device.ts";

/** A port on 127.0.0.1 where nothing listens. */
function closedPort(): number {
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = probe.addr;
  probe.close();
  return port;
}

Deno.test("ess mqtt without a broker", async (t) => {
  const device = await startHostileDevice();
  const broker = `127.0.0.1:${closedPort()}`;
  const args = ["--config", "/dev/null", "--host", device.host, "--mqtt-server", broker];
  const env = { ESS_PASSWORD: HOSTILE_PASSWORD };
  try {
    await t.step("should fail --once with the reason, and no promise to reconnect", async () => {
      const run = await runCli(["mqtt", "--once", ...args], { env });
      assert.equal(run.code, 1, run.stderr);
      const lines = run.stderr.trimEnd().split("\n");
      assert.match(
        lines.at(-1)!,
        /^ess: Cannot reach the MQTT broker at mqtt:\/\/127\.0\.0\.1:\d+: Connection refused/,
      );
      assert.ok(!run.stderr.includes("reconnecting"), run.stderr);
    });
    await t.step("should not say it publishes while it cannot, and say it stopped", async () => {
      const ess = spawnDaemon(["mqtt", ...args, "--interval-seconds", "1"], { env });
      try {
        await ess.waitFor(
          /warning: cannot connect to mqtt:\/\/127\.0\.0\.1:\d+: Connection refused/,
        );
        // Two polls of the device: the first one's outcome was logged before the second began.
        const polled = device.requests.filter(readsHome).length;
        const until = Date.now() + 20_000;
        while (device.requests.filter(readsHome).length < polled + 2) {
          if (Date.now() > until) throw new Error("ess mqtt did not poll twice in 20 s");
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        const { code, stderr } = await ess.stop("SIGINT");
        assert.equal(code, 0, stderr);
        assert.ok(!stderr.includes("publishing under"), stderr);
        assert.match(stderr, /\ness: info: stopped\n$/);
      } finally {
        await ess.stop();
      }
    });
  } finally {
    await device.close();
  }
});

Deno.test("ess serve says it stopped on SIGINT", async () => {
  const device = await startHostileDevice();
  const ess = spawnDaemon(
    ["serve", "--config", "/dev/null", "--host", device.host, "--listen", "127.0.0.1:0"],
    { env: { ESS_PASSWORD: HOSTILE_PASSWORD } },
  );
  try {
    await ess.waitFor(/info: polling /);
    const { code, stderr } = await ess.stop("SIGINT");
    assert.equal(code, 0, stderr);
    assert.match(stderr, /\ness: info: stopped\n$/);
  } finally {
    await ess.stop();
    await device.close();
  }
});

Deno.test("usage errors name what the user wrote", async (t) => {
  await t.step("should name --once when a word follows it", async () => {
    const run = await runCli(["mqtt", "--config", "/dev/null", "--once", "maybe"]);
    assert.equal(run.code, 2);
    assert.equal(
      run.stderr,
      'ess: ess mqtt: --once takes no value (got "maybe"): give the flag alone, or ' +
        "--once=VALUE with one of true/false, on/off, yes/no, 1/0 (also y/n, t/f)\n",
    );
  });
  await t.step("should suggest mqtt_server for mqtt_sever in the config file", async () => {
    const file = await Deno.makeTempFile({ suffix: ".conf" });
    try {
      await Deno.writeTextFile(file, "mqtt_sever = broker.lan\ncolour = blue\n");
      const check = await runCli([
        "data",
        "--config",
        file,
        "--host",
        `127.0.0.1:${closedPort()}`,
        "--password",
        HOSTILE_PASSWORD,
      ]);
      assert.equal(check.code, 1, check.stderr);
      assert.equal(
        check.stderr.split("\n").filter((l) => l.includes("unknown key")).join("\n"),
        `ess: warning: ${file}:1: unknown key "mqtt_sever" ignored (did you mean mqtt_server?)\n` +
          `ess: warning: ${file}:2: unknown key "colour" ignored`,
      );
    } finally {
      await Deno.remove(file);
    }
  });
});
