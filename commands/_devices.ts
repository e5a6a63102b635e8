/**
 * Which devices a command talks to: the one of a single-device config (its options at the top
 * level, as pyess had them), or the `[device NAME]` sections of a config that declares several.
 *
 * @module
 */
import { UsageError } from "../lib/errors.ts";
import { type DeviceView, errorAt, type Parsed } from "./_cli.ts";

/** The options that say which device a process talks to, and its password. */
const IDENTITY_OPTIONS = ["host", "name", "password", "fingerprint"] as const;

/**
 * The devices a daemon runs: `undefined` for a single-device config (no `[device NAME]`
 * section: today's topics and pages), else every section in order. With sections, an option
 * that names a device (`--host`, `ESS_PASSWORD`, `password` above the first section, …) would
 * apply to all of them alike: that is an error naming where it was set.
 */
export function daemonDevices<S extends string, F extends string>(
  p: Parsed<S, F>,
): readonly DeviceView<S, F>[] | undefined {
  if (p.devices.length === 0) return undefined;
  for (const name of IDENTITY_OPTIONS) {
    const origin = p.get(name as S)?.origin;
    if (origin !== undefined) {
      throw errorAt(
        origin,
        `${name} would apply to every device of the config's [device] sections ` +
          `(${namesText(p.devices)}): set ${name} in each section instead`,
      );
    }
  }
  return p.devices;
}

/**
 * The one device a one-shot command (`ess data`, `ess graph`, `ess control`) talks to: the
 * top-level options for a single-device config; the section `--device NAME` chooses (or the
 * only one) for a config that declares several. A missing or unknown name is a
 * {@link UsageError} that lists the names.
 */
export function chosenDevice<S extends string, F extends string>(
  p: Parsed<S, F>,
  chosen: string | undefined,
): { name: string | undefined; p: Parsed<S, F> } {
  if (p.devices.length === 0) {
    if (chosen !== undefined) {
      throw new UsageError(
        `--device ${chosen}: the config declares no [device NAME] section to choose from`,
      );
    }
    return { name: undefined, p };
  }
  if (chosen === undefined) {
    if (p.devices.length === 1) return p.devices[0]!;
    throw new UsageError(
      `the config declares ${p.devices.length} devices (${namesText(p.devices)}): ` +
        `say which with --device NAME`,
    );
  }
  const device = p.devices.find((d) => d.name === chosen);
  if (device === undefined) {
    throw new UsageError(
      `--device ${JSON.stringify(chosen.slice(0, 40))}: the config declares ` +
        `${namesText(p.devices)}`,
    );
  }
  return device;
}

/** `garage, house and shed`. */
function namesText(devices: readonly { name: string }[]): string {
  const names = devices.map((d) => d.name);
  return names.length <= 1
    ? names.join("")
    : `${names.slice(0, -1).join(", ")} and ${names[names.length - 1]}`;
}
