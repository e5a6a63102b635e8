/**
 * The body of `/api/state` and of each SSE `state` event: the device's trees as `ess data
 * --format json` prints them, when the device last answered, their normalised reading, the
 * controls this firmware has with their settings, and the main figures in base units.
 *
 * @module
 */
import { isJsonObject, type Json, type JsonObject } from "../device/flatten.ts";
import { summaryValues } from "../export/prometheus.ts";
import type { StateName } from "../device/states.ts";
import { normalise } from "../model/normalise.ts";
import type { Reading } from "../model/reading.ts";
import type { ServeSnapshot } from "./source.ts";
import { isSecretKey } from "./_http.ts";
import { controlsNow } from "./_controls.ts";

/** Deeper than any device answer: a hostile tree is cut here rather than walked. */
const MAX_DEPTH = 16;

/**
 * A copy of a device tree without the keys that could hold a secret ({@link isSecretKey}),
 * cut at {@link MAX_DEPTH} levels.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * deepEqual(withoutSecretKeys({ status: "ok", auth_key: "k", pms: { password: "p" } }), { status: "ok", pms: {} });
 * ```
 */
export function withoutSecretKeys(tree: JsonObject, depth = 0): JsonObject {
  const copy: JsonObject = {};
  for (const [key, value] of Object.entries(tree)) {
    if (isSecretKey(key)) continue;
    const clean = cleanValue(value, depth + 1);
    if (clean !== undefined) copy[key] = clean;
  }
  return copy;
}

function cleanValue(value: Json, depth: number): Json | undefined {
  if (typeof value !== "object" || value === null) return value;
  if (depth >= MAX_DEPTH) return undefined;
  if (Array.isArray(value)) {
    return value.map((v) => cleanValue(v, depth + 1)).filter((v) => v !== undefined);
  }
  return isJsonObject(value) ? withoutSecretKeys(value, depth) : undefined;
}

const echoedCache = new WeakMap<ServeSnapshot, readonly string[]>();

/**
 * The string values (at least 4 characters, at most 16 of them) the device sent under keys that
 * hold secrets, anywhere in the snapshot: a device that echoes its auth key under `auth_key` may
 * repeat it elsewhere, so the server hides these wherever they appear.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * const snapshot = { states: { home: { auth_key: "k-123", note: "k-123" } }, lastSuccess: 0, up: true };
 * deepEqual(echoedSecrets(snapshot), ["k-123"]);
 * ```
 */
export function echoedSecrets(snapshot: ServeSnapshot): readonly string[] {
  const cached = echoedCache.get(snapshot);
  if (cached) return cached;
  const found = new Set<string>();
  const walk = (node: Json, depth: number): void => {
    if (found.size >= 16 || depth > MAX_DEPTH || typeof node !== "object" || node === null) {
      return;
    }
    for (const [key, value] of Object.entries(node)) {
      if (typeof value === "string" && value.length >= 4 && isSecretKey(key)) found.add(value);
      else walk(value, depth + 1);
    }
  };
  for (const tree of Object.values(snapshot.states)) if (tree !== undefined) walk(tree, 0);
  const list = [...found];
  echoedCache.set(snapshot, list);
  return list;
}

/**
 * The snapshot as the server may pass it on: each tree {@link withoutSecretKeys}, and every
 * string from the device (keys, values, the error) through `redact`, with its reading (the
 * source's, or made here from the clean trees). Answers and metrics are made from this, so that
 * no secret reaches them while their own syntax stays untouched.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * const snapshot = { states: { home: { auth_key: "k", note: "pw=x" } }, lastSuccess: 0, up: false, error: "x" };
 * const redact = (value: unknown) => JSON.parse(JSON.stringify(value).replaceAll("x", "*"));
 * const served = servedSnapshot(snapshot, redact);
 * deepEqual(served.states, { home: { note: "pw=*" } });
 * deepEqual(served.error, "*");
 * ```
 */
export function servedSnapshot(
  snapshot: ServeSnapshot,
  redact: (value: Json) => Json,
): ServeSnapshot {
  const states: ServeSnapshot["states"] = {};
  for (const [name, tree] of Object.entries(snapshot.states) as [StateName, JsonObject][]) {
    const clean = redact(withoutSecretKeys(tree));
    if (isJsonObject(clean)) states[name] = clean;
  }
  const reading = snapshot.reading === undefined
    ? normalise(states)
    : redact(snapshot.reading as unknown as Json) as unknown as Reading;
  const served: ServeSnapshot = {
    states,
    reading,
    lastSuccess: snapshot.lastSuccess,
    up: snapshot.up,
  };
  if (snapshot.error !== undefined) served.error = String(redact(snapshot.error));
  if (snapshot.surplus !== undefined) served.surplus = snapshot.surplus;
  return served;
}

const stateRests = new WeakMap<ServeSnapshot, string>();

/**
 * The state document at `now` (ms since the epoch) as JSON text, from a {@link servedSnapshot}.
 * Only its first fields change with the clock: the reading, the summary and the trees, nearly
 * all of the text, are serialised once per snapshot rather than for every request and every new
 * stream.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * const snapshot = { states: { home: { statistics: { load_power: "376" } } }, lastSuccess: 1_000, up: true };
 * const doc = JSON.parse(stateText(snapshot, 3_500));
 * equal(doc.age, 2.5);
 * equal(doc.lastSuccess, "1970-01-01T00:00:01.000Z");
 * equal(doc.summary.load_power_watts, 376);
 * equal(JSON.parse(stateText(snapshot, 4_000)).age, 3);
 * ```
 */
export function stateText(snapshot: ServeSnapshot, now: number): string {
  const { lastSuccess } = snapshot;
  const head: JsonObject = {
    lastSuccess: lastSuccess === undefined ? null : new Date(lastSuccess).toISOString(),
    up: snapshot.up ?? null,
    age: lastSuccess === undefined ? null : Math.max(0, now - lastSuccess) / 1000,
  };
  if (snapshot.up === false && snapshot.error !== undefined) head["error"] = snapshot.error;
  let rest = stateRests.get(snapshot);
  if (rest === undefined) {
    const states: Record<string, JsonObject> = {};
    for (const [name, tree] of Object.entries(snapshot.states)) {
      if (tree !== undefined) states[name] = tree;
    }
    const reading = snapshot.reading ?? normalise(states);
    const surplus = snapshot.surplus === undefined ? {} : { surplus: snapshot.surplus };
    // `{"reading":...,"summary":...,"home":...}` without its `{`, to follow the head's fields.
    rest = JSON.stringify({
      reading,
      controls: controlsNow(reading),
      summary: summaryValues(reading),
      ...surplus,
      ...states,
    }).slice(1);
    stateRests.set(snapshot, rest);
  }
  return `${JSON.stringify(head).slice(0, -1)},${rest}`;
}
