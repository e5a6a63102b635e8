/**
 * The MQTT topics of a normalised reading as the bridge publishes them (the model layer's one
 * layout, `lib/model/topics.ts`), under a prefix and with their payloads, for the Home Assistant
 * tests: which entities a model gets and what they show.
 *
 * @module
 */
import type { Reading } from "../lib/model/reading.ts";
import { READING_TOPIC, readingTopics as layout } from "../lib/model/topics.ts";

/** Topic → payload of every figure `reading` has, under `<prefix>/reading/`. */
export function readingTopics(prefix: string, reading: Reading): Map<string, string> {
  return new Map(
    layout(reading).map(([path, payload]) => [`${prefix}/${READING_TOPIC}/${path}`, payload]),
  );
}
