/**
 * Secrets of absurd sizes: an auth key of 43,000 characters from a hostile device, a 120 kB
 * password. Each once crashed the daemons at their first log line (redaction built one regular
 * expression of every secret, which V8 refuses beyond about 32,000 characters) and printed the
 * secret in the crash. The daemons run as real processes against a hostile device on a real
 * socket.
 */
import assert from "node:assert/strict";
import { EssClient } from "../lib/device/client.ts";
import { MAX_AUTH_KEY_LENGTH } from "../lib/device/limits.ts";
import { createDeviceFetch } from "../lib/device/transport.ts";
import { AnswerLimitError } from "../lib/errors.ts";
import { createLogger } from "../lib/log.ts";
import { MAX_SECRETS, REDACTED, Redactor } from "../lib/redact.ts";
import { startAedes } from "./_broker.ts";
import { type Daemon, runCli, spawnDaemon } from "./_cli.ts";
import {
  HOSTILE_PASSWORD,
  type HostileDevice,
  type HostileRequest,
  json,
  startHostileDevice,
} from "./_hostile_device.ts";

/** A key of 43,200 characters, each 36 a UUID: any piece of it in a log line is a leak. */
const HUGE_KEY = crypto.randomUUID().repeat(1200);

const isLogin = (r: HostileRequest) =>
  r.method === "PUT" && (r.path === "/v1/user/setting/login" || r.path === "/v1/login");

/** A device that hands out {@link HUGE_KEY} on every login. */
function hugeKeyDevice(): Promise<HostileDevice> {
  return startHostileDevice({
    misbehave: (r) =>
      isLogin(r) ? json({ status: "success", auth_key: HUGE_KEY, role: "user" }) : undefined,
  });
}

Deno.test("Redactor.redact() takes secrets of any size and never throws", async (t) => {
  await t.step("should redact ten secrets of 43,200 characters each", () => {
    const redactor = new Redactor();
    const keys = Array.from({ length: 10 }, () => crypto.randomUUID().repeat(1200));
    for (const key of keys) assert.equal(redactor.add(key), true);
    assert.equal(redactor.redact(`a ${keys[3]} b ${keys[9]}`), `a ${REDACTED} b ${REDACTED}`);
  });
  await t.step("should redact a 120 kB password, raw and JSON-escaped", () => {
    const redactor = new Redactor();
    const password = `"${"p/".repeat(60_000)}`;
    redactor.add(password);
    const escaped = JSON.stringify(password).slice(1, -1);
    assert.equal(
      redactor.redact(`${password} ${escaped} ${escaped.replaceAll("/", "\\/")}`),
      `${REDACTED} ${REDACTED} ${REDACTED}`,
    );
  });
  await t.step(`should keep the first ${MAX_SECRETS} secrets and refuse more`, () => {
    const redactor = new Redactor();
    const secrets = Array.from({ length: MAX_SECRETS + 5 }, (_, i) => `secret-${i}-xyz`);
    const added = secrets.map((s) => redactor.add(s));
    assert.equal(redactor.size, MAX_SECRETS);
    assert.deepEqual(added.filter((a) => !a).length, 5);
    assert.equal(redactor.redact(secrets[0]!), REDACTED);
  });
});

Deno.test("EssClient refuses an auth key longer than a real one, without quoting it", async () => {
  const device = await hugeKeyDevice();
  const lines: string[] = [];
  const logger = createLogger("debug", (line) => lines.push(line));
  const fetch = createDeviceFetch({ timeoutMs: 5000, redactor: logger.redactor });
  try {
    const client = new EssClient({ host: device.host, password: HOSTILE_PASSWORD, fetch, logger });
    const error = await client.read("home").then(() => undefined, (e: unknown) => e);
    assert.ok(error instanceof AnswerLimitError, String(error));
    assert.match(
      error.message,
      new RegExp(
        `^Login on 127\\.0\\.0\\.1:\\d+: refusing an auth key of ${HUGE_KEY.length} characters ` +
          `\\(the device hands out 36-character keys, at most ${MAX_AUTH_KEY_LENGTH} are taken\\)`,
      ),
    );
    assert.equal(logger.redactor.size, 1, "only the password is a secret");
    for (const text of [error.message, ...lines]) assert.ok(!text.includes(HUGE_KEY.slice(0, 36)));
  } finally {
    fetch.close();
    await device.close();
  }
});

/** Asserts the daemon is alive, has said why the device is refused, and quotes no key. */
async function assertRefusesKey(ess: Daemon): Promise<void> {
  await ess.waitFor(/refusing an auth key of 43200 characters/);
  const { code, stderr } = await ess.stop("SIGTERM");
  assert.equal(code, 0, stderr.slice(0, 2000));
  assert.ok(!stderr.includes(HUGE_KEY.slice(0, 36)), stderr.slice(0, 2000));
  assert.ok(stderr.length < 4000, `${stderr.length} characters of log`);
}

Deno.test("the daemons keep running when a device hands out a 43,200-character key", async (t) => {
  const device = await hugeKeyDevice();
  const args = ["--config", "/dev/null", "--host", device.host, "--password", HOSTILE_PASSWORD];
  try {
    await t.step("should keep ess serve answering", async () => {
      const ess = spawnDaemon(["serve", "--listen", "127.0.0.1:0", ...args]);
      try {
        const [, url] = await ess.waitFor(/ on (http:\/\/\S+)/);
        await ess.waitFor(/refusing an auth key/);
        const answer = await fetch(new URL("/api/state", url));
        const body = await answer.text();
        assert.equal(answer.status, 200);
        assert.ok(!body.includes(HUGE_KEY.slice(0, 36)));
        const metrics = await fetch(new URL("/metrics", url));
        assert.match(await metrics.text(), /^ess_up\{serial="unknown"\} 0$/m);
        await assertRefusesKey(ess);
      } finally {
        await ess.stop();
      }
    });
    await t.step("should keep ess mqtt running", async () => {
      const broker = await startAedes();
      const ess = spawnDaemon(["mqtt", ...args, "--mqtt-server", broker.url]);
      try {
        await assertRefusesKey(ess);
      } finally {
        await ess.stop();
        await broker.close();
      }
    });
    await t.step("should keep ess graphite running", async () => {
      const carbon = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const ess = spawnDaemon([
        "graphite",
        ...args,
        "--graphite",
        `127.0.0.1:${carbon.addr.port}`,
      ]);
      try {
        await assertRefusesKey(ess);
      } finally {
        await ess.stop();
        carbon.close();
      }
    });
  } finally {
    await device.close();
  }
});

Deno.test("a 120 kB device password is refused at the start, unquoted", async () => {
  const password = "a1b2c3d4e5f6".repeat(10_000);
  for (const command of [["serve", "--listen", "127.0.0.1:0"], ["data"]]) {
    const run = await runCli([...command, "--config", "/dev/null", "--host", "127.0.0.1:9"], {
      env: { ESS_PASSWORD: password },
    });
    assert.equal(run.code, 2, run.stderr.slice(0, 2000));
    assert.equal(
      run.stderr,
      "ess: env ESS_PASSWORD: the device password has 120000 characters, more than 256: the " +
        "device's is its wired MAC address, 12 characters (see 'ess password')\n",
    );
  }
});
