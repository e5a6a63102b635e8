/**
 * What a command checks before it serves: the `--listen ADDR:PORT` value of `ess serve` and
 * `ess mqtt --listen`, and the length of the control token; and the line that says who can
 * reach the server once it listens. Small on purpose: `ess mqtt` loads the server itself only
 * when it serves.
 *
 * @module
 */
import { UsageError } from "../errors.ts";

/** The shortest control token taken: shorter ones are guessed too easily. */
export const MIN_TOKEN_LENGTH = 16;
/** The longest control token taken: the server reads no longer one from a request. */
export const MAX_TOKEN_LENGTH = 1024;

/**
 * Why `token` can never be sent as a bearer token, or `undefined` if it can: too short to be
 * safe, too long for the server to read, or holding a blank (a space, a tab, a line break), which
 * the `Authorization` header cannot carry.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * equal(tokenProblem("0123456789abcdef"), undefined);
 * equal(tokenProblem("0123456789abcdef\n"), "the control token contains a blank (a space, a tab or a line break), which no Authorization header can carry");
 * ```
 */
export function tokenProblem(token: string): string | undefined {
  if (token.length < MIN_TOKEN_LENGTH) {
    return `the control token has ${token.length} characters: use at least ` +
      `${MIN_TOKEN_LENGTH}, e.g. from 'openssl rand -hex 24'`;
  }
  if (token.length > MAX_TOKEN_LENGTH) {
    return `the control token has ${token.length} characters: use at most ${MAX_TOKEN_LENGTH}, ` +
      `e.g. from 'openssl rand -hex 24'`;
  }
  if (/\s/.test(token)) {
    return "the control token contains a blank (a space, a tab or a line break), which no " +
      "Authorization header can carry";
  }
  return undefined;
}

/** Where the server listens unless told otherwise: this machine only. */
export const DEFAULT_LISTEN = "127.0.0.1:8080";

/** A parsed listen address. */
export interface ListenAddress {
  /** IP address or host name, without brackets. */
  hostname: string;
  /** TCP port; 0 picks a free one. */
  port: number;
}

/**
 * Parses `ADDR:PORT`, with an IPv6 address in brackets (`[::1]:8080`).
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * deepEqual(parseListen("[::1]:8080"), { hostname: "::1", port: 8080 });
 * deepEqual(parseListen("0.0.0.0:9000"), { hostname: "0.0.0.0", port: 9000 });
 * ```
 */
export function parseListen(text: string): ListenAddress {
  const value = text.trim();
  const m = /^\[([0-9A-Fa-f:.]+)\]:(\d{1,5})$/.exec(value) ??
    /^([A-Za-z0-9.-]+):(\d{1,5})$/.exec(value);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535) {
    throw new UsageError(
      `bad listen address ${JSON.stringify(text)}: use ADDR:PORT, e.g. 127.0.0.1:8080, ` +
        `0.0.0.0:8080 or [::1]:8080`,
    );
  }
  return { hostname: m[1]!, port };
}

/**
 * Whether only this machine can connect to `hostname`: 127.0.0.0/8, `::1` and `localhost`.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * equal(isLoopback("127.0.0.1"), true);
 * equal(isLoopback("0.0.0.0"), false);
 * ```
 */
export function isLoopback(hostname: string): boolean {
  const h = hostname.toLowerCase().replace(/^\[|\]$/g, "");
  if (h === "localhost" || h === "::1" || h === "0:0:0:0:0:0:0:1") return true;
  return /^(::ffff:)?127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/** `host:port` for a URL, with an IPv6 address in brackets. */
export function authority(address: ListenAddress): string {
  const host = address.hostname.includes(":") ? `[${address.hostname}]` : address.hostname;
  return `${host}:${address.port}`;
}

/**
 * The one line the command prints when the server is reachable from other machines, or
 * `undefined` on loopback.
 *
 * @example
 * ```ts
 * import { equal, match } from "node:assert/strict";
 * equal(exposureNotice({ hostname: "127.0.0.1", port: 8080 }), undefined);
 * match(exposureNotice({ hostname: "0.0.0.0", port: 8080 })!, /every machine that can reach/);
 * ```
 */
export function exposureNotice(address: ListenAddress, controls = false): string | undefined {
  if (isLoopback(address.hostname)) return undefined;
  const wildcard = address.hostname === "0.0.0.0" || address.hostname === "::";
  const who = wildcard
    ? "every machine that can reach this one on any of its addresses"
    : `every machine that can reach ${address.hostname}`;
  return `listening on ${authority(address)}: ${who} can now see the dashboard, the API and ` +
    `the metrics${controls ? " (controls need the token)" : ""}; keep it on your LAN`;
}
