import { open } from 'node:fs/promises';
import zlib from 'node:zlib';
import {
  BLOCK_HEADER_SIZE,
  BLOCK_PAYLOAD_SIZE,
  PROXMOX_TAPE_BLOCK_SIZE,
} from '../../src/format/tape-block.js';
import { chunkArchiveEntries, readTapeContent, type TapeDrive } from '../../src/index.js';

export interface EntryPosition {
  readonly digest: string;
  /** Stream offset of the DataBlob's first byte. */
  readonly blobStart: number;
  readonly blobSize: number;
}

/** The entries of the chunk archive at `fileNumber` of tape `label`, with stream offsets. */
export async function findChunkArchiveEntries(drive: TapeDrive, label: string, fileNumber: number) {
  await drive.loadMedia(label);
  await drive.moveToFile(fileNumber);
  const next = await drive.readNextFile();
  if (next.kind !== 'file') throw new Error('no file');
  const entries: EntryPosition[] = [];
  try {
    const content = await readTapeContent(next.reader);
    if (content.kind !== 'chunk-archive')
      throw new Error(`file ${fileNumber} is a ${content.kind}`);
    let position = next.reader.position;
    for await (const entry of chunkArchiveEntries(next.reader, drive.stats)) {
      entries.push({
        digest: entry.digest,
        blobStart: position + 48,
        blobSize: entry.blob.byteLength,
      });
      position = next.reader.position;
    }
  } finally {
    await next.reader.close();
  }
  return { path: next.reader.location.path, entries };
}

/** Host file offset of a logical stream offset (16-byte header per 256 KiB block). */
export function hostOffset(streamOffset: number): number {
  const block = Math.floor(streamOffset / BLOCK_PAYLOAD_SIZE);
  return block * PROXMOX_TAPE_BLOCK_SIZE + BLOCK_HEADER_SIZE + (streamOffset % BLOCK_PAYLOAD_SIZE);
}

/** Flips one byte of the tape file at a stream offset. */
export async function poke(path: string, streamOffset: number): Promise<void> {
  const handle = await open(path, 'r+');
  try {
    const at = hostOffset(streamOffset);
    const byte = Buffer.alloc(1);
    await handle.read(byte, 0, 1, at);
    byte[0] = (byte[0] ?? 0) ^ 0xff;
    await handle.write(byte, 0, 1, at);
  } finally {
    await handle.close();
  }
}

/**
 * Replaces an uncompressed entry's data by other bytes of the same length with a
 * matching CRC: the blob is sound, but its SHA-256 is no longer its digest.
 */
export async function replaceBlobKeepingCrc(path: string, entry: EntryPosition): Promise<void> {
  const handle = await open(path, 'r+');
  try {
    const data = Buffer.alloc(entry.blobSize - 12, 0x5a);
    const header = Buffer.alloc(12);
    await readStream(handle, entry.blobStart, header);
    header.writeUInt32LE(zlib.crc32(data), 8);
    await writeStream(handle, entry.blobStart, header);
    await writeStream(handle, entry.blobStart + 12, data);
  } finally {
    await handle.close();
  }
}

async function readStream(
  handle: import('node:fs/promises').FileHandle,
  offset: number,
  into: Buffer,
) {
  for (let i = 0; i < into.byteLength; i++) {
    const one = Buffer.alloc(1);
    await handle.read(one, 0, 1, hostOffset(offset + i));
    into[i] = one[0] ?? 0;
  }
}

async function writeStream(
  handle: import('node:fs/promises').FileHandle,
  offset: number,
  data: Buffer,
) {
  let at = 0;
  while (at < data.byteLength) {
    const stream = offset + at;
    const room = BLOCK_PAYLOAD_SIZE - (stream % BLOCK_PAYLOAD_SIZE);
    const take = Math.min(room, data.byteLength - at);
    await handle.write(data, at, take, hostOffset(stream));
    at += take;
  }
}
