/**
 * Reading an HTTP answer from a peer ess does not trust, at most so many bytes.
 *
 * @module
 */

/**
 * The body of `answer` as UTF-8 text, or `undefined` once it passes `maxBytes` (the rest is not
 * read). A time limit is the caller's: the `fetch` signal also ends the body's stream.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * equal(await readCappedBody(new Response("ok"), 10), "ok");
 * equal(await readCappedBody(new Response("x".repeat(11)), 10), undefined);
 * ```
 */
export async function readCappedBody(
  answer: Response,
  maxBytes: number,
): Promise<string | undefined> {
  const reader = answer.body?.getReader();
  if (!reader) return "";
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > maxBytes) {
      await reader.cancel();
      return undefined;
    }
    chunks.push(value);
  }
  const all = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    all.set(chunk, at);
    at += chunk.length;
  }
  return new TextDecoder().decode(all);
}
