/**
 * What the tests need beyond `node:assert/strict` (the card names @std/assert, which JSR-less CI cannot load).
 *
 * @module
 */
import assert from "node:assert/strict";

/** Awaits `fn`, asserts that it rejects with an instance of `type`, and returns the error. */
export async function rejectsWith<E extends Error>(
  fn: () => Promise<unknown>,
  // deno-lint-ignore no-explicit-any
  type: new (...args: any[]) => E,
  message?: RegExp,
): Promise<E> {
  let error: unknown;
  try {
    await fn();
  } catch (err) {
    error = err;
  }
  if (!(error instanceof type)) {
    return assert.fail(`expected ${type.name}, got ${error ?? "no error"}`);
  }
  if (message) assert.match(error.message, message);
  return error;
}
