import type { Command } from 'commander';
import { notImplemented } from './not-implemented.js';

export function registerRepair(program: Command): void {
  program
    .command('repair')
    .description('(not implemented yet)')
    .allowUnknownOption()
    .argument('[args...]')
    .action(() => notImplemented('repair'));
}
