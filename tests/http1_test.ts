import assert from "node:assert/strict";
import {
  HttpLimitError,
  HttpParseError,
  type ParsedResponse,
  ResponseParser,
} from "../lib/device/_http1.ts";
import { MAX_BODY_BYTES, MAX_INTERIM_ANSWERS } from "../lib/device/limits.ts";

const bytes = (text: string) => new TextEncoder().encode(text);
const text = (answer: ParsedResponse | undefined) => new TextDecoder().decode(answer?.body);

/** Feeds `wire` in pieces of `size` bytes; returns every answer and when it completed. */
function feed(parser: ResponseParser, wire: string, size: number) {
  const all = bytes(wire);
  const answers: { answer: ParsedResponse; at: number }[] = [];
  for (let i = 0; i < all.length; i += size) {
    const answer = parser.push(all.subarray(i, i + size));
    if (answer) answers.push({ answer, at: Math.min(i + size, all.length) });
  }
  return answers;
}

const CHUNKED = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" +
  "Transfer-Encoding: chunked\r\n\r\n" +
  '7\r\n{"a": 1\r\nA;ext=1\r\n, "b": "xy\r\n2\r\n"}\r\n0\r\n\r\n';

Deno.test("ResponseParser reads Content-Length bodies", async (t) => {
  const wire = "HTTP/1.1 200 OK\r\nContent-Length: 13\r\nX-Echo: Yes\r\n\r\n" +
    '{"status": 1}';
  for (const size of [1, 3, 7, 1000]) {
    await t.step(`should complete exactly at the last byte (pieces of ${size})`, () => {
      const answers = feed(new ResponseParser("POST"), wire, size);
      assert.equal(answers.length, 1);
      assert.equal(answers[0]!.at, bytes(wire).length);
      const { answer } = answers[0]!;
      assert.equal(answer.status, 200);
      assert.equal(answer.statusText, "OK");
      assert.deepEqual(answer.headers, [["content-length", "13"], ["x-echo", "Yes"]]);
      assert.equal(text(answer), '{"status": 1}');
      assert.equal(answer.keepAlive, true);
    });
  }
});

Deno.test("ResponseParser reads chunked bodies", async (t) => {
  for (const size of [1, 2, 5, 1000]) {
    await t.step(`should join the chunks and skip extensions (pieces of ${size})`, () => {
      const answers = feed(new ResponseParser("POST"), CHUNKED, size);
      assert.equal(answers.length, 1);
      assert.equal(answers[0]!.at, bytes(CHUNKED).length);
      assert.deepEqual(JSON.parse(text(answers[0]!.answer)), { a: 1, b: "xy" });
    });
  }
  await t.step("should skip trailers", () => {
    const wire = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" +
      "2\r\nok\r\n0\r\nX-Trailer: 1\r\n\r\n";
    assert.equal(text(new ResponseParser("GET").push(bytes(wire))), "ok");
  });
  await t.step("should refuse chunk data longer than its size", () => {
    const wire = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokay\r\n0\r\n\r\n";
    assert.throws(() => new ResponseParser("GET").push(bytes(wire)), HttpParseError);
  });
});

Deno.test("ResponseParser knows when a connection can be reused", async (t) => {
  await t.step("should read to the end of the connection without a length", () => {
    const parser = new ResponseParser("GET");
    assert.equal(parser.push(bytes("HTTP/1.0 200 OK\r\n\r\nhello ")), undefined);
    assert.equal(parser.push(bytes("world")), undefined);
    const answer = parser.end();
    assert.equal(text(answer), "hello world");
    assert.equal(answer?.keepAlive, false);
  });
  await t.step("should close after Connection: close, and keep HTTP/1.0 keep-alive", () => {
    const close = new ResponseParser("GET").push(
      bytes("HTTP/1.1 502 Bad Gateway\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"),
    );
    assert.equal(close?.status, 502);
    assert.equal(close?.keepAlive, false);
    const old = new ResponseParser("GET").push(
      bytes("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n"),
    );
    assert.equal(old?.keepAlive, true);
  });
  await t.step("should give no answer when the connection ends too early", () => {
    const parser = new ResponseParser("GET");
    parser.push(bytes("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"));
    assert.equal(parser.end(), undefined);
  });
  await t.step("should count bytes after the answer", () => {
    const parser = new ResponseParser("GET");
    assert.ok(parser.push(bytes("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA")));
    assert.equal(parser.leftover, 5);
  });
});

