import { deepEqual, equal, ok, throws } from "node:assert/strict";
import {
  MAX_HEAD_BYTES,
  MAX_HEADERS,
  type ParsedHead,
  RequestError,
  RequestHeadParser,
} from "../lib/serve/_request.ts";

const SIZES = [1, 2, 7, 1000];

const bytes = (text: string) => Uint8Array.from(text, (c) => c.charCodeAt(0));
const text = (data: Uint8Array) => String.fromCharCode(...data);

/** Feeds `wire` in pieces of `size` bytes; returns the head and how many bytes it took. */
function feed(wire: string, size: number): { parsed: ParsedHead; at: number } | undefined {
  const parser = new RequestHeadParser();
  const all = bytes(wire);
  for (let i = 0; i < all.length; i += size) {
    const parsed = parser.push(all.subarray(i, i + size));
    if (parsed) return { parsed, at: Math.min(i + size, all.length) - parsed.rest.length };
  }
  return undefined;
}

/** The head of `wire`, the same whatever pieces it comes in. */
function parse(wire: string): ParsedHead {
  const results = SIZES.map((size) => feed(wire, size));
  for (const result of results) deepEqual(result?.parsed, results[0]?.parsed);
  ok(results[0], "a complete head");
  return results[0].parsed;
}

/** Asserts that `wire` is refused with `status`, however it is cut. */
function refused(wire: string, status: number, message?: RegExp): void {
  for (const size of SIZES) {
    throws(() => feed(wire, size), (err: unknown) => {
      ok(err instanceof RequestError, String(err));
      equal(err.status, status, `${JSON.stringify(wire.slice(0, 60))} in pieces of ${size}`);
      if (message) ok(message.test(err.message), err.message);
      return true;
    });
  }
}

const GET = "GET /api/state?x=1 HTTP/1.1\r\nHost: ess.local:8080\r\nAccept: */*\r\n\r\n";

Deno.test("RequestHeadParser reads a request head in pieces of any size", async (t) => {
  for (const size of SIZES) {
    await t.step(`should complete exactly at the blank line (pieces of ${size})`, () => {
      const result = feed(GET, size);
      equal(result?.at, GET.length);
      deepEqual(result?.parsed.head, {
        method: "GET",
        target: "/api/state?x=1",
        version: "1.1",
        headers: [["Host", "ess.local:8080"], ["Accept", "*/*"]],
        contentLength: 0,
        keepAlive: true,
        expectsContinue: false,
      });
    });
  }
  await t.step("should wait for more until the blank line", () => {
    const parser = new RequestHeadParser();
    equal(parser.started, false);
    equal(parser.push(bytes(GET.slice(0, -2))), undefined);
    equal(parser.started, true);
    ok(parser.push(bytes("\r\n")));
  });
  await t.step("should hand back the bytes after the head: a body, the next request", () => {
    const body = "on";
    const wire = "POST /api/control/active HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n" +
      body + GET;
    for (const size of SIZES) {
      const parser = new RequestHeadParser();
      const all = bytes(wire);
      let rest = "";
      for (let i = 0; i < all.length; i += size) {
        const parsed = parser.push(all.subarray(i, i + size));
        if (parsed) {
          equal(parsed.head.contentLength, 2);
          rest = text(parsed.rest) + text(all.subarray(i + size));
          break;
        }
      }
      equal(rest, body + GET, `pieces of ${size}`);
    }
  });
  await t.step("should keep its own copy: the caller may reuse its buffer", () => {
    const parser = new RequestHeadParser();
    const buffer = bytes(GET.slice(0, 20));
    parser.push(buffer);
    buffer.fill(0x41);
    equal(parser.push(bytes(GET.slice(20)))?.head.target, "/api/state?x=1");
  });
  await t.step("should skip empty lines before the request line", () => {
    equal(parse(`\r\n\r\n${GET}`).head.target, "/api/state?x=1");
  });
  await t.step("should trim the spaces and tabs around a value and keep those inside", () => {
    const { head } = parse("GET / HTTP/1.1\r\nHost: x\r\nX-A: \t a \t b \t\r\nX-B:\r\n\r\n");
    deepEqual(head.headers.slice(1), [["X-A", "a \t b"], ["X-B", ""]]);
  });
  await t.step("should keep bytes over 127 in a value as the same code units", () => {
    const { head } = parse("GET / HTTP/1.1\r\nHost: x\r\nX-Name: caf\xe9 \x80\xff\r\n\r\n");
    equal(head.headers[1]![1], "caf\xe9 \x80\xff");
    equal(new Headers(head.headers).get("x-name"), "caf\xe9 \x80\xff");
  });
  await t.step("should note a client that waits for 100 Continue", () => {
    const wire = "POST /x HTTP/1.1\r\nHost: x\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n";
    equal(parse(wire).head.expectsContinue, true);
  });
  await t.step("should not have an HTTP/1.0 client told to go on: it knows no 1xx", () => {
    const wire = "POST /x HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n";
    equal(parse(wire).head.expectsContinue, false);
  });
});

