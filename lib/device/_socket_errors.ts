/**
 * How a failure to reach or talk to the device reads: one line that says what happened, against
 * which host, and what to try, from Node's socket and TLS error codes (raw library text such as
 * `getaddrinfo ENOTFOUND` tells a user little).
 *
 * @module
 */
import { EssError, TimeoutError, TlsError, TRANSIENT_HINT, UnreachableError } from "../errors.ts";

/** How a socket error reads in a message: what happened, what to try, and whether to try again. */
interface Explanation {
  /** A failure of the TLS handshake, not of the network. */
  tls?: true;
  /** It happened on a connection that was up: "Cannot talk to", not "Cannot reach". */
  talking?: true;
  transient?: true;
  why(hostname: string): string;
}

/**
 * The socket and TLS errors a device connection meets, by Node's error code, as one line each
 * (raw library text such as `getaddrinfo ENOTFOUND` tells a user little).
 */
const SOCKET_ERRORS: Record<string, Explanation> = {
  ENOTFOUND: {
    why: (name) =>
      `the name ${name} cannot be resolved (check the spelling, or give the device's IP address)`,
  },
  EAI_AGAIN: {
    transient: true,
    why: (name) =>
      `the name ${name} cannot be resolved right now (DNS did not answer; check the network, or ` +
      `give the device's IP address)`,
  },
  ECONNREFUSED: {
    transient: true,
    why: () => "connection refused (is it the ESS, is the port right, and is it on this network?)",
  },
  ECONNRESET: { talking: true, transient: true, why: () => "the device reset the connection" },
  EPIPE: { talking: true, transient: true, why: () => "the connection broke while sending" },
  ETIMEDOUT: {
    why: () => "the connection timed out (is the address right, and is the device on?)",
  },
  EHOSTUNREACH: { why: () => "no route to the device (is it on this network?)" },
  ENETUNREACH: { why: () => "the network is unreachable (is this machine connected?)" },
  EADDRNOTAVAIL: { why: () => "that address is not available from this machine" },
  ERR_SSL_WRONG_VERSION_NUMBER: {
    tls: true,
    why: () => "that port does not speak TLS (is it the device's HTTPS port, normally 443?)",
  },
  /** Node's code for a peer that hung up in the middle of the handshake. */
  HANDSHAKE_CLOSED: {
    tls: true,
    transient: true,
    why: () => "the device closed the connection during the TLS handshake",
  },
  /** Not a socket error: the peer closed the connection in the middle of an answer. */
  ANSWER_CUT: {
    talking: true,
    transient: true,
    why: () => "the connection closed before the answer was complete",
  },
};

/** The code of {@link SOCKET_ERRORS} that describes `err`, if one does. */
function socketErrorCode(code: string, message: string): string | undefined {
  if (/before secure TLS connection/i.test(message)) return "HANDSHAKE_CLOSED";
  if (/wrong version number/i.test(message)) return "ERR_SSL_WRONG_VERSION_NUMBER";
  if (code === "EAI_NONAME") return "ENOTFOUND";
  return Object.hasOwn(SOCKET_ERRORS, code) ? code : undefined;
}

/** Turns a socket-level error into one of ess's device errors; a missing permission stays itself. */
export function classify(err: unknown, host: string, hostname: string): Error {
  if (err instanceof EssError || err instanceof Deno.errors.NotCapable) return err;
  const e = err as { code?: string; message?: string };
  const message = e.message ?? String(err);
  const code = socketErrorCode(e.code ?? "", message);
  const known = code === undefined ? undefined : SOCKET_ERRORS[code];
  if (known) {
    const transient = known.transient ?? false;
    const what = known.tls
      ? `TLS handshake with ${host} failed`
      : `${known.talking ? "Cannot talk to" : "Cannot reach"} ${host}`;
    const text = `${what}: ${known.why(hostname)}${transient ? `; ${TRANSIENT_HINT}` : ""}`;
    const options = { cause: err, transient };
    return known.tls
      ? new TlsError(host, text, options)
      : new UnreachableError(host, text, options);
  }
  if (/tls|ssl|handshake|certificate|EPROTO/i.test(`${e.code ?? ""} ${message}`)) {
    return new TlsError(host, `TLS handshake with ${host} failed: ${message}`, { cause: err });
  }
  return new UnreachableError(host, `Cannot talk to ${host}: ${message}`, { cause: err });
}

/**
 * The timeout of a new connection, naming the phase that did not finish: a port that took the
 * TCP connection but never answered the TLS handshake is no network failure, and "no connection"
 * sent users looking at cables.
 */
export function connectTimeout(host: string, ms: number, tcpConnected: boolean): TimeoutError {
  return new TimeoutError(
    host,
    tcpConnected
      ? `TLS handshake with ${host} failed: the port took the connection but did not answer the ` +
        `handshake within ${ms / 1000} s (is it the device's HTTPS port, normally 443?)`
      : `Cannot reach ${host}: no connection within ${ms / 1000} s`,
  );
}
