import { BlockIoError } from '../errors.js';
import { parseSize } from '../size-parse.js';
import { UsageError } from './run-command.js';

/**
 * A parser `(text) => number` for a size option (`--cluster-size 64k`), reading what
 * `parseSize` reads. A bad value is a `UsageError` (exit 2) naming the option and the
 * value: `invalid --cluster-size "big": expected bytes, hex (0x…), …`.
 *
 * It has commander's argument-parser shape, but call it in the action, inside
 * `runCommand`: commander only turns its own `InvalidArgumentError` into a usage
 * message, so a `UsageError` thrown from `.argParser()` would escape `parseAsync`
 * as a stack trace, and `--json` would not see it.
 */
export function sizeOption(what: string): (text: string) => number {
  return (text) => {
    try {
      return parseSize(text, what);
    } catch (error) {
      if (error instanceof BlockIoError) throw new UsageError(error.message);
      throw error;
    }
  };
}
