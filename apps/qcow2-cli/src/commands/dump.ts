import type { Command } from 'commander';
import { notImplemented } from './not-implemented.js';

export function registerDump(program: Command): void {
  program
    .command('dump')
    .description('(not implemented yet)')
    .allowUnknownOption()
    .argument('[args...]')
    .action(() => notImplemented('dump'));
}
