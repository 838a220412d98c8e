import type { Command } from 'commander';
import { notImplemented } from './not-implemented.js';

export function registerCheck(program: Command): void {
  program
    .command('check')
    .description('(not implemented yet)')
    .allowUnknownOption()
    .argument('[args...]')
    .action(() => notImplemented('check'));
}
