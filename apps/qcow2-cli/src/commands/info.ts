import type { Command } from 'commander';
import { notImplemented } from './not-implemented.js';

export function registerInfo(program: Command): void {
  program
    .command('info')
    .description('(not implemented yet)')
    .allowUnknownOption()
    .argument('[args...]')
    .action(() => notImplemented('info'));
}
