/**
 * One more try for one-shot commands (`ess data`, `graph`, `control`): a single nginx 502 or a
 * reset connection should not fail a command a person just typed. Only for those: the MQTT
 * bridge has its own back-off and must see every failure as it happens.
 *
 * @module
 */
import { DeviceError, errorText } from "../errors.ts";
import { type Logger, silentLogger } from "../log.ts";
import type { FetchLike } from "./transport.ts";

/** How long to wait before the one retry: long enough for a busy device to catch its breath. */
export const RETRY_PAUSE_MS = 1500;

/** Options of {@link retryOnce}. */
export interface RetryOptions {
  /** The pause before the retry, in ms (default {@link RETRY_PAUSE_MS}). */
  pauseMs?: number | undefined;
  /** How to wait (tests pass a fake). */
  sleep?: ((ms: number) => Promise<void>) | undefined;
  /** Where the retry is mentioned (debug). */
  logger?: Logger | undefined;
}

/**
 * Whether an answer is the device's nginx saying it is busy: a 5xx status with a body that is
 * not JSON (a 5xx with JSON comes from the device's own software, which would answer the same).
 */
export function isTransientAnswer(res: Response): boolean {
  return res.status >= 500 && !/json/i.test(res.headers.get("content-type") ?? "");
}

/** Whether a thrown error is a {@link DeviceError} that says one more try may succeed. */
export function isTransientError(err: unknown): boolean {
  return err instanceof DeviceError && err.transient;
}

/**
 * `fetch`, but a request that fails transiently (an nginx 5xx page, a reset or refused
 * connection, an answer cut off) is sent once more after a pause; what the second try brings,
 * answer or error, is the result.
 *
 * Controls are retried too. A `PUT` that got a 502 may or may not have reached the device, but
 * every control sets a value (`wintermode: "on"`), none toggles one, so sending it twice leaves
 * the device as sending it once would.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * let calls = 0;
 * const flaky = () => Promise.resolve(new Response("busy", { status: ++calls === 1 ? 502 : 200 }));
 * const fetch = retryOnce(flaky, { sleep: () => Promise.resolve() });
 * equal((await fetch("https://192.168.1.20/")).status, 200);
 * equal(calls, 2);
 * ```
 */
export function retryOnce(fetch: FetchLike, options: RetryOptions = {}): FetchLike {
  const pauseMs = options.pauseMs ?? RETRY_PAUSE_MS;
  const sleep = options.sleep ??
    ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const log = options.logger ?? silentLogger;
  return async (input, init) => {
    const where = new URL(String(input));
    try {
      const res = await fetch(input, init);
      if (!isTransientAnswer(res)) return res;
      await res.body?.cancel();
      log.debug(`HTTP ${res.status} from ${where.host}${where.pathname}; one more try`);
    } catch (err) {
      if (!isTransientError(err)) throw err;
      log.debug(`${errorText(err)}; one more try`);
    }
    await sleep(pauseMs);
    return await fetch(input, init);
  };
}
