/**
 * HTTP pieces of the server: answers with the right headers, a capped body reader, the bearer
 * token check and the same-origin check. Every string from outside goes through
 * {@link AnswerRedactor} before it is put into an answer, so no secret the server knows can leave it.
 *
 * @module
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { Json } from "../device/flatten.ts";
import { MIN_SECRET_LENGTH, REDACTED, Redactor } from "../redact.ts";

/** Headers every answer carries. */
const BASE_HEADERS: Readonly<Record<string, string>> = {
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
  "content-security-policy": "default-src 'self'; frame-ancestors 'none'; " +
    "base-uri 'none'; form-action 'none'; object-src 'none'",
};

/**
 * Lets pages of the same origin frame an answer, as Home Assistant's ingress does (its frontend
 * shows the add-on's page in an iframe of its own origin). Only for requests that came through
 * an ingress proxy, which marks them with `X-Ingress-Path`: a browser never sends that header,
 * so pages of other sites still cannot frame ess.
 */
export function allowSameOriginFrames(headers: Headers): void {
  headers.set(
    "content-security-policy",
    BASE_HEADERS["content-security-policy"]!.replace(
      "frame-ancestors 'none'",
      "frame-ancestors 'self'",
    ),
  );
  headers.set("x-frame-options", "SAMEORIGIN");
}

/** The words in a key that holds a secret: `auth_key`, `authkey`, `password`, `passwd`, ... */
const SECRET_WORDS = "auth_?key|passw(?:or)?d|token|secret";

const SECRET_KEY = new RegExp(SECRET_WORDS, "i");

/**
 * Whether a key of the device's may hold a secret, whatever its value looks like.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * equal(isSecretKey("wifi_password"), true);
 * equal(isSecretKey("pcs_pv_total_power"), false);
 * ```
 */
export function isSecretKey(key: string): boolean {
  return SECRET_KEY.test(key);
}

/**
 * A key that holds a secret followed by its value, in JSON or in prose (`"auth_key": "…"`,
 * `password=…`, also JSON-escaped inside a string): how a device or an error message echoes one.
 */
const SECRET_PAIR = new RegExp(
  `((?:${SECRET_WORDS})\\\\?["']?\\s*[:=]\\s*\\\\?["']?)([^"'\\\\\\s,;{}[\\]&]{4,})`,
  "gi",
);

/** Deeper than anything the server sends: the device's answers are cut well before this. */
const MAX_VALUE_DEPTH = 64;

/**
 * Replaces every secret the server knows, and the value of every `auth_key` or `password` it
 * meets, in the strings it is about to send. It works on strings, never on a whole answer: a
 * secret may well occur in the answer's own syntax (`true`, the `0000` of a timestamp), and
 * replacing it there would break the JSON or the exposition format.
 */
export class AnswerRedactor {
  #secrets = new Redactor();
  #more: () => readonly string[];
  #shared: Redactor;

  /**
   * `secrets` go to a {@link Redactor} of lib/redact.ts (which ignores those under 4
   * characters: they would mangle ordinary text). `more` gives secrets learnt while running
   * (values the device sent under `auth_key`). `shared` is the redactor the process already
   * keeps (the logger's): it holds the passwords, and the auth keys the device client adds as
   * it logs in, which the device may echo in any field.
   */
  constructor(
    secrets: readonly (string | undefined)[],
    more: () => readonly string[] = () => [],
    shared: Redactor = new Redactor(),
  ) {
    this.#more = more;
    this.#shared = shared;
    for (const secret of secrets) this.#secrets.add(secret);
  }

  /**
   * `text` with every secret replaced by {@link REDACTED}. Values met under `auth_key` or
   * `password` are replaced wherever else they occur in `text`, but not remembered: a device
   * that sends new ones on every poll must not grow the list.
   */
  text(text: string): string {
    const echoed = new Set(this.#more());
    let out = text.replace(SECRET_PAIR, (_, key: string, value: string) => {
      echoed.add(value);
      return `${key}${REDACTED}`;
    });
    for (const value of echoed) {
      if (value.length < MIN_SECRET_LENGTH) continue;
      for (const spelling of [value, JSON.stringify(value).slice(1, -1)]) {
        if (out.includes(spelling)) out = out.replaceAll(spelling, REDACTED);
      }
    }
    return this.#shared.redact(this.#secrets.redact(out));
  }

  /** `value` {@link AnswerRedactor.value redacted}, as the JSON text of an answer. */
  json(value: Json): string {
    return `${JSON.stringify(this.value(value))}\n`;
  }

  /**
   * A copy of `value` with every string in it, keys too, passed through
   * {@link AnswerRedactor.text}; numbers, booleans and the structure stay as they are.
   */
  value(value: Json, depth = 0): Json {
    if (typeof value === "string") return this.text(value);
    if (typeof value !== "object" || value === null) return value;
    if (depth >= MAX_VALUE_DEPTH) return null;
    if (Array.isArray(value)) return value.map((item) => this.value(item, depth + 1));
    // fromEntries defines own properties, so even a key named `__proto__` stays a key.
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [this.text(k), this.value(v, depth + 1)]),
    );
  }
}

