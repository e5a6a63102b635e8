/**
 * Which `Host` names the server answers to, against DNS rebinding: a web page on
 * `http://rebind.example:8080`, whose DNS the page's owner points at 127.0.0.1 once the page has
 * loaded, is the same origin as the server to the browser, so it could read the state and the
 * metrics and try tokens. Its requests still carry `Host: rebind.example`; the server answers
 * only names it knows to be its own, and ones the user allows with `--allowed-hosts`.
 *
 * @module
 */
import { UsageError } from "../errors.ts";

/** `--allowed-hosts *`: answer every name (behind a proxy that checks names itself). */
export const ANY_HOST = "*";

/** The most names `--allowed-hosts` takes: a handful is what a proxy setup needs. */
export const MAX_ALLOWED_HOSTS = 64;

/** A DNS name: labels of letters, digits, `-` and `_`, up to 63 each, 253 in all. */
const NAME =
  /^(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*$/;
const IPV4 = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;
const IPV6 = /^[0-9a-f:.]{2,45}$/;

/** `name` lowercased, without the trailing dot of a fully qualified name. */
function normalise(name: string): string {
  return name.toLowerCase().replace(/\.$/, "");
}

/**
 * Whether `name` is an IP address (IPv6 without brackets). A page can only be served from an
 * address by the machine at that address, so a `Host` that is one cannot come from a rebinding
 * page: the origin the browser checks is then the server's own.
 */
function isAddress(name: string): boolean {
  return IPV4.test(name) || (name.includes(":") && IPV6.test(name));
}

/**
 * The host name of a `Host` header value (`name`, `name:port`, `[v6]:port`), lowercased; or
 * `undefined` for a value that is none of these.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * equal(hostOfHeader("ESS.lan:8080"), "ess.lan");
 * equal(hostOfHeader("[::1]:8080"), "::1");
 * equal(hostOfHeader("a b"), undefined);
 * ```
 */
export function hostOfHeader(value: string): string | undefined {
  const m = /^\[([0-9A-Fa-f:.]+)\](?::\d{1,5})?$/.exec(value) ??
    /^([^:[\]]+)(?::\d{1,5})?$/.exec(value);
  if (!m) return undefined;
  const name = normalise(m[1]!);
  return isAddress(name) || NAME.test(name) ? name : undefined;
}

/**
 * Checks the names given to `--allowed-hosts` (comma-separated, blanks ignored) and returns
 * them normalised. `*` allows every name. A name that is not a DNS name or an address is a
 * {@link UsageError}.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * deepEqual(parseAllowedHosts("ess.lan, Proxy.Example.org."), ["ess.lan", "proxy.example.org"]);
 * ```
 */
export function parseAllowedHosts(text: string): string[] {
  const names = text.split(",").map((n) => n.trim()).filter((n) => n !== "");
  if (names.length > MAX_ALLOWED_HOSTS) {
    throw new UsageError(`${names.length} allowed host names: at most ${MAX_ALLOWED_HOSTS}`);
  }
  return names.map((name) => {
    if (name === ANY_HOST) return name;
    const host = normalise(name.replace(/^\[(.*)\]$/, "$1"));
    if (!isAddress(host) && !NAME.test(host)) {
      throw new UsageError(
        `${JSON.stringify(name.slice(0, 80))} is not a host name or address (give names ` +
          `without scheme or port, separated by commas, e.g. ess.lan,homeassistant)`,
      );
    }
    return host;
  });
}

/** The names of this machine: what its own name resolves as on the LAN. */
export function machineNames(): string[] {
  let hostname: string;
  try {
    hostname = normalise(Deno.hostname());
  } catch {
    return [];
  }
  const short = hostname.split(".")[0]!;
  return [hostname, short, `${short}.local`];
}

/**
 * A check of `Host` header values: the names the server answers to are `localhost`, every IP
 * address, `listenHost` (the `--listen` name), this machine's names
 * and `allowed`. A request without `Host` (HTTP/1.0) passes: browsers always send one.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * const allowed = hostCheck({ listenHost: "0.0.0.0", machine: ["box"], allowed: ["ess.lan"] });
 * equal(allowed("localhost:8080"), true);
 * equal(allowed("192.168.1.9:8080"), true);
 * equal(allowed("ESS.lan"), true);
 * equal(allowed("box:8080"), true);
 * equal(allowed("rebind.example:8080"), false);
 * ```
 */
export function hostCheck(options: {
  listenHost: string;
  machine: readonly string[];
  allowed: readonly string[];
}): (host: string | null) => boolean {
  if (options.allowed.includes(ANY_HOST)) return () => true;
  const names = new Set(
    [options.listenHost, ...options.machine, ...options.allowed].map(normalise),
  );
  return (header) => {
    if (header === null) return true;
    const host = hostOfHeader(header);
    if (host === undefined) return false;
    return isAddress(host) || host === "localhost" || names.has(host);
  };
}
