/**
 * Errors that ess reports as one line. Every class carries the exit code the CLI uses, and its
 * message says what failed, against which host, and what to try. No message ever contains a
 * password or an auth key.
 *
 * @module
 */

/** Base class of every error ess expects; anything else is a bug. */
export class EssError extends Error {
  /** Process exit code for the CLI. */
  readonly exitCode: number = 1;
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Wrong or unknown command, option, value, date or port: exit code 2. */
export class UsageError extends EssError {
  override readonly exitCode: number = 2;
}

/** A configuration file that cannot be used, naming the file and line: exit code 2. */
export class ConfigError extends UsageError {}

/** Something went wrong talking to the device. */
export class DeviceError extends EssError {
  /** The device host (and port) the request went to. */
  readonly host: string;
  constructor(host: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.host = host;
  }
}

/** The device answered "password mismatched". */
export class WrongPasswordError extends DeviceError {
  constructor(host: string) {
    super(
      host,
      `Cannot log in to ${host}: wrong password (the password is the device's wired LAN MAC ` +
        `address in lowercase without colons, like 0011aabbccdd; 'ess password' reads it on the ` +
        `device's Wi-Fi)`,
    );
  }
}

/** Neither login path exists on this device (both answered 404). */
export class LoginPathNotFoundError extends DeviceError {
  constructor(host: string, paths: readonly string[]) {
    super(
      host,
      `Cannot log in to ${host}: the device has no login endpoint (404 on ${
        paths.join(" and ")
      }); is this an LG ESS, and is its firmware supported?`,
    );
  }
}

/** The device's auth key was refused even right after a fresh login. */
export class AuthError extends DeviceError {}

/** No TCP connection could be made. */
export class UnreachableError extends DeviceError {}

/** A Graphite server could not be reached or did not take the metrics. */
export class GraphiteError extends EssError {}

/** Finding the device by mDNS failed: nothing answered, not the one named, or no socket. */
export class DiscoveryError extends DeviceError {}

/** The TLS handshake failed. */
export class TlsError extends DeviceError {}

/** The device's certificate does not match the pinned SHA-256 fingerprint. */
export class PinMismatchError extends TlsError {
  /** Fingerprint the device presented (colon-separated upper-case hex). */
  readonly seen: string;
  constructor(host: string, seen: string, pinned: string) {
    super(
      host,
      `Refusing ${host}: its certificate has SHA-256 fingerprint ${seen}, but --fingerprint pins ` +
        `${pinned}; if the device was replaced or reset, pin the new fingerprint`,
    );
    this.seen = seen;
  }
}

/** The connection was made but no complete answer came in time. */
export class TimeoutError extends DeviceError {}

/** The device answered something that is not the JSON it should be (a 502 page, say). */
export class BadAnswerError extends DeviceError {
  /** HTTP status of the answer. */
  readonly status: number;
  constructor(host: string, what: string, status: number, body: string) {
    super(host, `${what} on ${host} gave HTTP ${status} with no JSON: ${preview(body)}`);
    this.status = status;
  }
}

/** The device understood the request and said no (`{"status": "fail"}` and the like). */
export class DeviceRefusedError extends DeviceError {}

/** The first bytes of a body, on one line, for an error message. */
export function preview(body: string, max = 60): string {
  const flat = body.replace(/\s+/g, " ").trim();
  if (flat === "") return "(empty body)";
  return JSON.stringify(flat.length > max ? `${flat.slice(0, max)}…` : flat);
}

/**
 * The message of anything thrown, for one line of log or error text.
 *
 * @example
 * ```ts
 * errorText(new Error("boom")); // "boom"
 * errorText("plain"); // "plain"
 * ```
 */
export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
