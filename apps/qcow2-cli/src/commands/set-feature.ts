import type { Command } from 'commander';
import { notImplemented } from './not-implemented.js';

export function registerSetFeature(program: Command): void {
  program
    .command('set-feature')
    .description('(not implemented yet)')
    .allowUnknownOption()
    .argument('[args...]')
    .action(() => notImplemented('set-feature'));
}
