import { Command } from 'commander';
import { registerCheck } from './commands/check.js';
import { registerConvert } from './commands/convert.js';
import { registerDump } from './commands/dump.js';
import { registerInfo } from './commands/info.js';
import { registerMap } from './commands/map.js';
import { registerPoke } from './commands/poke.js';
import { registerRepair } from './commands/repair.js';
import { registerSetFeature } from './commands/set-feature.js';
import { registerSnapshot } from './commands/snapshot.js';
import { registerUndo } from './commands/undo.js';

// Each command module only declares its options here; the code that does the
// work is imported when the command runs, so start-up stays small.
const program = new Command('qcow2')
  .description('Inspect, convert, check, dump and repair QCOW2 disk images.')
  .version('0.1.0')
  .showHelpAfterError()
  .exitOverride((error) => {
    // commander exits 1 on usage errors; DESIGN.md says 2 (0 for --help/--version).
    process.exit(error.exitCode === 0 ? 0 : 2);
  });

for (const register of [
  registerInfo,
  registerMap,
  registerConvert,
  registerCheck,
  registerDump,
  registerRepair,
  registerUndo,
  registerSnapshot,
  registerSetFeature,
  registerPoke,
]) {
  register(program);
}

await program.parseAsync(process.argv);
