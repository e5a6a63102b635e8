import assert from "node:assert/strict";
import https from "node:https";
import net from "node:net";
import tls from "node:tls";
import type { AddressInfo } from "node:net";
import {
  PinMismatchError,
  TimeoutError,
  TlsError,
  UnreachableError,
  UsageError,
} from "../lib/errors.ts";
import {
  createDeviceFetch,
  normalizeFingerprint,
  probeFingerprint,
} from "../lib/device/transport.ts";
import { rejectsWith } from "./_assert.ts";
import { runCli } from "./_cli.ts";
import { waitFor } from "./_wait.ts";

const TLS = new URL("../fixtures/tls/", import.meta.url);
const KEY = Deno.readTextFileSync(new URL("device.key", TLS));
const CERT = Deno.readTextFileSync(new URL("device.crt", TLS));
/** From fixtures/tls/README.md (openssl x509 -fingerprint -sha256). */
const FINGERPRINT =
  "12:1E:4C:D4:82:57:E0:A4:90:9B:94:D3:4D:EF:54:98:A8:41:EA:65:A6:ED:C9:39:B0:A5:88:86:51:56:F6:55";

/** A local HTTPS server with the test certificate and routes that misbehave on purpose. */
async function withServer(
  fn: (base: string, stats: { connections: number; requests: number }) => Promise<void>,
): Promise<void> {
  const stats = { connections: 0, requests: 0 };
  const stalled: (() => void)[] = [];
  const server = https.createServer({ key: KEY, cert: CERT }, (req, res) => {
    const chunks: Uint8Array[] = [];
    req.on("data", (c: Uint8Array) => chunks.push(c));
    req.on("end", () => {
      stats.requests++;
      if (req.url === "/sleep") {
        stalled.push(() => res.end());
        return;
      }
      if (req.url === "/chunked") {
        res.writeHead(200, { "content-type": "application/json" });
        res.write('{"part": ');
        setTimeout(() => res.end('"two"}'), 5);
        return;
      }
      if (req.url === "/close") {
        res.writeHead(200, { "connection": "close", "content-type": "text/plain" });
        res.end("bye");
        return;
      }
      if (req.url === "/code/502") {
        res.writeHead(502, { "content-type": "text/html" });
        res.end("<html><head><title>502 Bad Gateway</title></head></html>");
        return;
      }
      res.writeHead(200, { "content-type": "application/json", "x-echo": "yes" });
      res.end(JSON.stringify({ method: req.method, body: Buffer.concat(chunks).toString() }));
    });
  });
  server.on("secureConnection", () => stats.connections++);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  try {
    await fn(`https://127.0.0.1:${port}`, stats);
  } finally {
    stalled.forEach((end) => end());
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
}

Deno.test("createDeviceFetch() talks to a self-signed device", async (t) => {
  await withServer(async (base, stats) => {
    await t.step("should accept the certificate and carry method, body and headers", async () => {
      const deviceFetch = createDeviceFetch();
      try {
        const res = await deviceFetch(`${base}/v1/user/essinfo/home`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: '{"auth_key":"k"}',
        });
        assert.equal(res.status, 200);
        assert.equal(res.headers.get("x-echo"), "yes");
        assert.deepEqual(await res.json(), { method: "POST", body: '{"auth_key":"k"}' });
        assert.equal(deviceFetch.peerFingerprint, FINGERPRINT);
      } finally {
        deviceFetch.close();
      }
    });
    await t.step("should keep one connection alive across requests", async () => {
      const before = stats.connections;
      const deviceFetch = createDeviceFetch();
      try {
        for (let i = 0; i < 3; i++) {
          await (await deviceFetch(`${base}/x`, { method: "POST", body: "{}" })).text();
        }
      } finally {
        deviceFetch.close();
      }
      assert.equal(stats.connections - before, 1);
    });
    await t.step("should read chunked answers", async () => {
      const deviceFetch = createDeviceFetch();
      try {
        const res = await deviceFetch(`${base}/chunked`, { method: "POST", body: "{}" });
        assert.deepEqual(await res.json(), { part: "two" });
      } finally {
        deviceFetch.close();
      }
    });
    await t.step("should open a new connection after Connection: close", async () => {
      const before = stats.connections;
      const deviceFetch = createDeviceFetch();
      try {
        assert.equal(await (await deviceFetch(`${base}/close`)).text(), "bye");
        assert.equal(await (await deviceFetch(`${base}/close`)).text(), "bye");
      } finally {
        deviceFetch.close();
      }
      assert.equal(stats.connections - before, 2);
    });
    await t.step("should answer concurrent requests one after the other", async () => {
      const deviceFetch = createDeviceFetch();
      try {
        const answers = await Promise.all(
          ["a", "b", "c"].map(async (body) =>
            (await deviceFetch(`${base}/x`, { method: "PUT", body })).json()
          ),
        );
        assert.deepEqual(answers.map((a) => a.body), ["a", "b", "c"]);
      } finally {
        deviceFetch.close();
      }
    });
    await t.step("should pass error pages through with their status", async () => {
      const deviceFetch = createDeviceFetch();
      try {
        const res = await deviceFetch(`${base}/code/502`);
        assert.equal(res.status, 502);
        assert.match(await res.text(), /502 Bad Gateway/);
      } finally {
        deviceFetch.close();
      }
    });
  });
});