/** Builds answers; it knows the secrets and the cache policy. */
export class Answers {
  readonly redactor: AnswerRedactor;

  constructor(redactor: AnswerRedactor) {
    this.redactor = redactor;
  }

  /** A JSON answer, not to be cached, with every string in `body` redacted. */
  json(status: number, body: Json, headers: Record<string, string> = {}): Response {
    return this.text(status, this.redactor.json(body), "application/json", headers);
  }

  /** `{"error": message}` with `status`, the message redacted. */
  error(status: number, message: string, headers: Record<string, string> = {}): Response {
    return this.json(status, { error: message }, headers);
  }

  /**
   * A text answer as it is, not to be cached: `body` must be made of ess's own text and of
   * strings that went through the redactor already.
   */
  text(
    status: number,
    body: string,
    contentType: string,
    headers: Record<string, string> = {},
  ): Response {
    return new Response(body, {
      status,
      headers: {
        ...BASE_HEADERS,
        "content-type": contentType,
        "cache-control": "no-store",
        ...headers,
      },
    });
  }

  /** A dashboard asset: the browser checks back with every load, the text never changes. */
  asset(body: string, contentType: string): Response {
    return new Response(body, {
      status: 200,
      headers: { ...BASE_HEADERS, "content-type": contentType, "cache-control": "no-cache" },
    });
  }

  /** The head of a stream (SSE). */
  stream(body: ReadableStream<Uint8Array>, contentType: string): Response {
    return new Response(body, {
      status: 200,
      headers: {
        ...BASE_HEADERS,
        "content-type": contentType,
        "cache-control": "no-store",
        "x-accel-buffering": "no",
      },
    });
  }
}

/** Why a body could not be read. */
export type BodyProblem = "too-large" | "timeout";

/**
 * Reads a request body as UTF-8 text, at most `maxBytes`, within `timeoutMs`: a client that
 * sends more, or dribbles its bytes, gets an answer instead of holding the handler.
 */
export async function readCappedText(
  request: Request,
  maxBytes: number,
  timeoutMs: number,
): Promise<string | BodyProblem> {
  const declared = Number(request.headers.get("content-length") ?? "0");
  if (declared > maxBytes) return "too-large";
  if (!request.body) return "";
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), timeoutMs);
  });
  try {
    for (;;) {
      const next = await Promise.race([reader.read(), timeout]);
      if (next === "timeout") return "timeout";
      if (next.done) break;
      size += next.value.byteLength;
      if (size > maxBytes) return "too-large";
      chunks.push(next.value);
    }
  } finally {
    clearTimeout(timer);
    reader.cancel().catch(() => {});
  }
  const all = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    all.set(chunk, at);
    at += chunk.byteLength;
  }
  return new TextDecoder().decode(all);
}

const digest = (text: string) => createHash("sha256").update(text, "utf8").digest();

/**
 * Whether the request carries `Authorization: Bearer <token>`. Both sides are hashed first, so
 * the comparison takes the same time whatever the length or the first wrong character.
 */
export function hasBearerToken(request: Request, token: string): boolean {
  const header = request.headers.get("authorization") ?? "";
  const m = /^Bearer[ \t]+(\S{1,1024})[ \t]*$/i.exec(header);
  const given = m ? m[1]! : "";
  return timingSafeEqual(digest(given), digest(token)) && m !== null;
}

/**
 * Whether a request comes from another site: it has an `Origin` whose host differs from the
 * `Host` it was sent to. Browsers send `Origin` on every cross-site POST; curl sends none.
 */
export function isCrossOrigin(request: Request): boolean {
  const origin = request.headers.get("origin");
  if (origin === null) return false;
  const host = request.headers.get("host") ?? new URL(request.url).host;
  try {
    return new URL(origin).host.toLowerCase() !== host.toLowerCase();
  } catch {
    return true;
  }
}
