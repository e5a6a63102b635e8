/**
 * The surplus's MQTT topics, in one place: the bridge plugin publishes them, Home Assistant's
 * entities read and write them, the docs list them.
 *
 * ```
 * <prefix>/surplus/power                     W, averaged; `unknown` while unknown (retained)
 * <prefix>/surplus/<rule>                    on / off (retained)
 * <prefix>/surplus/<rule>/why                why, in words (retained)
 * <prefix>/surplus/<rule>/<setting>          a number's value now (retained)
 * <prefix>/surplus/<rule>/<setting>/set      sets it at run time
 * <prefix>/surplus/<rule>/overrides          the numbers set at run time, as JSON (retained)
 * ```
 *
 * @module
 */

/** What `<prefix>/surplus/power` carries while the surplus is unknown. */
export const UNKNOWN_PAYLOAD = "unknown";

/** The surplus power topic. */
export function surplusPowerTopic(prefix: string): string {
  return `${prefix}/surplus/power`;
}

/** A rule's `on`/`off` topic. */
export function ruleTopic(prefix: string, rule: string): string {
  return `${prefix}/surplus/${rule}`;
}

/** A rule's reason, in words. */
export function ruleWhyTopic(prefix: string, rule: string): string {
  return `${prefix}/surplus/${rule}/why`;
}

/** The value of one of a rule's numbers (`on-watts`). */
export function ruleFieldTopic(prefix: string, rule: string, key: string): string {
  return `${prefix}/surplus/${rule}/${key}`;
}

/** Where a rule's number is set at run time. */
export function ruleSetTopic(prefix: string, rule: string, key: string): string {
  return `${ruleFieldTopic(prefix, rule, key)}/set`;
}

/** Where the numbers set at run time are kept, retained, across restarts. */
export function ruleOverridesTopic(prefix: string, rule: string): string {
  return `${prefix}/surplus/${rule}/overrides`;
}