Deno.test("createDeviceFetch() with --fingerprint", async (t) => {
  await withServer(async (base) => {
    await t.step("should accept the pinned certificate in any spelling", async () => {
      for (const pin of [FINGERPRINT, FINGERPRINT.replaceAll(":", "").toLowerCase()]) {
        const deviceFetch = createDeviceFetch({ fingerprint: pin });
        try {
          assert.equal((await deviceFetch(`${base}/x`)).status, 200);
        } finally {
          deviceFetch.close();
        }
      }
    });
    await t.step("should refuse another certificate, naming the one seen", async () => {
      const deviceFetch = createDeviceFetch({ fingerprint: "AB".repeat(32) });
      try {
        const err = await rejectsWith(() => deviceFetch(`${base}/x`), PinMismatchError);
        assert.equal(err.seen, FINGERPRINT);
        assert.ok(err.message.includes(FINGERPRINT));
        assert.ok(err instanceof TlsError);
      } finally {
        deviceFetch.close();
      }
    });
  });
  await t.step("should reject a malformed fingerprint as a usage error", () => {
    assert.throws(() => createDeviceFetch({ fingerprint: "12:1E" }), UsageError);
  });
});

Deno.test("createDeviceFetch() failures", async (t) => {
  await t.step("should time out when the device does not answer", async () => {
    await withServer(async (base) => {
      const deviceFetch = createDeviceFetch({ timeoutMs: 200 });
      try {
        await rejectsWith(() => deviceFetch(`${base}/sleep`), TimeoutError, /within 0\.2 s/);
      } finally {
        deviceFetch.close();
      }
    });
  });
  await t.step(
    "should fail a request under way at once when closed, without reconnecting",
    async () => {
      await withServer(async (base, stats) => {
        const deviceFetch = createDeviceFetch({ timeoutMs: 30_000 });
        const closed = /^Cannot talk to 127\.0\.0\.1:\d+: ess closed the connection first$/;
        try {
          // A reused connection that closes before any answer is what the transport retries
          // on a new one: closing must not count as that.
          await (await deviceFetch(`${base}/x`)).text();
          const stalled = deviceFetch(`${base}/sleep`);
          const later = deviceFetch(`${base}/x`);
          await waitFor(() => stats.requests >= 2, { what: "both requests to arrive" });
          deviceFetch.close();
          await rejectsWith(() => stalled, UnreachableError, closed);
          await rejectsWith(() => later, UnreachableError, closed);
          assert.equal(stats.connections, 1);
          assert.equal(stats.requests, 2);
        } finally {
          deviceFetch.close();
        }
      });
    },
  );
  await t.step("should say a name cannot be resolved, and what to try", async () => {
    const deviceFetch = createDeviceFetch();
    try {
      await rejectsWith(
        () => deviceFetch("https://nonexistent.invalid/"),
        UnreachableError,
        /^Cannot reach nonexistent\.invalid: the name nonexistent\.invalid cannot be resolved \(check the spelling, or give the device's IP address\)$/,
      );
    } finally {
      deviceFetch.close();
    }
  });
  await t.step("should say connection refused", async () => {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    await new Promise((resolve) => server.close(resolve));
    const deviceFetch = createDeviceFetch();
    try {
      await rejectsWith(
        () => deviceFetch(`https://127.0.0.1:${port}/x`),
        UnreachableError,
        new RegExp(
          `^Cannot reach 127\\.0\\.0\\.1:${port}: connection refused \\(is it the ESS, is the port ` +
            `right, and is it on this network\\?\\); this may be transient: try again in a minute$`,
        ),
      );
    } finally {
      deviceFetch.close();
    }
  });
  await t.step("should report a peer that does not speak TLS", async () => {
    const sockets: net.Socket[] = [];
    const server = net.createServer((socket) => {
      sockets.push(socket);
      socket.end("HTTP/1.0 400 Bad Request\r\n\r\n");
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    const deviceFetch = createDeviceFetch({ timeoutMs: 2000 });
    try {
      await rejectsWith(
        () => deviceFetch(`https://127.0.0.1:${port}/x`),
        TlsError,
        new RegExp(
          `^TLS handshake with 127\\.0\\.0\\.1:${port} failed: that port does not speak TLS ` +
            `\\(is it the device's HTTPS port, normally 443\\?\\)$`,
        ),
      );
    } finally {
      deviceFetch.close();
      sockets.forEach((s) => s.destroy());
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

Deno.test("createDeviceFetch() reconnects once when the device dropped the idle connection", async () => {
  // The first connection answers once, then closes without answering: what a device does
  // when its keep-alive timeout ends just as the next request arrives.
  let connections = 0;
  const server = tls.createServer({ key: KEY, cert: CERT }, (socket) => {
    const n = ++connections;
    let requests = 0;
    socket.on("data", () => {
      if (n === 1 && ++requests === 2) return socket.destroy();
      socket.write(`HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n${n}`);
    });
    socket.on("error", () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const deviceFetch = createDeviceFetch();
  try {
    assert.equal(await (await deviceFetch(`https://127.0.0.1:${port}/x`)).text(), "1");
    assert.equal(await (await deviceFetch(`https://127.0.0.1:${port}/x`)).text(), "2");
    assert.equal(connections, 2);
  } finally {
    deviceFetch.close();
    await new Promise((resolve) => server.close(resolve));
  }
});

Deno.test("probeFingerprint() shows the certificate to pin", async () => {
  await withServer(async (base) => {
    const port = Number(new URL(base).port);
    assert.equal(await probeFingerprint("127.0.0.1", port), FINGERPRINT);
  });
});

Deno.test("normalizeFingerprint() accepts openssl's and plain hex spellings", () => {
  assert.equal(normalizeFingerprint(`sha256 Fingerprint=${FINGERPRINT}`), FINGERPRINT);
  assert.equal(normalizeFingerprint(FINGERPRINT.toLowerCase().replaceAll(":", "")), FINGERPRINT);
  assert.equal(normalizeFingerprint("12:1E"), undefined);
});

Deno.test("a port that takes the connection but never answers the TLS handshake", async (t) => {
  // A plain TCP listener that accepts and says nothing: TCP connects, the handshake never ends.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of listener) held.push(conn);
  })();
  const host = `127.0.0.1:${listener.addr.port}`;
  const handshake = new RegExp(
    `^TLS handshake with 127\\.0\\.0\\.1:${listener.addr.port} failed: the port took the ` +
      `connection but did not answer the handshake within 0\\.3 s \\(is it the device's HTTPS ` +
      `port, normally 443\\?\\)$`,
  );
  try {
    await t.step("should be named as a handshake timeout by createDeviceFetch()", async () => {
      const deviceFetch = createDeviceFetch({ connectTimeoutMs: 300 });
      try {
        await rejectsWith(() => deviceFetch(`https://${host}/x`), TimeoutError, handshake);
      } finally {
        deviceFetch.close();
      }
    });
    await t.step("should be named as a handshake timeout by probeFingerprint()", async () => {
      await rejectsWith(
        () => probeFingerprint("127.0.0.1", listener.addr.port, 300),
        TimeoutError,
        handshake,
      );
    });
    await t.step("should be named so by ess data, in one line", async () => {
      const run = await runCli([
        "data",
        "--config",
        "/dev/null",
        "--host",
        host,
        "--password",
        "a1b2c3d4e5f6",
        "--timeout",
        "1",
      ]);
      assert.equal(run.code, 1, run.stderr);
      assert.match(
        run.stderr,
        /^ess: TLS handshake with 127\.0\.0\.1:\d+ failed: the port took the connection but did not answer the handshake within 1 s \(is it the device's HTTPS port, normally 443\?\)\n$/,
      );
    });
  } finally {
    listener.close();
    await accepting.catch(() => {});
    held.forEach((conn) => conn.close());
  }
});
