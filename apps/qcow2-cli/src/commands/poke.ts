import type { Command } from 'commander';
import { notImplemented } from './not-implemented.js';

export function registerPoke(program: Command): void {
  program
    .command('poke')
    .description('(not implemented yet)')
    .allowUnknownOption()
    .argument('[args...]')
    .action(() => notImplemented('poke'));
}
