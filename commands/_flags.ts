/**
 * How the command line's flags are read beyond what `node:util`'s parseArgs knows: pyess's
 * `--once True`, and a word after a flag that was meant for it.
 *
 * @module
 */
import { parseSwitchWord, SWITCH_WORDS_TEXT } from "../lib/device/vocabulary.ts";
import { UsageError } from "../lib/errors.ts";

/** What these functions read of a boolean option, by each of its names. */
export interface Flag {
  /** Whether a switch word right after the flag is its value (pyess's `type=bool` flags). */
  readonly pyessValue?: boolean;
}

/**
 * pyess's spellings of a boolean flag with a value, as ConfigArgParse took them: `--once=true`
 * for any flag, and `--once True` for the flags pyess declared with `type=bool`. Each becomes
 * the plain flag or its `--no-` form; any other value after `=` is a usage error.
 */
export function flagValues(argv: readonly string[], flags: ReadonlyMap<string, Flag>): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--") {
      out.push(...argv.slice(i));
      break;
    }
    const m = /^--([^=]+)(?:=(.*))?$/s.exec(arg);
    const spec = m ? flags.get(m[1]!) : undefined;
    if (!m || !spec) {
      out.push(arg);
      continue;
    }
    let value = m[2];
    const next = argv[i + 1];
    if (value === undefined && spec.pyessValue && next !== undefined) {
      if (parseSwitchWord(next) !== undefined) {
        value = next;
        i++;
      }
    }
    if (value === undefined) {
      out.push(arg);
      continue;
    }
    const on = parseSwitchWord(value);
    if (on === undefined) {
      throw new UsageError(
        `--${m[1]}=${JSON.stringify(value)}: a flag takes no value, or one of ${SWITCH_WORDS_TEXT}`,
      );
    }
    out.push(on ? `--${m[1]}` : `--no-${m[1]}`);
  }
  return out;
}

/**
 * The error for an argument a command does not take. Right after a flag (`--once maybe`), it
 * names the flag and the values it does take, since the user meant the word for it.
 */
export function strayArgument(
  command: string,
  argv: readonly string[],
  argument: string,
  flags: ReadonlyMap<string, Flag>,
): UsageError {
  const before = argv[argv.indexOf(argument) - 1];
  const flag = before === undefined ? undefined : /^--(?:no-)?([^=]+)$/.exec(before)?.[1];
  if (flag !== undefined && flags.has(flag)) {
    return new UsageError(
      `ess ${command}: ${before} takes no value (got ${JSON.stringify(argument)}): give the ` +
        `flag alone, or --${flag}=VALUE with one of ${SWITCH_WORDS_TEXT}`,
    );
  }
  return new UsageError(`ess ${command} takes no arguments (got ${JSON.stringify(argument)})`);
}
