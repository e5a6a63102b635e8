/**
 * ess's version, from `deno.json`: the one place it is read.
 *
 * @module
 */
import denoJson from "../deno.json" with { type: "json" };

/**
 * ess's version, as `ess --version` prints it and Home Assistant shows it as the origin.
 *
 * @example
 * ```ts
 * import { match } from "node:assert/strict";
 * match(VERSION, /^\d+\.\d+\.\d+/);
 * ```
 */
export const VERSION: string = denoJson.version;