Deno.test("ResponseParser handles answers without a body", async (t) => {
  await t.step("should skip interim 1xx answers", () => {
    const answer = new ResponseParser("PUT").push(
      bytes("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
    );
    assert.equal(answer?.status, 200);
    assert.equal(text(answer), "ok");
  });
  await t.step("should finish 204 and HEAD answers at the headers", () => {
    assert.equal(
      new ResponseParser("GET").push(bytes("HTTP/1.1 204 No Content\r\n\r\n"))?.status,
      204,
    );
    const head = new ResponseParser("HEAD").push(
      bytes("HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n"),
    );
    assert.equal(head?.body.length, 0);
  });
});

Deno.test("ResponseParser refuses what is not HTTP or too large", async (t) => {
  const cases: [string, string, RegExp][] = [
    ["a non-HTTP peer", "SSH-2.0-OpenSSH_9.2\r\n\r\n", /not an HTTP\/1\.x status line/],
    ["a broken header", "HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", /malformed header/],
    ["a bad length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", /not a number of bytes/],
    [
      "differing lengths",
      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok",
      /Content-Length headers that differ/,
    ],
    ["two lengths in one", "HTTP/1.1 200 OK\r\nContent-Length: 2, 3\r\n\r\nok", /differ/],
    [
      "a coded chunked body",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
      /unsupported transfer encoding "gzip, chunked"/,
    ],
    [
      "chunked twice",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
      /unsupported transfer encoding "chunked, chunked"/,
    ],
    [
      "chunked and a length",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
      /both Transfer-Encoding and Content-Length/,
    ],
    [
      "a space before the colon",
      "HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nok",
      /malformed header line "Content-Length : 2"/,
    ],
    [
      "a folded line",
      "HTTP/1.1 200 OK\r\nX-A: 1\r\n\t2: 3\r\nContent-Length: 2\r\n\r\nok",
      /malformed header line/,
    ],
    ["a huge length", "HTTP/1.1 200 OK\r\nContent-Length: 999999999\r\n\r\n", /too large/],
    ["gzip framing", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", /unsupported transfer/],
    [
      "a bad chunk size",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
      /chunk size/,
    ],
    ["a status beyond 599", "HTTP/1.1 999 Odd\r\n\r\n", /not an HTTP\/1\.x status line/],
    ["a status below 100", "HTTP/1.1 042 Odd\r\n\r\n", /not an HTTP\/1\.x status line/],
    [
      "a control character in the reason phrase",
      "HTTP/1.1 200 O\x1bK\r\n\r\n",
      /not an HTTP\/1\.x status line: "HTTP\/1\.1 200 O\?K"/,
    ],
    [
      "a header name that is no token",
      "HTTP/1.1 200 OK\r\nX\x1b[2J Y: 1\r\n\r\n",
      /malformed header line "X\?\[2J Y: 1"/,
    ],
    [
      "a line feed inside a header name",
      "HTTP/1.1 200 OK\r\nX\nY: 1\r\n\r\n",
      /malformed header line "X Y: 1"/,
    ],
    [
      "a NUL in a header value",
      "HTTP/1.1 200 OK\r\nX: a\0b\r\n\r\n",
      /malformed header line "X: a\?b"/,
    ],
  ];
  for (const [what, wire, message] of cases) {
    await t.step(`should refuse ${what}`, () => {
      assert.throws(() => new ResponseParser("GET").push(bytes(wire)), message);
    });
  }
  await t.step("should refuse endless headers instead of buffering them", () => {
    const parser = new ResponseParser("GET");
    parser.push(bytes("HTTP/1.1 200 OK\r\n"));
    const line = bytes(`X-Filler: ${"x".repeat(1000)}\r\n`);
    assert.throws(() => {
      for (let i = 0; i < 100; i++) parser.push(line);
    }, /headers longer than/);
  });
});

Deno.test("ResponseParser holds answers to the limits of limits.ts", async (t) => {
  const interim = "HTTP/1.1 100 Continue\r\n\r\n";
  const ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
  await t.step("should skip up to MAX_INTERIM_ANSWERS interim answers", () => {
    const answer = new ResponseParser("PUT").push(bytes(interim.repeat(MAX_INTERIM_ANSWERS) + ok));
    assert.equal(answer?.status, 200);
  });
  await t.step("should refuse one interim answer more, even fed a byte at a time", () => {
    assert.throws(
      () => feed(new ResponseParser("PUT"), interim.repeat(MAX_INTERIM_ANSWERS + 1), 1),
      (e: unknown) => e instanceof HttpLimitError && /more than 4 interim/.test(e.message),
    );
  });
  await t.step("should count interim answers per answer, not per connection", () => {
    const parser = new ResponseParser("PUT");
    const wire = interim.repeat(MAX_INTERIM_ANSWERS) + ok;
    assert.equal(feed(parser, wire, 1000).length, 1);
    assert.equal(feed(parser, wire, 1).length, 1);
  });
  await t.step("should take a body of exactly MAX_BODY_BYTES and refuse one byte more", () => {
    const body = "x".repeat(MAX_BODY_BYTES);
    const at = (n: number) => `HTTP/1.1 200 OK\r\nContent-Length: ${n}\r\n\r\n`;
    assert.equal(
      new ResponseParser("GET").push(bytes(at(MAX_BODY_BYTES) + body))?.body.length,
      MAX_BODY_BYTES,
    );
    assert.throws(
      () => new ResponseParser("GET").push(bytes(at(MAX_BODY_BYTES + 1))),
      HttpLimitError,
    );
    const close = new ResponseParser("GET");
    close.push(bytes(`HTTP/1.0 200 OK\r\n\r\n${body}`));
    assert.throws(() => close.push(bytes("x")), HttpLimitError);
    const chunked = new ResponseParser("GET");
    chunked.push(
      bytes(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n100000\r\n${body}\r\n`),
    );
    assert.throws(() => chunked.push(bytes("1\r\nx\r\n")), HttpLimitError);
  });
  await t.step("should put the peer's text through redact before quoting it", () => {
    const parser = new ResponseParser("GET", (text) => text.replaceAll("hunter22", "***"));
    assert.throws(() => parser.push(bytes("XTTP hunter22\r\n\r\n")), /status line: "XTTP \*\*\*"/);
  });
  await t.step("should read a body dripped one byte at a time", () => {
    const body = JSON.stringify({ v: "y".repeat(5000) });
    const answers = feed(
      new ResponseParser("GET"),
      `HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
      1,
    );
    assert.equal(text(answers[0]?.answer), body);
  });
});
