/**
 * The one redaction step for every text ess quotes from the device or a broker: log lines, error
 * messages, previews of answers. It replaces the secrets it holds (the device password, the MQTT
 * password, the auth keys the device hands out) with `***`, also where they appear JSON-escaped.
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

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

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
  #secrets = new Map<string, string[]>();
  #pattern: RegExp | undefined;

  /** Adds a secret; `undefined` and secrets shorter than {@link MIN_SECRET_LENGTH} are ignored. */
  add(secret: string | undefined): void {
    if (secret === undefined || secret.length < MIN_SECRET_LENGTH) return;
    if (this.#secrets.has(secret)) return;
    this.#secrets.set(secret, spellings(secret));
    this.#pattern = undefined;
  }

  /** Forgets a secret (an auth key the device no longer accepts). */
  delete(secret: string): void {
    if (this.#secrets.delete(secret)) this.#pattern = undefined;
  }

  /** How many secrets it holds. */
  get size(): number {
    return this.#secrets.size;
  }

  /** `text` with every secret replaced by {@link REDACTED}. */
  redact(text: string): string {
    if (this.#secrets.size === 0) return text;
    // Longest first, so that a secret that contains another is replaced whole.
    this.#pattern ??= new RegExp(
      [...this.#secrets.values()].flat().sort((a, b) => b.length - a.length).map(escapeRegExp)
        .join("|"),
      "g",
    );
    return text.replace(this.#pattern, REDACTED);
  }
}
