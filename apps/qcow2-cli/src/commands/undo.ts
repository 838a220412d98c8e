import type { Command } from 'commander';
import { notImplemented } from './not-implemented.js';

export function registerUndo(program: Command): void {
  program
    .command('undo')
    .description('(not implemented yet)')
    .allowUnknownOption()
    .argument('[args...]')
    .action(() => notImplemented('undo'));
}
