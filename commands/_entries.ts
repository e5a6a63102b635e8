/**
 * A command's config file entries, read and sorted: the values of its options, each
 * `[device NAME]` section's, the entries under an option's prefix, and unknown keys.
 *
 * @module
 */
import { resolve } from "node:path";
import {
  type ConfigEntry,
  deviceNameKey,
  loadConfigFile,
  loadDefaultConfig,
  MAX_DEVICES,
} from "../lib/config.ts";
import { ConfigError } from "../lib/errors.ts";
import { loadAddonOptions } from "../lib/hass/addon.ts";
import type { OptionSpec, OptionValue } from "./_options.ts";

/** What sorting needs to know of the other commands (see `ParseContext` in `_cli.ts`). */
interface KnownKeys {
  isKnownKey?: (key: string) => boolean | Promise<boolean>;
  isDeviceKey?: (key: string) => boolean | Promise<boolean>;
}

const snake = (name: string) => name.replaceAll("-", "_");
const kebab = (name: string) => name.replaceAll("_", "-");

/** The entries of the config file (`--config`, else the default ones) and the add-on's options. */
export async function fileEntries(
  specs: readonly OptionSpec[],
  cli: ReadonlyMap<string, OptionValue>,
  io: { env(name: string): string | undefined },
  cwd: string,
): Promise<ConfigEntry[]> {
  let entries: ConfigEntry[] = [];
  if (specs.some((s) => s.name === "config")) {
    const path = cli.get("config")?.value ?? io.env("ESS_CONFIG");
    entries = typeof path === "string"
      ? await loadConfigFile(resolve(cwd, path))
      : await loadDefaultConfig(io.env("HOME"));
  }
  const optionsFile = specs.some((s) => s.name === "options-file")
    ? cli.get("options-file")?.value ?? io.env("ESS_OPTIONS_FILE")
    : undefined;
  if (typeof optionsFile === "string") {
    entries.push(...await loadAddonOptions(resolve(cwd, optionsFile)));
  }
  return entries;
}

/** One device section's values from the file, and where its header is. */
export interface SectionValues {
  origin: string;
  fromFile: Map<string, OptionValue>;
}

/** The error for a process-wide key inside a `[device NAME]` section. */
function processWide(entry: ConfigEntry): ConfigError {
  return new ConfigError(
    `${entry.origin}: ${entry.key} applies to the whole process, not to one device: move ` +
      `it above the first [device] section`,
  );
}

/**
 * An entry of a `[device NAME]` section, filed under its device: only an option that may be
 * set per device ({@link OptionSpec.perDevice}) may stand there. Any other option, this
 * command's or (as `known` says) another's, is a {@link ConfigError} naming the file and line:
 * one config serves every command, so each judges it alike.
 */
function sectionEntry(
  entry: ConfigEntry & { device: string },
  spec: OptionSpec | undefined,
  known: "device" | "process" | "unknown",
  sections: Map<string, SectionValues>,
): void {
  let section = sections.get(entry.device);
  if (section === undefined) {
    if (sections.size >= MAX_DEVICES) {
      throw new ConfigError(
        `${entry.deviceOrigin ?? entry.origin}: at most ${MAX_DEVICES} devices in one config`,
      );
    }
    const twin = [...sections].find(([other]) =>
      deviceNameKey(other) === deviceNameKey(entry.device)
    );
    if (twin !== undefined) {
      throw new ConfigError(
        `${entry.deviceOrigin ?? entry.origin}: device ${entry.device} and device ${twin[0]} ` +
          `(at ${twin[1].origin}) differ only in "-" and "_", which Home Assistant's entity ids ` +
          `do not tell apart: rename one`,
      );
    }
    section = { origin: entry.deviceOrigin ?? entry.origin, fromFile: new Map() };
    sections.set(entry.device, section);
  }
  if (spec === undefined) {
    if (known === "process") throw processWide(entry);
    return;
  }
  if (spec.config === false) return;
  if (!spec.perDevice) throw processWide(entry);
  section.fromFile.set(spec.name, { value: entry.value, origin: entry.origin });
}

/** What the other commands make of a key this one does not know. */
async function otherCommands(
  key: string,
  context: KnownKeys,
): Promise<"device" | "process" | "unknown"> {
  if (!await context.isKnownKey?.(key)) return "unknown";
  return await context.isDeviceKey?.(key) ? "device" : "process";
}

/** A command's config entries, sorted by {@link sortEntries}. */
export interface SortedEntries {
  /** This command's options set above every device section. */
  fromFile: Map<string, OptionValue>;
  /** Keys no command of ess knows. */
  unknown: ConfigEntry[];
  /** Entries under an option's `configPrefix`, by option name. */
  prefixed: Map<string, ConfigEntry[]>;
  /** Each `[device NAME]` section's values, in config order. */
  sections: Map<string, SectionValues>;
}

/**
 * The file's entries sorted: values of this command's options, entries under an option's
 * `configPrefix`, each device section's values, and keys no command of ess knows (for a
 * warning).
 */
export async function sortEntries(
  entries: readonly ConfigEntry[],
  specs: readonly OptionSpec[],
  byName: ReadonlyMap<string, OptionSpec>,
  context: KnownKeys,
): Promise<SortedEntries> {
  const fromFile = new Map<string, OptionValue>();
  const unknown: ConfigEntry[] = [];
  const prefixed = new Map<string, ConfigEntry[]>();
  const sections = new Map<string, SectionValues>();
  for (const entry of entries) {
    const owner = specs.find((s) => s.configPrefix && entry.key.startsWith(s.configPrefix));
    if (owner && entry.device !== undefined) throw processWide(entry);
    if (owner) {
      prefixed.set(owner.name, [...prefixed.get(owner.name) ?? [], entry]);
      continue;
    }
    const spec = byName.get(kebab(entry.key)) ?? byName.get(snake(entry.key));
    const known = spec ? "device" : await otherCommands(kebab(entry.key), context);
    if (known === "unknown") unknown.push(entry);
    if (entry.device !== undefined) {
      sectionEntry({ ...entry, device: entry.device }, spec, known, sections);
    } else if (spec && spec.config !== false) {
      fromFile.set(spec.name, { value: entry.value, origin: entry.origin });
    }
  }
  return { fromFile, unknown, prefixed, sections };
}
