import zlib from 'node:zlib';

type NodeZstdDecompress = (
  input: Uint8Array,
  options: { maxOutputLength: number },
  callback: (error: Error | null, result: Buffer) => void,
) => void;
type NodeZstdCompress = (
  input: Uint8Array,
  options: { params?: Record<number, number> },
  callback: (error: Error | null, result: Buffer) => void,
) => void;

// node:zlib has zstd from Node 22.15 / 23.8; older versions decode with fzstd (pure JS).
const nativeDecompress = (zlib as unknown as { zstdDecompress?: NodeZstdDecompress })
  .zstdDecompress;
const nativeCompress = (zlib as unknown as { zstdCompress?: NodeZstdCompress }).zstdCompress;

type Fzstd = typeof import('fzstd');
let fzstd: Promise<Fzstd> | undefined;

/** Whether this Node can compress zstd (manifests are re-encoded compressed only then). */
export const canCompressZstd = nativeCompress !== undefined;

/**
 * Decompresses one zstd frame of at most `limit` bytes of output. PBS writes frames
 * with and without a content size (§11.6), so both decoders stream; the limit stops
 * a few input bytes from describing gigabytes. Rejects with the decoder's message.
 */
export async function zstdDecompress(input: Uint8Array, limit: number): Promise<Buffer> {
  if (nativeDecompress) {
    return new Promise((resolve, reject) => {
      nativeDecompress(input, { maxOutputLength: limit }, (error, out) =>
        error ? reject(error) : resolve(out),
      );
    });
  }
  fzstd ??= import('fzstd');
  const { Decompress } = await fzstd;
  const parts: Uint8Array[] = [];
  let produced = 0;
  const stream = new Decompress((chunk) => {
    produced += chunk.byteLength;
    if (produced > limit) throw new Error(`it decompresses to more than ${limit} bytes`);
    parts.push(chunk);
  });
  stream.push(input, true);
  return parts.length === 1 && parts[0]
    ? Buffer.from(parts[0].buffer, parts[0].byteOffset, parts[0].byteLength)
    : Buffer.concat(parts, produced);
}

/** zstd level 1 where node:zlib has it; undefined otherwise. */
export async function zstdCompress(input: Uint8Array): Promise<Buffer | undefined> {
  if (!nativeCompress) return undefined;
  return new Promise((resolve, reject) => {
    // 100 = ZSTD_c_compressionLevel
    nativeCompress(input, { params: { 100: 1 } }, (error, out) =>
      error ? reject(error) : resolve(out),
    );
  });
}
