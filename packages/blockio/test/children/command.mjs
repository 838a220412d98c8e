// Child for the runCommand tests: one CLI action per mode, run through the built
// `@x/blockio/cli` entry exactly as an app would.
import { pathToFileURL } from 'node:url';

const [distDirectory, mode, ...rest] = process.argv.slice(2);
const load = (entry) => import(pathToFileURL(`${distDirectory}/${entry}`).href);
const { exitOnParserError, runCommand, UsageError } = await load('cli/index.js');
const { BlockIoError, abortedError, createOutputFile, optionRemedy } = await load('index.js');

const json = rest.includes('--json');

if (mode === 'parser-error') {
  // What commander throws with exitOverride() for `tool convert --bogus`.
  const error = Object.assign(new Error("error: unknown option '--bogus'"), {
    code: 'commander.unknownOption',
    exitCode: 1,
  });
  exitOnParserError('demo-tool', error, ['node', 'demo-tool', ...rest]);
}
if (mode === 'parser-help') {
  exitOnParserError(
    'demo-tool',
    Object.assign(new Error('(outputHelp)'), { code: 'commander.helpDisplayed', exitCode: 0 }),
  );
}

const optionFlags = rest.includes('--with-flag')
  ? { overwrite: '--force', force: '--yes-really' }
  : undefined;

const showCodes = rest.includes('--codes');

await runCommand({ program: 'demo-tool', json, optionFlags, showCodes }, async (context) => {
  switch (mode) {
    case 'ok':
      context.print('all good');
      return;
    case 'own-code':
      return 3;
    case 'blockio-error':
      throw new BlockIoError('CORRUPT', 'L2 table entry points past the end', {
        path: 'disk.qcow2',
        offset: 0x30000,
        structure: 'L2 table 3',
      });
    case 'unsafe-offset':
      throw new BlockIoError('UNSAFE_INTEGER', 'l1_table_offset is beyond 2^53 - 1', {
        path: 'huge.qcow2',
        offset: (1n << 60n) + 1n,
        structure: 'qcow2 header',
      });
    case 'output-exists':
      // rest[0] exists: createOutputFile refuses it.
      await createOutputFile(rest[0]);
      return;
    case 'needs-force':
      // A library refusal naming another option than overwrite.
      throw new BlockIoError(
        'INVALID_ARGUMENT',
        `the journal is newer than the image (${optionRemedy('force')} to replay it anyway)`,
        { path: 'disk.img' },
      );
    case 'plain-error':
      throw new Error('something broke');
    case 'usage':
      throw new UsageError('missing <source> argument');
    case 'wait-for-signal': {
      // A long job: holds a partial output until the signal aborts it, then cleans up.
      const output = await createOutputFile(rest[0]);
      await output.device.write(0, Buffer.alloc(4096, 1));
      process.stdout.write('ready\n');
      const keepAlive = setInterval(() => {}, 1000); // a real job would have I/O in flight
      try {
        await new Promise((_, reject) => {
          context.signal.addEventListener('abort', () => reject(abortedError(context.signal)));
        });
      } finally {
        clearInterval(keepAlive);
        await output.abort();
      }
      return;
    }
    case 'stuck-cleanup': {
      // A job whose cleanup does not finish (a hung device): the user presses Ctrl-C again.
      const output = await createOutputFile(rest[0]);
      await output.device.write(0, Buffer.alloc(4096, 1));
      process.stdout.write('ready\n');
      setInterval(() => {}, 1000);
      await new Promise(() => {});
      return;
    }
    case 'system-error':
      throw new BlockIoError('ENOSPC', 'cannot write 4096 bytes: no space left on device', {
        path: 'out.raw',
        offset: 8192,
      });
    default:
      throw new Error(`unknown mode ${mode}`);
  }
});
