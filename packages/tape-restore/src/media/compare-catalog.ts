import { join } from 'node:path';
import { loadInventory } from '../catalog/inventory.js';
import { loadMediaCatalog } from '../catalog/media-catalog.js';
import { findInventoryEntry } from './media-list.js';
import type { VerifyMediaResult } from './verify-media.js';

/**
 * Compares what verify-media read with the inventory and the tape's catalog: the
 * label's uuid and media set, and for every catalogued file its kind and store.
 * Returns the mismatches, one line each.
 */
export async function compareWithCatalog(
  statusDir: string,
  result: VerifyMediaResult,
): Promise<string[]> {
  const problems: string[] = [];
  const entry = findInventoryEntry(await loadInventory(statusDir), result.label, statusDir);
  if (entry.label.uuid !== result.mediaUuid)
    problems.push(`the tape's uuid is ${result.mediaUuid}, the inventory says ${entry.label.uuid}`);
  if (entry.mediaSetLabel?.uuid !== result.mediaSetUuid)
    problems.push(
      `the tape is in media set ${result.mediaSetUuid ?? 'none'}, the inventory says ${entry.mediaSetLabel?.uuid ?? 'none'}`,
    );
  const catalog = await loadMediaCatalog(
    join(statusDir, `${entry.label.uuid}.log`),
    entry.label.uuid,
    result.label,
  );
  const files = new Map(result.files.map((f) => [f.fileNumber, f]));
  for (const archive of catalog.chunkArchives) {
    const file = files.get(archive.fileNumber);
    if (file?.kind !== 'chunk-archive' || file.store !== archive.store) {
      problems.push(
        `file ${archive.fileNumber}: the catalog says chunk archive of '${archive.store}', the tape holds ${file ? `${file.kind}${file.store ? ` of '${file.store}'` : ''}` : 'nothing'}`,
      );
    } else if (file.items < archive.chunkCount) {
      problems.push(
        `file ${archive.fileNumber}: the catalog lists ${archive.chunkCount} chunks, the tape holds ${file.items} sound ones`,
      );
    }
  }
  for (const snapshot of catalog.snapshots) {
    const file = files.get(snapshot.fileNumber);
    if (
      !file?.kind.startsWith('snapshot-archive') ||
      file.store !== snapshot.store ||
      file.snapshot !== snapshot.snapshot
    ) {
      problems.push(
        `file ${snapshot.fileNumber}: the catalog says snapshot ${snapshot.store}:${snapshot.snapshot}, the tape holds ${file ? `${file.kind} ${file.store ?? ''}:${file.snapshot ?? ''}` : 'nothing'}`,
      );
    }
  }
  return problems;
}
