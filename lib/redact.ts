/**
 * The one redaction step for every text ess quotes from the device or a broker: log lines, error
 * messages, previews of answers. It replaces the secrets it holds (the device password, the MQTT
 * password, the auth keys the device hands out) with `***`, also where they appear JSON-escaped.
 *
 * It searches for each secret as plain text, one after the other: no pattern is built from the
 * secrets, so no secret, however long or odd, can make redaction throw (V8 refuses a regular
 * expression of more than about 32,000 characters, and a logger that throws takes the process
 * down with it).
 *
 * @module
 */

/**
 * Secrets shorter than this are not redacted: a one-character password would otherwise blank
 * that character in every line, and so hide what the line says while protecting nothing.
 */
export const MIN_SECRET_LENGTH = 4;
/** What stands in for a secret. */
export const REDACTED = "***";
/**
 * How many secrets one redactor holds at most; beyond, {@link Redactor.add} refuses. A process
 * holds a handful per device (its password, its last few auth keys, which the device client
 * forgets as it learns new ones; a config declares at most 16 devices) and a few of its own
 * (the broker's password, the token): the bound only keeps a peer that hands out new secrets all the
 * time from growing the list, and the time of every line. It keeps the first secrets rather than
 * the newest, since those are the passwords and the token, given at the start.
 */
export const MAX_SECRETS = 64;

/** The spellings of `secret` a quoted text may carry: as is, JSON-escaped, with `\/`. */
function spellings(secret: string): string[] {
  const escaped = JSON.stringify(secret).slice(1, -1);
  return [...new Set([secret, escaped, escaped.replaceAll("/", "\\/")])];
}

/**
 * Holds secrets and removes them from text.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * const redactor = new Redactor();
 * redactor.add('pa"ss');
 * equal(redactor.redact('{"status":"oops pa\\"ss"} and pa"ss'), '{"status":"oops ***"} and ***');
 * ```
 */
export class Redactor {
  /** Each secret and its spellings. */
  #secrets = new Map<string, string[]>();
  /** Every spelling of every secret, longest first; rebuilt after a change. */
  #spellings: string[] | undefined;

  /**
   * Adds a secret; `undefined` and secrets shorter than {@link MIN_SECRET_LENGTH} are ignored.
   * Returns whether it holds the secret now: `false` for those, and for a new one beyond
   * {@link MAX_SECRETS}.
   */
  add(secret: string | undefined): boolean {
    if (secret === undefined || secret.length < MIN_SECRET_LENGTH) return false;
    if (this.#secrets.has(secret)) return true;
    if (this.#secrets.size >= MAX_SECRETS) return false;
    this.#secrets.set(secret, spellings(secret));
    this.#spellings = undefined;
    return true;
  }

  /** Forgets a secret (an auth key the device no longer accepts). */
  delete(secret: string): void {
    if (this.#secrets.delete(secret)) this.#spellings = undefined;
  }

  /** How many secrets it holds. */
  get size(): number {
    return this.#secrets.size;
  }

  /** `text` with every secret replaced by {@link REDACTED}. */
  redact(text: string): string {
    if (this.#secrets.size === 0) return text;
    // Longest first, so that a secret that contains another is replaced whole.
    this.#spellings ??= [...this.#secrets.values()].flat().sort((a, b) => b.length - a.length);
    let out = text;
    for (const spelling of this.#spellings) {
      if (spelling.length <= out.length && out.includes(spelling)) {
        out = out.split(spelling).join(REDACTED);
      }
    }
    return out;
  }
}
