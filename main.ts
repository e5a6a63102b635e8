/**
 * `ess`: connects LG ESS home batteries to the rest of a smart home.
 *
 * This file only dispatches: it picks the subcommand, loads it, and turns every known error
 * into one line on stderr and an exit code.
 *
 * @module
 */
import type { Io } from "./commands/_cli.ts";
import { processIo } from "./commands/_cli.ts";
import { COMMANDS } from "./commands/_registry.ts";
import { errorText, EssError, UsageError } from "./lib/errors.ts";
import { Redactor } from "./lib/redact.ts";
import { VERSION } from "./lib/version.ts";

function mainHelp(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length)) + 2;
  return [
    `ess ${VERSION}: LG ESS home battery to MQTT, Home Assistant and Graphite`,
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

/** Runs ess with `args`; returns the exit code. Never throws. */
export async function main(args: string[], given: Io = processIo): Promise<number> {
  const [name, ...rest] = args;
  // The command registers the secrets it learns here; every error line below goes through it.
  const redactor = given.redactor ?? new Redactor();
  const io: Io = { ...given, redactor };
  const say = (text: string) => io.err(redactor.redact(text));
  const debug =
    args.some((a, i) =>
      /^--log-?level=debug$/.test(a) || (/^--log-?level$/.test(a) && args[i + 1] === "debug")
    ) || io.env("ESS_LOG_LEVEL") === "debug";
  try {
    if (name === undefined || name === "--help" || name === "-h" || name === "help") {
      if (name === "help" && rest[0] !== undefined) return await main([rest[0], "--help"], io);
      io.out(mainHelp());
      return 0;
    }
    if (name === "--version" || name === "-V" || name === "version") {
      io.out(`ess ${VERSION}\n`);
      return 0;
    }
    const entry = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
    if (!entry) {
      throw new UsageError(
        `unknown command ${JSON.stringify(name)}: one of ${Object.keys(COMMANDS).join(", ")}`,
      );
    }
    const command = (await entry.load()).default;
    return await command.run(rest, io);
  } catch (err) {
    if (debug && err instanceof Error && err.stack) say(`${err.stack}\n`);
    if (err instanceof EssError) {
      say(`ess: ${err.message}\n`);
      return err.exitCode;
    }
    if (err instanceof Deno.errors.NotCapable || err instanceof Deno.errors.PermissionDenied) {
      say(`ess: missing permission: ${(err as Error).message.split(",")[0]}\n`);
      return 1;
    }
    say(`ess: unexpected error: ${errorText(err)} (run with --log-level debug for details)\n`);
    return 1;
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
