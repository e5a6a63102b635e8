import { deepEqual, equal, match, ok, rejects } from "node:assert/strict";
import { type ListenerLimits, listenHttp, type WebHandler } from "../lib/serve/_listener.ts";
import { MAX_HEAD_BYTES } from "../lib/serve/_request.ts";
import { waitFor, waitForStill } from "./_wait.ts";

const LIMITS: ListenerLimits = {
  maxConnections: 8,
  headersTimeoutMs: 2_000,
  keepAliveTimeoutMs: 2_000,
  writeTimeoutMs: 10_000,
};

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A listener on a free loopback port, what its handler was asked, and the errors it heard. */
interface Served {
  port: number;
  requests: { method: string; url: string; body?: string }[];
  errors: unknown[];
  close(): Promise<void>;
}

/** Runs `fn` against `listenHttp` serving `handle` (text "hi" by default), then closes it. */
async function withListener(
  fn: (served: Served) => Promise<void>,
  handle: WebHandler = () => Promise.resolve(new Response("hi")),
  limits: Partial<ListenerLimits> = {},
): Promise<void> {
  const requests: Served["requests"] = [];
  const errors: unknown[] = [];
  const listener = await listenHttp(
    { hostname: "127.0.0.1", port: 0 },
    { ...LIMITS, ...limits },
    (request, remote) => {
      match(remote, /^127\.0\.0\.1:\d+$/);
      requests.push({ method: request.method, url: new URL(request.url).pathname });
      return handle(request, remote);
    },
    (err) => errors.push(err),
  );
  try {
    await fn({ port: listener.address.port, requests, errors, close: () => listener.close() });
  } finally {
    await listener.close();
  }
}

/** A raw connection to `port` that has sent `text`. */
async function connect(port: number, text = ""): Promise<Deno.TcpConn> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  if (text) await conn.write(encoder.encode(text));
  return conn;
}

/**
 * What arrives on `conn` until `done(text)` holds or the server closes the connection (then
 * `closed` is true); fails after 5 s.
 */
async function receive(
  conn: Deno.TcpConn,
  done: (text: string) => boolean = () => false,
): Promise<{ text: string; closed: boolean }> {
  const buf = new Uint8Array(65536);
  let text = "";
  let late = false;
  const timer = setTimeout(() => {
    late = true;
    conn.close();
  }, 5_000);
  try {
    for (;;) {
      const n = await conn.read(buf).catch(() => null);
      if (late) throw new Error(`no end within 5 s after ${JSON.stringify(text.slice(0, 200))}`);
      if (n === null) return { text, closed: true };
      text += decoder.decode(buf.subarray(0, n));
      if (done(text)) return { text, closed: false };
    }
  } finally {
    clearTimeout(timer);
  }
}

/** Everything until the server closes `conn`. */
async function receiveAll(conn: Deno.TcpConn): Promise<string> {
  const { text } = await receive(conn);
  conn.close();
  return text;
}

/** `count` complete answers with chunked or empty bodies. */
const answers = (count: number) => (text: string) =>
  (text.match(/(0\r\n\r\n|content-length: 0\r\n\r\n)/g) ?? []).length >= count;

const HI = "HTTP/1.1 200 OK\r\ncontent-type: text/plain;charset=UTF-8\r\n" +
  "transfer-encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n";

