import type { Command } from 'commander';
import { notImplemented } from './not-implemented.js';

export function registerSnapshot(program: Command): void {
  program
    .command('snapshot')
    .description('(not implemented yet)')
    .allowUnknownOption()
    .argument('[args...]')
    .action(() => notImplemented('snapshot'));
}