Deno.test("RequestHeadParser knows when a connection may carry another request", async (t) => {
  const keepAlive = (wire: string) => parse(wire).head.keepAlive;
  await t.step("should keep HTTP/1.1 unless the client says close", () => {
    equal(keepAlive("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), true);
    equal(keepAlive("GET / HTTP/1.1\r\nHost: x\r\nConnection: Close\r\n\r\n"), false);
    equal(keepAlive("GET / HTTP/1.1\r\nHost: x\r\nConnection: te, close\r\n\r\n"), false);
  });
  await t.step("should close HTTP/1.0 unless the client says keep-alive", () => {
    equal(keepAlive("GET / HTTP/1.0\r\n\r\n"), false);
    equal(keepAlive("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"), true);
    equal(parse("GET / HTTP/1.0\r\n\r\n").head.version, "1.0");
  });
});

Deno.test("RequestHeadParser refuses the shapes of request smuggling", async (t) => {
  const post = (headers: string) =>
    `POST /api/control/active HTTP/1.1\r\nHost: x\r\n${headers}\r\n`;
  await t.step("should take one Content-Length, or the same one repeated", () => {
    equal(parse(post("Content-Length: 12\r\n")).head.contentLength, 12);
    equal(parse(post("Content-Length: 5\r\nContent-Length: 5\r\n")).head.contentLength, 5);
    equal(parse(post("Content-Length: 5, 5\r\n")).head.contentLength, 5);
  });
  await t.step("should answer 400 to Content-Length values that differ", () => {
    refused(post("Content-Length: 5\r\nContent-Length: 6\r\n"), 400, /differ/);
    refused(post("Content-Length: 5, 50\r\n"), 400, /differ/);
  });
  await t.step("should answer 400 to a Content-Length that is not a number of bytes", () => {
    for (const value of ["-1", "+5", "1e3", "0x10", "5 5", "", "1234567890123456"]) {
      refused(post(`Content-Length: ${value}\r\n`), 400, /Content-Length/);
    }
  });
  await t.step("should answer 400 to Transfer-Encoding with Content-Length", () => {
    refused(post("Transfer-Encoding: chunked\r\nContent-Length: 3\r\n"), 400, /both/);
    refused(post("Content-Length: 3\r\nTransfer-Encoding: identity\r\n"), 400, /both/);
  });
  await t.step("should answer 411 to a chunked body and 501 to another coding", () => {
    refused(post("Transfer-Encoding: chunked\r\n"), 411, /Content-Length/);
    refused(post("Transfer-Encoding: gzip, chunked\r\n"), 411);
    refused(post("Transfer-Encoding: gzip\r\n"), 501);
  });
  await t.step("should answer 400 to a name spaced from its colon or folded onto a line", () => {
    refused(post("Content-Length : 3\r\n"), 400, /NAME: VALUE/);
    refused(post("X-A: 1\r\n Content-Length: 3\r\n"), 400);
    refused(post("X-A: 1\r\n\tmore\r\n"), 400);
    refused(post(": 3\r\n"), 400);
    refused(post("No-Colon\r\n"), 400);
    refused(post("X(A): 1\r\n"), 400);
  });
  await t.step("should answer 400 to a line that ends in LF alone, at that byte", () => {
    refused("GET / HTTP/1.1\nHost: x\n\n", 400, /LF alone/);
    refused("GET / HTTP/1.1\r\nHost: x\n\r\n", 400, /LF alone/);
    const parser = new RequestHeadParser();
    throws(() => parser.push(bytes("GET / HTTP/1.1\n")), RequestError);
  });
  await t.step("should answer 400 to a CR without LF and to control characters", () => {
    refused("GET / HTTP/1.1\rHost: x\r\n\r\n", 400, /CR/);
    for (const c of ["\x00", "\x1b", "\x7f", "\x0b", "\x0c"]) {
      refused(`GET / HTTP/1.1\r\nHost: x\r\nX-A: a${c}b\r\n\r\n`, 400, /control character/);
    }
  });
  await t.step("should answer 400 to no Host or two in HTTP/1.1", () => {
    refused("GET / HTTP/1.1\r\n\r\n", 400, /Host/);
    refused("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", 400, /Host/);
    refused("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", 400, /Host/);
  });
});

Deno.test("RequestHeadParser takes only request lines ess serves", async (t) => {
  await t.step("should answer 400 to a target that is not a path", () => {
    for (const target of ["*", "http://evil.example/", "evil.example:443", "api/state", "/a\xe9"]) {
      refused(`GET ${target} HTTP/1.1\r\nHost: x\r\n\r\n`, 400, /not a path/);
    }
  });
  await t.step("should take a path that starts with // as a path", () => {
    equal(
      parse("GET //evil.example/x HTTP/1.1\r\nHost: x\r\n\r\n").head.target,
      "//evil.example/x",
    );
  });
  await t.step("should answer 400 to a request line of another shape", () => {
    for (
      const line of [
        "GET  / HTTP/1.1",
        "GET / HTTP/1.1 ",
        "GET /",
        "GET\t/ HTTP/1.1",
        "G(T / HTTP/1.1",
        "GET / http/1.1",
        "GET / HTTP/1.10",
        "GET / HTTP/1",
      ]
    ) {
      refused(`${line}\r\nHost: x\r\n\r\n`, 400);
    }
  });
  await t.step("should answer 505 to another HTTP version", () => {
    refused("GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505);
    refused("GET / HTTP/0.9\r\nHost: x\r\n\r\n", 505);
  });
  await t.step("should take any token as a method: the handler answers 405", () => {
    equal(parse("PURGE / HTTP/1.1\r\nHost: x\r\n\r\n").head.method, "PURGE");
  });
});

Deno.test("RequestHeadParser bounds what a client can make it hold", async (t) => {
  const withPadding = (length: number) => {
    const start = "GET / HTTP/1.1\r\nHost: x\r\nX-Pad: ";
    return `${start}${"a".repeat(length - start.length - 4)}\r\n\r\n`;
  };
  await t.step(`should take a head of exactly ${MAX_HEAD_BYTES} bytes`, () => {
    equal(withPadding(MAX_HEAD_BYTES).length, MAX_HEAD_BYTES);
    equal(parse(withPadding(MAX_HEAD_BYTES)).head.headers[1]![0], "X-Pad");
  });
  await t.step("should answer 431 at the first byte past the cap, without waiting", () => {
    refused(withPadding(MAX_HEAD_BYTES + 1), 431, /longer than/);
    const parser = new RequestHeadParser();
    equal(parser.push(bytes("a".repeat(MAX_HEAD_BYTES))), undefined);
    throws(() => parser.push(bytes("a")), (err: unknown) => (err as RequestError).status === 431);
  });
  await t.step("should count empty lines before the request line towards the cap", () => {
    const parser = new RequestHeadParser();
    equal(parser.push(bytes("\r\n".repeat(MAX_HEAD_BYTES / 2))), undefined);
    throws(
      () => parser.push(bytes("\r\n")),
      (err: unknown) => (err as RequestError).status === 431,
    );
  });
  await t.step(`should take ${MAX_HEADERS} headers and answer 431 to one more`, () => {
    const head = (n: number) => `GET / HTTP/1.1\r\nHost: x\r\n${"X: 1\r\n".repeat(n - 1)}\r\n`;
    equal(parse(head(MAX_HEADERS)).head.headers.length, MAX_HEADERS);
    refused(head(MAX_HEADERS + 1), 431, new RegExp(`more than ${MAX_HEADERS} headers`));
  });
});
