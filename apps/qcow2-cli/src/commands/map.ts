import type { Command } from 'commander';
import { notImplemented } from './not-implemented.js';

export function registerMap(program: Command): void {
  program
    .command('map')
    .description('(not implemented yet)')
    .allowUnknownOption()
    .argument('[args...]')
    .action(() => notImplemented('map'));
}
