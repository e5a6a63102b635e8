/**
 * DNS rebinding: a page on a name its owner points at 127.0.0.1 is, to the browser, the same
 * origin as ess serve. The server answers only its own names and those allowed; every other
 * `Host` gets 421 with no data. Tried with raw sockets, the CLI and Chromium.
 */
import assert from "node:assert/strict";
import { startServer } from "../lib/serve/server.ts";
import { hostCheck, parseAllowedHosts } from "../lib/serve/hosts.ts";
import { UsageError } from "../lib/errors.ts";
import { createLogger } from "../lib/log.ts";
import { FakeSource } from "./_serve_source.ts";
import { runCli, spawnDaemon } from "./_cli.ts";
import { startAedes } from "./_broker.ts";
import { chromiumPath, launchChromium } from "./_chromium.ts";
import { HOSTILE_PASSWORD, startHostileDevice } from "./_hostile_device.ts";
import { peerCheck } from "./_peers.ts";

const CHROMIUM = chromiumPath();
const chromium = peerCheck("chromium", CHROMIUM ? undefined : "chromium is not installed");

/** A source with a reading whose serial a leak would show. */
function sourceWithData(): FakeSource {
  const source = new FakeSource();
  source.poll({
    home: { statistics: { load_power: "376" } },
    systeminfo: { pms: { serial: "SERIAL-42" } },
  });
  return source;
}

/**
 * Sends one raw request with `host` and returns the status code and the answer, as much of it
 * as came within 5 s (an event stream never ends on its own).
 */
async function rawGet(port: number, path: string, host: string): Promise<[number, string]> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const deadline = setTimeout(() => conn.close(), 5000);
  let text = "";
  try {
    await conn.write(
      new TextEncoder().encode(
        `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`,
      ),
    );
    for await (const chunk of conn.readable.pipeThrough(new TextDecoderStream())) text += chunk;
  } catch {
    // Closed at the deadline: what came is the answer.
  } finally {
    clearTimeout(deadline);
  }
  return [Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1]), text];
}

Deno.test("hostCheck() and parseAllowedHosts()", async (t) => {
  const check = hostCheck({ listenHost: "127.0.0.1", machine: ["box", "box.local"], allowed: [] });
  await t.step("should answer the server's own names and any address", () => {
    for (
      const host of [
        "localhost",
        "LOCALHOST:8080",
        "127.0.0.1:8080",
        "[::1]:8080",
        "box",
        "box.local.",
        "10.0.0.7",
        "[fe80::1]",
      ]
    ) {
      assert.equal(check(host), true, host);
    }
  });
  await t.step("should refuse foreign names and malformed values", () => {
    for (
      const host of [
        "rebind.test",
        "rebind.test:8080",
        "localhost.evil.example",
        "box.evil",
        "",
        "a b",
        "[::1",
        "127.0.0.1.nip.io",
      ]
    ) {
      assert.equal(check(host), false, host);
    }
  });
  await t.step("should take allowed names, and * for any", () => {
    assert.deepEqual(parseAllowedHosts(" ess.lan ,HA.example.org., [fd00::1],,"), [
      "ess.lan",
      "ha.example.org",
      "fd00::1",
    ]);
    const allowed = hostCheck({ listenHost: "0.0.0.0", machine: [], allowed: ["ess.lan"] });
    assert.equal(allowed("ESS.LAN:443"), true);
    assert.equal(hostCheck({ listenHost: "0.0.0.0", machine: [], allowed: ["*"] })("x.y"), true);
  });
  await t.step("should refuse what is no host name", () => {
    for (const text of ["http://ess.lan", "ess.lan:8080", "a b", "x".repeat(300)]) {
      assert.throws(() => parseAllowedHosts(text), UsageError, text);
    }
  });
});

