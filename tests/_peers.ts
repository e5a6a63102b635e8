/**
 * Tests that need a system peer (a program or a capability of the machine: mosquitto,
 * Chromium, promtool, Prometheus, network namespaces, podman, systemd-analyze) are skipped where it is
 * missing, with the reason in the test's name, so that `deno task test` passes with only Deno.
 *
 * A skip must never hide a test that could have run: CI names the peers it installed in
 * `ESS_REQUIRE_PEERS` (comma-separated; `.ci/run` sets it), and there a test whose peer is
 * named but not found fails with the reason instead of being skipped. So a probe that looks in
 * the wrong place cannot turn a real test into a silent pass.
 *
 * @module
 */

/** The system peers tests may need. */
export type Peer =
  | "mosquitto"
  | "chromium"
  | "promtool"
  | "prometheus"
  | "netns"
  | "podman"
  | "avahi"
  | "systemd-analyze";

/** The peers `ESS_REQUIRE_PEERS` names. */
export function requiredPeers(): ReadonlySet<string> {
  const names = Deno.env.get("ESS_REQUIRE_PEERS") ?? "";
  return new Set(names.split(",").map((n) => n.trim()).filter((n) => n !== ""));
}

/** What a test that needs a peer does here. */
export interface PeerCheck {
  /** Whether the test is skipped: the peer is missing and not required. */
  ignore: boolean;
  /** What its name gets: `" (skipped: <why>)"` when skipped, else `""`. */
  label: string;
  /** Throws with the reason when the peer is required but missing; the test calls it first. */
  assertPresent(): void;
}

/**
 * How a test that needs `peer` runs here; `missing` says why the peer cannot be used
 * (`undefined`: it can); `required` are the peers that must be there (by default those
 * `ESS_REQUIRE_PEERS` names). The test takes `ignore` and adds `label` to its name, and calls
 * `assertPresent()` before it starts the peer:
 *
 * ```ts ignore
 * const chromium = peerCheck("chromium", CHROMIUM ? undefined : "chromium is not installed");
 * Deno.test({
 *   name: `the dashboard in Chromium${chromium.label}`,
 *   ignore: chromium.ignore,
 *   async fn() {
 *     chromium.assertPresent();
 *     …
 *   },
 * });
 * ```
 *
 * @example
 * ```ts
 * import { peerCheck } from "./_peers.ts";
 * import { deepEqual, throws } from "node:assert/strict";
 * const absent = peerCheck("podman", "podman is not installed", new Set());
 * deepEqual([absent.ignore, absent.label], [true, " (skipped: podman is not installed)"]);
 * const required = peerCheck("podman", "podman is not installed", new Set(["podman"]));
 * deepEqual([required.ignore, required.label], [false, ""]);
 * throws(() => required.assertPresent(), /ESS_REQUIRE_PEERS names podman, but podman is not/);
 * const present = peerCheck("podman", undefined, new Set(["podman"]));
 * deepEqual([present.ignore, present.label], [false, ""]);
 * ```
 */
export function peerCheck(
  peer: Peer,
  missing: string | undefined,
  required: ReadonlySet<string> = requiredPeers(),
): PeerCheck {
  if (missing === undefined) return { ignore: false, label: "", assertPresent() {} };
  if (!required.has(peer)) {
    return { ignore: true, label: ` (skipped: ${missing})`, assertPresent() {} };
  }
  return {
    ignore: false,
    label: "",
    assertPresent() {
      throw new Error(
        `ESS_REQUIRE_PEERS names ${peer}, but ${missing}: this test must run here, not be skipped`,
      );
    },
  };
}
