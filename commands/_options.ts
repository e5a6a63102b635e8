/**
 * The options several commands share: help, the config file and log level, the device's
 * address and password, and `--device` to choose one of several.
 *
 * @module
 */
/** One option of a command. Long names are kebab-case; each also answers to its snake_case. */
export interface OptionSpec {
  readonly name: string;
  readonly type: "string" | "boolean";
  readonly help: string;
  /** Placeholder in help (`HOST[:PORT]`). */
  readonly arg?: string;
  /** Other long names (pyess's spellings). */
  readonly aliases?: readonly string[];
  readonly short?: string;
  /** Environment variable that sets it. */
  readonly env?: string;
  /** Whether a config file may set it (default true). */
  readonly config?: boolean;
  readonly default?: string | boolean;
  /** Section heading in help. */
  readonly group?: string;
  /**
   * A flag pyess declared with `type=bool`, so that its users wrote a value after it
   * (`--once True`): a switch word right after the flag is taken as its value.
   */
  readonly pyessValue?: boolean;
  /** A string option that may be given several times on the command line: see {@link Parsed.all}. */
  readonly multiple?: boolean;
  /**
   * Config file keys that start with this (`surplus.`) belong to the option, however they go
   * on: see {@link Parsed.prefixed}.
   */
  readonly configPrefix?: string;
  /**
   * Whether a `[device NAME]` section of the config file may set it for that device alone
   * (its address, password, polling); the others apply to the whole process.
   */
  readonly perDevice?: boolean;
}

/** An option's value and where it came from, for error messages. */
export interface OptionValue {
  value: string | boolean;
  origin: string;
}

/** Options shared by all commands. */
export const HELP_OPTION = {
  name: "help",
  short: "h",
  type: "boolean",
  help: "show this help",
  config: false,
  group: "General",
} as const satisfies OptionSpec;

/** `--config`, `--log-level`: every command but `simulate` takes them. */
export const GENERAL_OPTIONS = [
  {
    name: "config",
    aliases: ["config-file"],
    type: "string",
    arg: "FILE",
    help:
      "config file (default: /etc/essmqtt.conf, then ~/.essmqtt.conf and ~/essmqtt.conf where present)",
    config: false,
    env: "ESS_CONFIG",
    group: "General",
  },
  {
    name: "options-file",
    type: "string",
    arg: "FILE",
    help: "options as JSON, over the config file: the Home Assistant add-on's " +
      "/data/options.json (keys as in the config file)",
    config: false,
    env: "ESS_OPTIONS_FILE",
    group: "General",
  },
  {
    name: "log-level",
    aliases: ["loglevel"],
    type: "string",
    arg: "LEVEL",
    help: "debug, info, warning or error",
    default: "info",
    env: "ESS_LOG_LEVEL",
    group: "General",
  },
] as const satisfies readonly OptionSpec[];

/** Options of every command that talks to the device. */
export const DEVICE_OPTIONS = [
  {
    name: "host",
    perDevice: true,
    aliases: ["ess-host"],
    type: "string",
    arg: "HOST[:PORT]",
    help: "the ESS's address (default: find it by mDNS)",
    env: "ESS_HOST",
    group: "Device",
  },
  {
    name: "name",
    perDevice: true,
    aliases: ["ess-name"],
    type: "string",
    arg: "NAME",
    help: "without --host: the ESS to find by mDNS when several answer (LGE_ESS-NAME)",
    env: "ESS_NAME",
    group: "Device",
  },
  {
    name: "password",
    perDevice: true,
    aliases: ["ess-password"],
    type: "string",
    arg: "PASSWORD",
    help: "device password: its wired LAN MAC, lowercase, no colons (see 'ess password'); " +
      "better from ESS_PASSWORD or the config file, which ps does not show",
    env: "ESS_PASSWORD",
    group: "Device",
  },
  {
    name: "fingerprint",
    perDevice: true,
    type: "string",
    arg: "SHA256",
    help:
      "accept only the device certificate with this fingerprint (see 'ess data --show-fingerprint')",
    env: "ESS_FINGERPRINT",
    group: "Device",
  },
  {
    name: "timeout",
    perDevice: true,
    type: "string",
    arg: "SECONDS",
    help: "give up on a device request after this long",
    default: "10",
    group: "Device",
  },
] as const satisfies readonly OptionSpec[];

/**
 * `--device NAME`: which of the config's `[device NAME]` sections a one-shot command talks to;
 * needed only when the config declares several.
 */
export const DEVICE_SELECT_OPTION = {
  name: "device",
  type: "string",
  arg: "NAME",
  help: "the device of the config's [device NAME] sections to talk to (needed when it " +
    "declares several)",
  config: false,
  env: "ESS_DEVICE",
  group: "Device",
} as const satisfies OptionSpec;
