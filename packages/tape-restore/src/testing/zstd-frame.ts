/**
 * A small zstd frame encoder for fixtures (RFC 8878): runs of one byte become RLE
 * blocks, everything else Raw blocks. Real zstd decoders (zstd -d, node:zlib, fzstd)
 * read it; runny data gets smaller, random data does not. With or without the
 * content size field, since PBS writes both (pbs-tape.md §11.6).
 */
const ZSTD_MAGIC = 0xfd2fb528;
const MAX_BLOCK = 128 * 1024;
const MIN_RUN = 32;

export function encodeZstdFrame(data: Uint8Array, withContentSize: boolean): Buffer {
  const parts: Buffer[] = [];
  const header = Buffer.alloc(4 + 1 + 8);
  header.writeUInt32LE(ZSTD_MAGIC, 0);
  let headerLength = 5;
  if (withContentSize) {
    // FHD: Frame_Content_Size_flag 3 (8 bytes), Single_Segment_flag 1 (no window descriptor).
    header[4] = (3 << 6) | (1 << 5);
    header.writeBigUInt64LE(BigInt(data.byteLength), 5);
    headerLength = 13;
  } else {
    // FHD 0: no content size, a Window_Descriptor follows. Window = 8 MiB (exponent 13).
    header[4] = 0;
    header[5] = 13 << 3;
    headerLength = 6;
  }
  parts.push(header.subarray(0, headerLength));
  const blocks: Array<{ type: 0 | 1; start: number; end: number }> = [];
  let position = 0;
  let rawStart = 0;
  while (position < data.byteLength) {
    let run = 1;
    while (
      position + run < data.byteLength &&
      data[position + run] === data[position] &&
      run < MAX_BLOCK
    )
      run++;
    if (run >= MIN_RUN) {
      pushRaw(blocks, rawStart, position);
      blocks.push({ type: 1, start: position, end: position + run });
      position += run;
      rawStart = position;
    } else {
      position += run;
    }
  }
  pushRaw(blocks, rawStart, data.byteLength);
  if (blocks.length === 0) blocks.push({ type: 0, start: 0, end: 0 });
  blocks.forEach((block, index) => {
    const last = index === blocks.length - 1 ? 1 : 0;
    const size = block.end - block.start;
    const blockHeader = (size << 3) | (block.type << 1) | last;
    const head = Buffer.from([
      blockHeader & 0xff,
      (blockHeader >>> 8) & 0xff,
      (blockHeader >>> 16) & 0xff,
    ]);
    parts.push(head);
    parts.push(
      block.type === 1
        ? Buffer.from([data[block.start] ?? 0])
        : Buffer.from(data.subarray(block.start, block.end)),
    );
  });
  return Buffer.concat(parts);
}

function pushRaw(
  blocks: Array<{ type: 0 | 1; start: number; end: number }>,
  start: number,
  end: number,
) {
  for (let at = start; at < end; at += MAX_BLOCK) {
    blocks.push({ type: 0, start: at, end: Math.min(end, at + MAX_BLOCK) });
  }
}
