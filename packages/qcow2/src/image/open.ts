import { type BlockDevice, FileDevice } from '@x/blockio';
import { openBackingFile } from '../backing/open-backing.js';
import { checkPolicy, resolveNamedFile } from '../backing/policy.js';
import { TableCache } from '../cache/table-cache.js';
import { Qcow2Error } from '../errors.js';
import { QCOW2_INCOMPAT_CORRUPT } from '../format/constants.js';
import { readQcow2Metadata } from '../format/image-metadata.js';
import { findSnapshot } from '../snapshot/find-snapshot.js';
import { defaultWritePathFactory } from './default-write-path.js';
import { L1Table } from './l1-table.js';
import type { ChainState, OpenQcow2Options } from './open-options.js';
import { Qcow2Image } from './qcow2-image.js';

export type { ChainState, OpenQcow2Options, Qcow2WritePathFactory } from './open-options.js';

/**
 * Cap on metadata memory for a whole backing chain: each L1 table may be 32 MiB
 * (QEMU's limit), and a hostile chain could stack hundreds of them.
 */
export const MAX_CHAIN_METADATA_BYTES = 512 << 20;

export const DEFAULT_L2_CACHE_BYTES = 32 << 20;

/**
 * Opens a qcow2 image as a BlockDevice: validates the metadata, loads the L1
 * table (active, or a snapshot's), opens the external data file and the backing
 * chain as the policy allows, and attaches the write path for writable opens.
 */
export function openQcow2(path: string, options: OpenQcow2Options = {}): Promise<Qcow2Image> {
  return openInChain(path, options, { visited: new Set(), depth: 0, memory: { bytes: 0 } });
}

export async function openInChain(
  path: string,
  options: OpenQcow2Options,
  chain: ChainState,
): Promise<Qcow2Image> {
  const writable = options.writable ?? false;
  const policy = options.backingPolicy ?? 'deny';
  if (writable && options.snapshot !== undefined) {
    throw new Qcow2Error('UNSUPPORTED', 'a snapshot view is read-only', { path });
  }
  const file = await FileDevice.open(path, { writable, zeroExtends: writable, io: options.io });
  const opened: BlockDevice[] = [file];
  try {
    const identity = await fileIdentity(file);
    if (chain.visited.has(identity)) {
      throw new Qcow2Error(
        'BACKING_LOOP',
        'the backing chain refers back to an image already in it',
        { path, structure: 'backing file' },
      );
    }
    const visited = new Set(chain.visited).add(identity);
    const metadata = await readQcow2Metadata(file, { writable });
    if (writable && (metadata.header.incompatibleFeatures & QCOW2_INCOMPAT_CORRUPT) !== 0n) {
      throw new Qcow2Error(
        'MARKED_CORRUPT',
        'the image is marked corrupt; repair it (qcow2 check / qcow2 repair) before writing',
        { path, offset: 72, structure: 'qcow2 header' },
      );
    }

    const snapshot =
      options.snapshot === undefined
        ? undefined
        : findSnapshot(metadata.snapshots, options.snapshot, path);
    const l1 = snapshot
      ? await L1Table.load(
          file,
          snapshot.l1TableOffset,
          snapshot.l1Size,
          `L1 table of snapshot ${snapshot.id}`,
        )
      : await L1Table.load(file, metadata.l1TableOffset, metadata.l1Size);
    const l2CacheBytes = Math.min(
      // Images below the top of a chain are read less; a quarter of the budget each.
      (options.l2CacheBytes ?? DEFAULT_L2_CACHE_BYTES) / (chain.depth === 0 ? 1 : 4),
      Math.max(1, l1.size) * metadata.geometry.clusterSize,
    );
    chain.memory.bytes +=
      l1.bytes.byteLength + Math.max(l2CacheBytes, 2 * metadata.geometry.clusterSize);
    if (chain.memory.bytes > MAX_CHAIN_METADATA_BYTES) {
      throw new Qcow2Error(
        'TOO_LARGE',
        `the backing chain's L1 tables and L2 caches would need more than ${MAX_CHAIN_METADATA_BYTES >> 20} MiB`,
        { path, structure: 'backing chain' },
      );
    }
    const virtualSize =
      snapshot?.diskSize !== undefined
        ? Number(snapshot.diskSize) <= Number.MAX_SAFE_INTEGER
          ? Number(snapshot.diskSize)
          : metadata.virtualSize
        : metadata.virtualSize;

    let dataFile: BlockDevice = file;
    let ownsDataFile = false;
    if (metadata.dataFile !== undefined) {
      checkPolicy(policy, path, metadata.dataFile, 'external data file');
      const dataPath = resolveNamedFile(path, metadata.dataFile, 'external data file');
      dataFile = await FileDevice.open(dataPath, {
        writable,
        zeroExtends: writable,
        io: options.io,
      });
      opened.push(dataFile);
      ownsDataFile = true;
    }

    let backing: BlockDevice | undefined;
    let backingPath: string | undefined;
    let backingFormat: 'qcow2' | 'raw' | undefined;
    if (metadata.backingFile !== undefined && policy !== 'ignore') {
      checkPolicy(policy, path, metadata.backingFile, 'backing file');
      const next = await openBackingFile(
        path,
        metadata,
        options,
        { visited, depth: chain.depth + 1, memory: chain.memory },
        openInChain,
      );
      backing = next.device;
      backingPath = next.path;
      backingFormat = next.format;
      opened.push(backing);
    }

    const clusterSize = metadata.geometry.clusterSize;
    const headerBytes = Buffer.alloc(Math.min(4096, clusterSize, file.size));
    await file.read(0, headerBytes);
    const image = new Qcow2Image({
      file,
      metadata,
      l1,
      l2Cache: new TableCache({
        file,
        tableSize: clusterSize,
        maxBytes: l2CacheBytes,
        structure: 'L2 table',
      }),
      dataFile,
      ownsDataFile,
      backing,
      backingPath,
      backingFormat,
      snapshot,
      virtualSize,
      writable,
      headerBytes,
      salvage: writable ? undefined : options.salvage,
    });
    if (writable) {
      const factory = options.writePath ?? defaultWritePathFactory;
      if (!factory) {
        throw new Qcow2Error('UNSUPPORTED', 'writing qcow2 images is not available yet', { path });
      }
      image.attachWritePath(await factory(image));
    }
    return image;
  } catch (error) {
    for (const device of opened.reverse()) await device.close().catch(() => {});
    throw error;
  }
}

async function fileIdentity(file: FileDevice): Promise<string> {
  const stat = await file.handle.stat({ bigint: true });
  return `${stat.dev}:${stat.ino}`;
}
