import assert from "node:assert/strict";
import { HttpParseError, type ParsedResponse, ResponseParser } from "../lib/device/_http1.ts";

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
    ["a bad length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", /invalid Content-Length/],
    ["a huge length", "HTTP/1.1 200 OK\r\nContent-Length: 999999999\r\n\r\n", /too large/],
    ["gzip framing", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", /unsupported transfer/],
    [
      "a bad chunk size",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
      /chunk size/,
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
