import { runCommand } from '@x/blockio/cli';

/** Placeholder for commands still being written; removed when the last one lands. */
export function notImplemented(name: string): Promise<void> {
  return runCommand({ program: 'qcow2' }, async () => {
    throw new Error(`"qcow2 ${name}" is not implemented yet`);
  });
}
