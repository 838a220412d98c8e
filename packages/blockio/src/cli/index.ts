/**
 * Glue shared by every blockkit CLI, kept in its own entry point (`@x/blockio/cli`)
 * so a CLI's start-up loads only this, not the whole I/O layer.
 */

export {
  exitOnParserError,
  type ParsedCommand,
  type ParserError,
  refuseEmptyArguments,
} from './command-line.js';
export {
  EXIT_FAILURE,
  EXIT_OK,
  EXIT_SIGINT,
  EXIT_SIGPIPE,
  EXIT_SIGTERM,
  EXIT_USAGE,
} from './exit-codes.js';
export { LineWriter } from './line-writer.js';
export {
  type CommandContext,
  jsonReplacer,
  type OptionFlags,
  printError,
  type RunCommandOptions,
  runCommand,
  UsageError,
  usageLine,
} from './run-command.js';
export { sizeOption } from './size-option.js';
