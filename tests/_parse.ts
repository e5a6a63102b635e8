/**
 * Parses a command line in-process, as the dispatcher does, for tests that check what a command
 * or a helper makes of its options.
 *
 * @module
 */
import {
  type Command,
  type Io,
  type OptionSpec,
  parseCommand,
  type ParseContext,
  type ParsedOf,
} from "../commands/_cli.ts";

/** The parsed options of `command` for `argv`; `--help` is an error here. */
export async function parsed<O extends readonly OptionSpec[]>(
  command: Omit<Command<O>, "run">,
  argv: readonly string[],
  io: Io,
  context?: ParseContext,
): Promise<ParsedOf<O>> {
  const p = await parseCommand(command, argv, io, context);
  if (p === "help") throw new Error("unexpected --help");
  return p;
}
