import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';

/** Overwrites bytes of a file in place (for corrupting fixtures at a named structure). */
export async function pokeBytes(path: string, offset: number, data: Uint8Array): Promise<void> {
  const handle = await open(path, 'r+');
  try {
    await handle.write(data, 0, data.byteLength, offset);
  } finally {
    await handle.close();
  }
}

export async function readBytes(path: string, offset: number, length: number): Promise<Buffer> {
  const handle = await open(path, 'r');
  try {
    const buffer = Buffer.alloc(length);
    const { bytesRead } = await handle.read(buffer, 0, length, offset);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

export async function readU64BE(path: string, offset: number): Promise<bigint> {
  return (await readBytes(path, offset, 8)).readBigUInt64BE(0);
}

export async function pokeU64BE(path: string, offset: number, value: bigint): Promise<void> {
  const buffer = Buffer.alloc(8);
  buffer.writeBigUInt64BE(value);
  await pokeBytes(path, offset, buffer);
}

export async function readU32BE(path: string, offset: number): Promise<number> {
  return (await readBytes(path, offset, 4)).readUInt32BE(0);
}

export async function pokeU32BE(path: string, offset: number, value: number): Promise<void> {
  const buffer = Buffer.alloc(4);
  buffer.writeUInt32BE(value);
  await pokeBytes(path, offset, buffer);
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) hash.update(chunk);
  return hash.digest('hex');
}

/** True when both files have the same length and bytes. */
export async function filesEqual(a: string, b: string): Promise<boolean> {
  const [sa, sb] = await Promise.all([stat(a), stat(b)]);
  if (sa.size !== sb.size) return false;
  return (await sha256File(a)) === (await sha256File(b));
}

/** Bytes actually allocated on disk (st_blocks * 512). */
export async function allocatedBytes(path: string): Promise<number> {
  return (await stat(path)).blocks * 512;
}

/** Deterministic pseudo-random bytes (xorshift32), for reproducible sample data. */
export function seededBytes(length: number, seed: number): Buffer {
  const buffer = Buffer.allocUnsafe(length);
  let state = seed >>> 0 || 0x9e3779b9;
  let i = 0;
  for (; i + 4 <= length; i += 4) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    buffer.writeUInt32LE(state >>> 0, i);
  }
  for (; i < length; i++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    buffer[i] = state & 0xff;
  }
  return buffer;
}
