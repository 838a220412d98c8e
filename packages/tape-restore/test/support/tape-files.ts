import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { VirtualTapeDrive } from '../../src/index.js';
import { BlockStreamWriter } from '../../src/testing/index.js';

/** Block stream bytes of one tape file holding `payload`. */
export function blockStream(payload: Uint8Array, incomplete = false): Buffer {
  const writer = new BlockStreamWriter(1 << 20);
  writer.write(payload);
  writer.finish(incomplete);
  return Buffer.concat(writer.blocks as Buffer[]);
}

/**
 * A virtual drive directory with one tape `label` whose files are the given host file
 * contents (already block streams, or raw bytes to damage on purpose).
 */
export async function virtualTape(
  dir: string,
  label: string,
  files: Uint8Array[],
): Promise<VirtualTapeDrive> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, `tape-${label}.json`), JSON.stringify({ files: files.length }));
  for (const [n, bytes] of files.entries())
    await writeFile(join(dir, `tapefile-${n}-${label}.json`), bytes);
  const drive = new VirtualTapeDrive(dir);
  await drive.loadMedia(label);
  return drive;
}

/** Reads the whole logical stream of the next file. */
export async function readWholeFile(drive: VirtualTapeDrive): Promise<Buffer> {
  const next = await drive.readNextFile();
  if (next.kind !== 'file') throw new Error(`no file: ${next.kind}`);
  const parts: Buffer[] = [];
  const slice = Buffer.alloc(100_000);
  for (;;) {
    const got = await next.reader.read(slice);
    if (got === 0) break;
    parts.push(Buffer.from(slice.subarray(0, got)));
  }
  await next.reader.close();
  return Buffer.concat(parts);
}

/** XORs one byte (a corruption at a named structure). */
export function flip(bytes: Uint8Array, offset: number, mask = 0xff): void {
  bytes[offset] = (bytes[offset] ?? 0) ^ mask;
}
