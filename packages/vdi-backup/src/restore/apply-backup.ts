import {
  type BlockDevice,
  checkedAdd,
  checkedMul,
  type LongRunningOptions,
  ProgressTracker,
  throwIfAborted,
} from '@x/blockio';
import type { BackupReader } from '../stream/backup-reader.js';

export interface ApplyResult {
  records: number;
  /** Bytes of record data written to the target. */
  bytesWritten: number;
}

/**
 * Writes every record of a validated stream into `target` at idx × objectSize + offset,
 * in stream order (as `dog vdi restore` does: a later record wins where they overlap).
 */
export async function applyBackup(
  reader: BackupReader,
  target: BlockDevice,
  options: LongRunningOptions = {},
): Promise<ApplyResult> {
  const progress = new ProgressTracker('restore', reader.summary.dataBytes, options.onProgress);
  const result: ApplyResult = { records: 0, bytesWritten: 0 };
  let buffer = Buffer.alloc(0);
  for await (const record of reader.records()) {
    throwIfAborted(options.signal, target.name);
    if (buffer.byteLength < record.length) buffer = Buffer.allocUnsafe(record.length);
    const data = await reader.readData(record, buffer);
    const at = checkedAdd(checkedMul(record.idx, reader.objectSize), record.offset);
    await target.write(at, data);
    result.records++;
    result.bytesWritten += record.length;
    progress.advance(record.length);
  }
  progress.finish();
  return result;
}