Deno.test("startServer() answers a foreign Host with 421 and no data", async (t) => {
  const lines: string[] = [];
  const server = await startServer({ hostname: "127.0.0.1", port: 0 }, {
    source: sourceWithData(),
    allowedHosts: ["ess.lan"],
    machineNames: ["box"],
    logger: createLogger("debug", (line) => lines.push(line)),
  });
  const port = server.address.port;
  try {
    for (const path of ["/api/state", "/metrics", "/", "/api/info", "/api/events"]) {
      await t.step(`should refuse ${path} for rebind.test`, async () => {
        const [status, text] = await rawGet(port, path, `rebind.test:${port}`);
        assert.equal(status, 421);
        assert.ok(!text.includes("SERIAL-42") && !text.includes("376"), text);
        assert.match(text, /"error":"this server does not answer to that host name"/);
      });
    }
    await t.step("should warn once per name", () => {
      const warnings = lines.filter((l) => l.startsWith("warning:"));
      assert.equal(warnings.length, 1, lines.join("\n"));
      assert.match(
        warnings[0]!,
        /^warning: refused a request from 127\.0\.0\.1:\d+ for host "rebind\.test": not a name of this server \(a web page rebinding its name to this machine\?\); if it is yours, add it with --allowed-hosts$/,
      );
    });
    for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, "[::1]", "box", "ess.lan"]) {
      await t.step(`should answer ${host}`, async () => {
        const [status, text] = await rawGet(port, "/api/state", host);
        assert.equal(status, 200, text);
        assert.match(text, /SERIAL-42/);
      });
    }
  } finally {
    await server.close();
  }
});

Deno.test("ess serve --allowed-hosts", async (t) => {
  await t.step("should refuse a name with a port, exit 2", async () => {
    const run = await runCli(["serve", "--config", "/dev/null", "--allowed-hosts", "ess.lan:80"]);
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, /^ess: --allowed-hosts: "ess\.lan:80" is not a host name or address/);
  });
  await t.step("should answer a name from ESS_ALLOWED_HOSTS and refuse others", async () => {
    const device = await startHostileDevice();
    const ess = spawnDaemon(
      ["serve", "--config", "/dev/null", "--host", device.host, "--listen", "127.0.0.1:0"],
      { env: { ESS_PASSWORD: HOSTILE_PASSWORD, ESS_ALLOWED_HOSTS: "ingress.example" } },
    );
    try {
      const [, port] = await ess.waitFor(/ on http:\/\/127\.0\.0\.1:(\d+)/);
      assert.equal((await rawGet(Number(port), "/api/info", "ingress.example"))[0], 200);
      assert.equal((await rawGet(Number(port), "/api/info", "rebind.test"))[0], 421);
    } finally {
      await ess.stop();
      await device.close();
    }
  });
});

Deno.test("ess mqtt --listen answers a foreign Host with 421", async () => {
  const device = await startHostileDevice();
  const broker = await startAedes();
  const ess = spawnDaemon(
    ["mqtt", "--config", "/dev/null", "--host", device.host, "--mqtt-server", broker.url],
    { env: { ESS_PASSWORD: HOSTILE_PASSWORD, ESS_LISTEN: "127.0.0.1:0" } },
  );
  try {
    const [, port] = await ess.waitFor(/ on http:\/\/127\.0\.0\.1:(\d+)/);
    assert.equal((await rawGet(Number(port), "/api/state", "rebind.test"))[0], 421);
    assert.equal((await rawGet(Number(port), "/api/state", `localhost:${port}`))[0], 200);
  } finally {
    await ess.stop();
    await broker.close();
    await device.close();
  }
});

Deno.test({
  name: `a page on a name rebound to 127.0.0.1 cannot read ess serve in Chromium${chromium.label}`,
  ignore: chromium.ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    chromium.assertPresent();
    const server = await startServer({ hostname: "127.0.0.1", port: 0 }, {
      source: sourceWithData(),
    });
    const port = server.address.port;
    const browser = await launchChromium(["--host-resolver-rules=MAP rebind.test 127.0.0.1"]);
    const read = `fetch("/api/state").then(async (r) => [r.status, await r.text()])`;
    try {
      await t.step("should give the rebound page 421 and nothing of the state", async () => {
        await browser.page.navigate(`http://rebind.test:${port}/`);
        const [status, body] = await browser.page.evaluate<[number, string]>(read);
        assert.equal(status, 421);
        assert.ok(!body.includes("SERIAL-42"), body);
      });
      await t.step("should serve the same page on localhost", async () => {
        await browser.page.navigate(`http://localhost:${port}/`);
        const [status, body] = await browser.page.evaluate<[number, string]>(read);
        assert.equal(status, 200);
        assert.match(body, /SERIAL-42/);
      });
    } finally {
      await browser.close();
      await server.close();
    }
  },
});
