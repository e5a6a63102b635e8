/**
 * `ess`: connects LG ESS home batteries to the rest of a smart home.
 *
 * This file only dispatches: it picks the subcommand, loads it, parses its options (or shows its
 * help), runs it, and turns every known error into one line on stderr and an exit code.
 *
 * @module
 */
import { helpText, type Io, parseCommand, processIo } from "./commands/_cli.ts";
import { COMMANDS, isDeviceKey, isKnownKey, suggestKey } from "./commands/_registry.ts";
import { errorText, EssError, UsageError } from "./lib/errors.ts";
import type { LogLevel } from "./lib/log.ts";
import { Redactor } from "./lib/redact.ts";
import { VERSION } from "./lib/version.ts";

function mainHelp(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length)) + 2;
  return [
    `ess ${VERSION}: LG ESS home battery to MQTT, Home Assistant, Graphite and a local dashboard`,
    "",
    "Usage: ess <command> [options]",
    "",
    "Commands:",
    ...Object.entries(COMMANDS).map(([name, e]) => `  ${name.padEnd(width)}${e.summary}`),
    "",
    "Run 'ess <command> --help' for a command's options.",
    "Options: -h, --help; -V, --version",
    "",
  ].join("\n");
}

/** esscli's `--action` values and the ess command that does the same. */
const ESSCLI_ACTIONS: Readonly<Record<string, string>> = {
  get_data: "data",
  list_ess: "discover",
  get_password: "password",
  log_against_graphite: "graphite",
};

/** The error for a first argument that is no command, with a hint for esscli's syntax. */
function unknownCommand(name: string, args: readonly string[]): UsageError {
  const at = args.findIndex((a) => a === "--action" || a.startsWith("--action="));
  if (at >= 0) {
    const action = args[at]!.includes("=") ? args[at]!.split("=")[1] : args[at + 1];
    const command = action === undefined ? undefined : ESSCLI_ACTIONS[action];
    const map = Object.entries(ESSCLI_ACTIONS).map(([a, c]) => `${a} → ess ${c}`).join(", ");
    return new UsageError(
      command === undefined
        ? `ess has no --action (that is pyess's esscli): each action is a command: ${map}`
        : `ess has no --action (that is pyess's esscli): --action ${action} is 'ess ${command}'` +
          ` (see 'ess ${command} --help'; the other actions: ${map})`,
    );
  }
  return new UsageError(
    `unknown command ${JSON.stringify(name)}: one of ${Object.keys(COMMANDS).join(", ")}`,
  );
}

/** Runs ess with `args`; returns the exit code. Never throws. */
export async function main(args: string[], given: Io = processIo): Promise<number> {
  const [name, ...rest] = args;
  // The command registers the secrets it learns here; every error line below goes through it.
  const redactor = given.redactor ?? new Redactor();
  const io: Io = { ...given, redactor };
  const say = (text: string) => io.err(redactor.redact(text));
  let logLevel: LogLevel | undefined;
  try {
    if (name === undefined) {
      io.err(mainHelp());
      return 2;
    }
    if (name === "--help" || name === "-h" || name === "help") {
      if (name === "help" && rest[0] !== undefined) return await main([rest[0], "--help"], io);
      io.out(mainHelp());
      return 0;
    }
    if (name === "--version" || name === "-V" || name === "version") {
      io.out(`ess ${VERSION}\n`);
      return 0;
    }
    const entry = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
    if (!entry) throw unknownCommand(name, args);
    const command = (await entry.load()).default;
    const parsed = await parseCommand(command, rest, io, {
      isKnownKey,
      isDeviceKey,
      suggestKey,
      // `deno task ess` runs in the repository; INIT_CWD is where the user typed it.
      cwd: io.env("INIT_CWD"),
    });
    if (parsed === "help") {
      io.out(helpText(command));
      return 0;
    }
    logLevel = parsed.logLevel;
    return await command.run(parsed, io);
  } catch (err) {
    if (logLevel === "debug" && err instanceof Error && err.stack) say(`${err.stack}\n`);
    if (err instanceof EssError) {
      say(`ess: ${err.message}\n`);
      return err.exitCode;
    }
    if (err instanceof Deno.errors.NotCapable || err instanceof Deno.errors.PermissionDenied) {
      say(`ess: missing permission: ${errorText(err).split(",")[0]}\n`);
      return 1;
    }
    say(`ess: unexpected error: ${errorText(err)} (run with --log-level debug for details)\n`);
    return 1;
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
