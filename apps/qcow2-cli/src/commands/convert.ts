import type { Command } from 'commander';
import { notImplemented } from './not-implemented.js';

export function registerConvert(program: Command): void {
  program
    .command('convert')
    .description('(not implemented yet)')
    .allowUnknownOption()
    .argument('[args...]')
    .action(() => notImplemented('convert'));
}
