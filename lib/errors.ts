/**
 * Errors that ess reports as one line. Every class carries the exit code the CLI uses, and its
 * message says what failed, against which host, and what to try. No message ever contains a
 * password or an auth key: text quoted from the device passes through a `Redactor`
 * (lib/redact.ts) before {@link preview} shortens it, and the CLI edge redacts every message once
 * more.
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

/** Options of a {@link DeviceError}. */
export interface DeviceErrorOptions extends ErrorOptions {
  /** Whether the same request may well succeed a moment later (see {@link DeviceError.transient}). */
  transient?: boolean;
}

/** Something went wrong talking to the device. */
export class DeviceError extends EssError {
  /** The device host (and port) the request went to. */
  readonly host: string;
  /**
   * Whether the failure is of the kind a busy or restarting device causes (a reset or refused
   * connection, an nginx 5xx page), so that one more try after a pause may well succeed.
   */
  readonly transient: boolean;
  constructor(host: string, message: string, options: DeviceErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.host = host;
    this.transient = options.transient ?? false;
  }
}

/** What a transient failure's message ends with. */
export const TRANSIENT_HINT = "this may be transient: try again in a minute";

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

/**
 * The device answered something that is not the JSON it should be (a 502 page, say); `body` must
 * be redacted already. A 5xx page is {@link DeviceError.transient}: the device's nginx sends one
 * when the device behind it is busy.
 */
export class BadAnswerError extends DeviceError {
  /** HTTP status of the answer. */
  readonly status: number;
  constructor(host: string, what: string, status: number, body: string) {
    const transient = status >= 500;
    super(
      host,
      `${what} on ${host} gave HTTP ${status} with no JSON: ${preview(body)}${
        transient ? ` (the device may be busy; ${TRANSIENT_HINT})` : ""
      }`,
      { transient },
    );
    this.status = status;
  }
}

/**
 * The device's answer is beyond what ess accepts: larger than the body cap, nested deeper or
 * holding more values than the limits in lib/device/limits.ts allow. Real answers are far
 * inside them, so this is a broken device or not an LG ESS at all.
 */
export class AnswerLimitError extends DeviceError {}

/** The device understood the request and said no (`{"status": "fail"}` and the like). */
export class DeviceRefusedError extends DeviceError {}

/**
 * Characters that could steer a terminal or reorder the text around them (controls, line and
 * paragraph separators, direction overrides and isolates), and non-characters.
 */
const UNPRINTABLE = /[\p{Cc}\u2028\u2029\u202a-\u202e\u2066-\u2069]|\p{Noncharacter_Code_Point}/gu;

/**
 * The first characters of a text from outside, on one line and in quotes, for an error message:
 * blanks collapsed, control characters shown as `?`, and inner quotes left as they are (escaped
 * JSON is hard to read). Redact `body` before: a secret cut in two would not be recognised.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * equal(preview('{ "status":\n "fail" }'), '"{ "status": "fail" }"');
 * equal(preview("x".repeat(70)), `"${"x".repeat(60)}…"`);
 * equal(preview("\u001b[2J"), '"?[2J"');
 * equal(preview(" "), "(empty body)");
 * ```
 */
export function preview(body: string, max = 60): string {
  const flat = body.replace(/\s+/g, " ").trim();
  if (flat === "") return "(empty body)";
  const short = flat.length > max ? `${flat.slice(0, max)}…` : flat;
  return `"${printable(short)}"`;
}

/**
 * `text` with each character that could steer a terminal or reorder the text around it (a
 * control character, a line or paragraph separator, a direction override) shown as `?`, for
 * device text printed for a person.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * equal(printable("a\nb\u001b[2J\u202e"), "a?b?[2J?");
 * ```
 */
export function printable(text: string): string {
  return replaceUnprintable(text, () => "?");
}

/**
 * `text` with each character {@link printable} hides shown as `shown` gives it, for a log line
 * that must say which character it was.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * equal(replaceUnprintable("a\u0085", (c) => `<${c.charCodeAt(0)}>`), "a<133>");
 * ```
 */
export function replaceUnprintable(text: string, shown: (c: string) => string): string {
  return text.replace(UNPRINTABLE, shown);
}

/**
 * Whether `text` holds none of the characters {@link preview} replaces, so that it can be
 * printed as it is.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * equal(isPrintable("LGE_ESS-DE1234"), true);
 * equal(isPrintable("DE\u001b[2J"), false);
 * ```
 */
export function isPrintable(text: string): boolean {
  return text.search(UNPRINTABLE) < 0;
}

/**
 * The message of anything thrown, for one line of log or error text.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * equal(errorText(new Error("boom")), "boom");
 * equal(errorText("plain"), "plain");
 * ```
 */
export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