Deno.test("listenHttp() answers requests over keep-alive connections", async (t) => {
  await withListener(async ({ port, requests }) => {
    await t.step("should answer in order, chunked, and keep the connection", async () => {
      const conn = await connect(
        port,
        "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n",
      );
      const first = await receive(conn, answers(2));
      equal(first.text, HI + HI);
      await conn.write(encoder.encode("GET /c HTTP/1.1\r\nHost: x\r\n\r\n"));
      equal((await receive(conn, answers(1))).text, HI);
      conn.close();
      deepEqual(requests.map((r) => r.url), ["/a", "/b", "/c"]);
    });
    await t.step("should close after the answer when the client says so", async () => {
      const conn = await connect(port, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
      const text = await receiveAll(conn);
      match(text, /^HTTP\/1\.1 200 OK\r\n.*connection: close\r\n\r\n2\r\nhi\r\n0\r\n\r\n$/s);
    });
    await t.step(
      "should answer HTTP/1.0 with the body up to the end of the connection",
      async () => {
        const text = await receiveAll(await connect(port, "GET / HTTP/1.0\r\n\r\n"));
        equal(
          text,
          "HTTP/1.1 200 OK\r\ncontent-type: text/plain;charset=UTF-8\r\nconnection: close\r\n\r\nhi",
        );
      },
    );
    await t.step("should read a path that starts with // as a path", async () => {
      await receiveAll(await connect(port, "GET //evil.example/x HTTP/1.0\r\n\r\n"));
      equal(requests.at(-1)?.url, "//evil.example/x");
    });
  });
});

Deno.test("listenHttp() frames answers without a body", async (t) => {
  const handle: WebHandler = (request) => {
    const path = new URL(request.url).pathname;
    if (path === "/empty") return Promise.resolve(new Response(null, { status: 200 }));
    if (path === "/none") return Promise.resolve(new Response(null, { status: 204 }));
    if (path === "/same") {
      return Promise.resolve(new Response(null, { status: 304, headers: { etag: '"1"' } }));
    }
    if (path === "/close") {
      return Promise.resolve(new Response("x", { headers: { connection: "close" } }));
    }
    // The listener, not the handler, leaves out the body of an answer to HEAD.
    return Promise.resolve(new Response("body"));
  };
  await withListener(async ({ port }) => {
    await t.step(
      "should say content-length: 0 for an empty body, and nothing for HEAD, 204 and 304",
      async () => {
        const conn = await connect(
          port,
          "GET /empty HTTP/1.1\r\nHost: x\r\n\r\nHEAD / HTTP/1.1\r\nHost: x\r\n\r\n" +
            "GET /none HTTP/1.1\r\nHost: x\r\n\r\nGET /same HTTP/1.1\r\nHost: x\r\n\r\n" +
            "GET /empty HTTP/1.1\r\nHost: x\r\n\r\n",
        );
        const { text, closed } = await receive(conn, answers(2));
        conn.close();
        equal(closed, false);
        equal(
          text,
          "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n" +
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain;charset=UTF-8\r\n\r\n" +
            "HTTP/1.1 204 No Content\r\n\r\n" +
            'HTTP/1.1 304 Not Modified\r\netag: "1"\r\n\r\n' +
            "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
        );
      },
    );
    await t.step("should keep an HTTP/1.0 connection that asked, for an empty body", async () => {
      const conn = await connect(port, "GET /empty HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
      const { text, closed } = await receive(conn, (s) => s.endsWith("\r\n\r\n"));
      conn.close();
      equal(closed, false);
      equal(text, "HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: keep-alive\r\n\r\n");
    });
    await t.step("should close after an answer that says connection: close", async () => {
      const text = await receiveAll(await connect(port, "GET /close HTTP/1.1\r\nHost: x\r\n\r\n"));
      match(text, /\r\nconnection: close\r\n\r\n1\r\nx\r\n0\r\n\r\n$/);
    });
  }, handle);
});

Deno.test("listenHttp() refuses a bad request before the handler sees it", async (t) => {
  await withListener(async ({ port, requests }) => {
    const cases: [string, string, RegExp][] = [
      ["a line ending in LF alone", "GET / HTTP/1.1\nHost: x\n\n", /^HTTP\/1\.1 400 Bad Request/],
      [
        "a head over 16 KiB",
        `GET / HTTP/1.1\r\nHost: x\r\nX: ${"a".repeat(MAX_HEAD_BYTES)}\r\n\r\n`,
        /^HTTP\/1\.1 431 Request Header Fields Too Large/,
      ],
      [
        "a chunked body",
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\non\r\n0\r\n\r\n",
        /^HTTP\/1\.1 411 Length Required/,
      ],
      [
        "Transfer-Encoding with Content-Length",
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\non",
        /^HTTP\/1\.1 400 /,
      ],
      [
        "two Content-Length",
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\non",
        /^HTTP\/1\.1 400 /,
      ],
      ["a method Request cannot carry", "TRACE / HTTP/1.1\r\nHost: x\r\n\r\n", /^HTTP\/1\.1 400 /],
      ["HTTP/2", "GET / HTTP/2.0\r\nHost: x\r\n\r\n", /^HTTP\/1\.1 505 /],
    ];
    for (const [what, wire, status] of cases) {
      await t.step(`should answer ${what} and close`, async () => {
        const text = await receiveAll(await connect(port, wire));
        match(text, status);
        match(text, /\r\nconnection: close\r\n/);
        match(text, /\r\n\r\n\{"error":"[^"]+"\}\n$/);
      });
    }
    equal(requests.length, 0);
  });
});

Deno.test("listenHttp() gives the handler the body its Content-Length says", async (t) => {
  const bodies: string[] = [];
  const handle: WebHandler = async (request) => {
    const path = new URL(request.url).pathname;
    if (path === "/read") bodies.push(await request.text());
    return new Response(path);
  };
  await withListener(async ({ port, requests, errors }) => {
    await t.step("should end the body at its length and read on to the next request", async () => {
      const conn = await connect(
        port,
        "POST /read HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello" +
          "GET /next HTTP/1.1\r\nHost: x\r\n\r\n",
      );
      const { text } = await receive(conn, answers(2));
      conn.close();
      match(text, /\r\n5\r\n\/read\r\n0\r\n\r\nHTTP\/1\.1 200 OK\r\n.*\r\n5\r\n\/next\r\n/s);
      deepEqual(bodies, ["hello"]);
    });
    await t.step("should close after a body the handler did not read", async () => {
      const smuggled = "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n";
      const wire = "POST /ignore HTTP/1.1\r\nHost: x\r\n" +
        `Content-Length: ${smuggled.length}\r\n\r\n${smuggled}`;
      const text = await receiveAll(await connect(port, wire));
      match(text, /connection: close\r\n\r\n7\r\n\/ignore\r\n0\r\n\r\n$/);
      equal(requests.at(-1)?.url, "/ignore");
    });
    await t.step("should send 100 Continue once the handler reads", async () => {
      const conn = await connect(
        port,
        "POST /read HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n",
      );
      equal(
        (await receive(conn, (s) => s.includes("\r\n\r\n"))).text,
        "HTTP/1.1 100 Continue\r\n\r\n",
      );
      await conn.write(encoder.encode("on"));
      match((await receive(conn, answers(1))).text, /^HTTP\/1\.1 200 OK\r\n/);
      conn.close();
      equal(bodies.at(-1), "on");
    });
    await t.step("should not say 100 Continue to a body the handler does not read", async () => {
      const text = await receiveAll(
        await connect(
          port,
          "POST /ignore HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n",
        ),
      );
      match(text, /^HTTP\/1\.1 200 OK\r\n.*connection: close\r\n\r\n7\r\n\/ignore\r\n0\r\n\r\n$/s);
    });
    await t.step("should make the body err when the client leaves before its end", async () => {
      const conn = await connect(
        port,
        "POST /read HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc",
      );
      await pause(50);
      conn.close();
      await waitFor(() => errors.length > 0, { what: "the body to err" });
      match(String(errors[0]), /closed the connection before its body ended/);
    });
  }, handle);
});

/** An endless body of 64 KiB pieces that counts what was taken from it and whether it ended. */
function endless() {
  const piece = new Uint8Array(64 * 1024).fill(0x61);
  const state = {
    pulled: 0,
    cancelled: false,
    controller: undefined as ReadableStreamDefaultController<Uint8Array> | undefined,
  };
  const body = new ReadableStream<Uint8Array>({
    start: (controller) => {
      state.controller = controller;
    },
    pull: (controller) => {
      state.pulled += piece.length;
      controller.enqueue(piece);
    },
    cancel: () => {
      state.cancelled = true;
    },
  }, { highWaterMark: 0 });
  return { body, state };
}

Deno.test("listenHttp() writes a body only as fast as the client reads it", async (t) => {
  let stream = endless();
  const handle: WebHandler = () => Promise.resolve(new Response(stream.body));
  await t.step("should stop reading the body while the client reads nothing", async () => {
    await withListener(async ({ port }) => {
      const conn = await connect(port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
      await waitForStill(() => stream.state.pulled, { what: "the body to stop being read" });
      const last = stream.state.pulled;
      ok(stream.state.pulled < 64 * 1024 * 1024, `${stream.state.pulled} bytes taken`);
      // More than was taken when it stalled: the body is read on as the client reads.
      const { text } = await receive(conn, (s) => s.length > last + 1_000_000);
      ok(text.length > last && stream.state.pulled > last);
      conn.close();
      await waitFor(() => stream.state.cancelled, {
        what: "the body cancelled when the client left",
      });
    }, handle);
  });
  await t.step("should close the connection at once when the body errs", async () => {
    stream = endless();
    await withListener(async ({ port }) => {
      const conn = await connect(port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
      await waitForStill(() => stream.state.pulled, { what: "the body to stop being read" });
      stream.state.controller!.error(new Error("the client does not keep up"));
      const text = await receiveAll(conn);
      ok(!text.endsWith("0\r\n\r\n"), "the body is cut, not ended");
    }, handle);
  });
  await t.step("should close a connection whose client takes nothing for too long", async () => {
    stream = endless();
    await withListener(
      async ({ port }) => {
        const conn = await connect(port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        await waitFor(() => stream.state.cancelled, {
          what: "the body cancelled after the write time-out",
        });
        conn.close();
      },
      handle,
      { writeTimeoutMs: 300 },
    );
  });
});

Deno.test("listenHttp() frees an event stream's place when its client leaves", async (t) => {
  const ways: [string, (conn: Deno.TcpConn) => Promise<void>][] = [
    ["closes", (conn) => Promise.resolve(conn.close())],
    // TCP cannot tell a half-close from a client that went away: both end the answer, as in
    // Go's net/http and hyper.
    ["half-closes", async (conn) => {
      await conn.closeWrite();
      equal((await receive(conn)).closed, true);
      conn.close();
    }],
  ];
  for (const [how, leave] of ways) {
    await t.step(`should cancel a body that waits for data once the client ${how}`, async () => {
      let cancelled = false;
      const idle = new ReadableStream<Uint8Array>({
        start: (controller) => controller.enqueue(encoder.encode("data: 1\n\n")),
        cancel: () => {
          cancelled = true;
        },
      });
      await withListener(async ({ port }) => {
        const conn = await connect(port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        await receive(conn, (s) => s.includes("data: 1"));
        await leave(conn);
        await waitFor(() => cancelled, { what: "the body cancelled" });
      }, () => Promise.resolve(new Response(idle)));
    });
  }
});

Deno.test("listenHttp() bounds the time between requests", async (t) => {
  const limits = { headersTimeoutMs: 300, keepAliveTimeoutMs: 200 };
  await withListener(
    async ({ port }) => {
      await t.step("should close an idle keep-alive connection without a word", async () => {
        const conn = await connect(port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        equal(await receiveAll(conn), HI);
      });
      await t.step("should answer 408 to a next head that does not come in time", async () => {
        const conn = await connect(port, "GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\n");
        const text = await receiveAll(conn);
        ok(text.startsWith(HI));
        match(text.slice(HI.length), /^HTTP\/1\.1 408 Request Timeout\r\n/);
      });
      await t.step("should answer 408 to a connection that sends nothing", async () => {
        match(await receiveAll(await connect(port)), /^HTTP\/1\.1 408 /);
      });
    },
    undefined,
    limits,
  );
});

Deno.test("listenHttp() reports what goes wrong", async (t) => {
  await t.step("should answer 500 and tell onError when the handler throws", async () => {
    await withListener(async ({ port, errors }) => {
      const text = await receiveAll(
        await connect(port, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
      );
      match(text, /^HTTP\/1\.1 500 Internal Server Error\r\n/);
      match(text, /\{"error":"internal error"\}\n/);
      match(String(errors[0]), /boom/);
    }, () => Promise.reject(new Error("boom")));
  });
  await t.step("should reject with EADDRINUSE for a port in use", async () => {
    await withListener(async ({ port }) => {
      await rejects(
        listenHttp(
          { hostname: "127.0.0.1", port },
          LIMITS,
          () => Promise.resolve(new Response()),
          () => {},
        ),
        (err: { code?: string }) => err.code === "EADDRINUSE",
      );
    });
  });
});

Deno.test("listenHttp() close() lets the answers under way end", async (t) => {
  const release = new Map<string, () => void>();
  const handle: WebHandler = async (request) => {
    await new Promise<void>((resolve) => release.set(new URL(request.url).pathname, resolve));
    return new Response("late");
  };
  const LATE = /connection: close\r\n\r\n4\r\nlate\r\n0\r\n\r\n$/;
  await withListener(async ({ port, close, requests }) => {
    const idle = await connect(port);
    const first = await connect(port, "GET /first HTTP/1.1\r\nHost: x\r\n\r\n");
    const second = await connect(port, "GET /second HTTP/1.1\r\nHost: x\r\n\r\n");
    await waitFor(() => release.size === 2, { what: "both requests to reach the handler" });
    equal(requests.length, 2);
    let closed = false;
    const closing = close().then(() => closed = true);
    await t.step("should close idle connections at once", async () => {
      equal(await receiveAll(idle), "");
    });
    await t.step("should refuse new connections", async () => {
      await rejects(connect(port));
    });
    await t.step("should finish the answers under way, then resolve", async () => {
      release.get("/first")!();
      match(await receiveAll(first), LATE);
      // The sentinel: one answer begun before close() has ended since; the other still runs,
      // so close() has not resolved.
      equal(closed, false);
      release.get("/second")!();
      match(await receiveAll(second), LATE);
      await closing;
    });
  }, handle);
});

Deno.test("listenHttp() close() does not wait on a client that reads nothing", async (t) => {
  const stream = endless();
  await t.step("should cut the answer off long before the write time-out", async () => {
    await withListener(
      async ({ port, close }) => {
        const conn = await connect(port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        // The body waits on the client: the socket's buffers are full.
        await waitForStill(() => stream.state.pulled, { what: "the body to stop being read" });
        let closed = false;
        void close().then(() => closed = true);
        try {
          await waitFor(() => closed, { what: "close() with a client that reads nothing" });
          ok(stream.state.cancelled, "the body cancelled");
        } finally {
          conn.close();
        }
      },
      () => Promise.resolve(new Response(stream.body)),
      { writeTimeoutMs: 600_000 },
    );
  });
});

Deno.test("listenHttp() reads no more of a client than the request it answers", async (t) => {
  await t.step("should stop reading from a client that sends on while it is answered", async () => {
    let end = () => {};
    const waiting = new ReadableStream<Uint8Array>({
      start: (controller) => {
        controller.enqueue(encoder.encode("data: 1\n\n"));
        end = () => controller.close();
      },
    });
    await withListener(async ({ port, requests }) => {
      const conn = await connect(port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
      await receive(conn, (s) => s.includes("data: 1"));
      // Bytes that are no request: a server that read them all would hold them all.
      const piece = new Uint8Array(64 * 1024).fill(0x61);
      let sent = 0;
      const external = Deno.memoryUsage().external;
      let sending = true;
      const flood = (async () => {
        while (sending) sent += await conn.write(piece);
      })().catch(() => {});
      await waitForStill(() => sent, { what: "the client's writes to stall" });
      // What the server holds of them: at most one read (4 KiB), however much the client sent.
      const held = Deno.memoryUsage().external - external;
      ok(held < 1_000_000, `${held} bytes more held after the client sent ${sent}`);
      sending = false;
      end();
      // The flood is then read as the next request head, and refused for its size.
      match((await receive(conn, (s) => s.includes("431"))).text, /0\r\n\r\nHTTP\/1\.1 431 /);
      conn.close();
      await flood;
      equal(requests.length, 1);
    }, () => Promise.resolve(new Response(waiting)));
  });
});

Deno.test("listenHttp() keeps bytes over 127 in headers as they are", async () => {
  const seen: string[] = [];
  await withListener(async ({ port }) => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await conn.write(
      Uint8Array.from(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Name: caf\xe9\r\nConnection: close\r\n\r\n",
        (c) => c.charCodeAt(0),
      ),
    );
    const wire: number[] = [];
    const buf = new Uint8Array(4096);
    for (let n = await conn.read(buf); n !== null; n = await conn.read(buf)) {
      wire.push(...buf.subarray(0, n));
    }
    conn.close();
    equal(seen[0], "caf\xe9");
    // One byte 0xE9, as it came: not UTF-8's two.
    match(String.fromCharCode(...wire), /\r\nx-name: caf\xe9\r\n/);
  }, (request) => {
    const name = request.headers.get("x-name") ?? "";
    seen.push(name);
    return Promise.resolve(new Response("hi", { headers: { "x-name": name } }));
  });
});
