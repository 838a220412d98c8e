/**
 * Just enough of the Zstandard frame format (RFC 8878 §3.1.1) to find where a
 * frame ends and what it claims about itself, so a decoder is handed exactly
 * one frame (compressed clusters are followed by sector padding and possibly
 * the neighbour's bytes) and cannot be made to allocate what a header claims.
 */

export interface ZstdFrameInfo {
  /** Bytes the whole frame occupies, checksum included. */
  length: number;
  /** Frame_Content_Size when the header carries it. */
  contentSize: number | undefined;
  /** Window size the decoder needs (the content size for single-segment frames). */
  windowSize: number;
}

/**
 * Parses the frame at the start of `input`; a string says what is wrong.
 * Self-contained (no module-level names): the inflate workers run its source text.
 */
export function parseZstdFrame(input: Uint8Array): ZstdFrameInfo | string {
  const ZSTD_MAGIC = 0xfd2fb528;
  const BLOCK_RAW = 0;
  const BLOCK_RLE = 1;
  const BLOCK_COMPRESSED = 2;
  if (input.byteLength < 6) return 'input shorter than a zstd frame header';
  const view = new DataView(input.buffer, input.byteOffset, input.byteLength);
  if (view.getUint32(0, true) !== ZSTD_MAGIC) return 'no zstd frame magic';
  const descriptor = input[4] as number;
  const contentSizeFlag = descriptor >> 6;
  const singleSegment = (descriptor >> 5) & 1;
  const checksum = (descriptor >> 2) & 1;
  const dictionaryIdFlag = descriptor & 3;
  if (descriptor & 8) return 'reserved bit set in the zstd frame header';
  let at = 5;
  let windowSize = 0;
  if (!singleSegment) {
    const windowDescriptor = input[at++] as number;
    const windowBase = 2 ** (10 + (windowDescriptor >> 3));
    windowSize = windowBase + (windowBase / 8) * (windowDescriptor & 7);
  }
  at += dictionaryIdFlag === 3 ? 4 : dictionaryIdFlag;
  if (dictionaryIdFlag !== 0) return 'zstd frame needs a dictionary';
  const contentSizeBytes = contentSizeFlag === 0 ? singleSegment : 2 ** contentSizeFlag;
  let contentSize: number | undefined;
  if (at + contentSizeBytes > input.byteLength) return 'zstd frame header is truncated';
  if (contentSizeBytes > 0) {
    let value = 0;
    for (let i = contentSizeBytes - 1; i >= 0; i--) value = value * 256 + (input[at + i] as number);
    contentSize = contentSizeBytes === 2 ? value + 256 : value;
    at += contentSizeBytes;
  }
  if (singleSegment) windowSize = contentSize ?? 0;

  for (;;) {
    if (at + 3 > input.byteLength) return 'zstd frame is truncated (block header)';
    const header =
      (input[at] as number) | ((input[at + 1] as number) << 8) | ((input[at + 2] as number) << 16);
    at += 3;
    const last = header & 1;
    const type = (header >> 1) & 3;
    const size = header >>> 3;
    if (type === BLOCK_RLE) at += 1;
    else if (type === BLOCK_RAW || type === BLOCK_COMPRESSED) at += size;
    else return 'reserved zstd block type';
    if (at > input.byteLength) return 'zstd frame is truncated (block data)';
    if (last) break;
  }
  if (checksum) at += 4;
  if (at > input.byteLength) return 'zstd frame is truncated (checksum)';
  return { length: at, contentSize, windowSize };
}
