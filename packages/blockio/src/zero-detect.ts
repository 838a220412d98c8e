import { zeroBuffer } from './block-device.js';

const COMPARE_CHUNK = 1 << 20;

/** True when every byte is zero. Uses memcmp against a shared zero buffer (fast). */
export function isAllZero(bytes: Uint8Array): boolean {
  return isZeroRange(bytes, 0, bytes.byteLength);
}

/** True when bytes[start, end) are all zero, without allocating a view. */
export function isZeroRange(bytes: Uint8Array, start: number, end: number): boolean {
  // Data blocks almost always have a non-zero first or last byte: skip the memcmp call.
  if (end <= start) return true;
  if (bytes[start] !== 0 || bytes[end - 1] !== 0) return false;
  const view = Buffer.isBuffer(bytes)
    ? bytes
    : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let from = start; from < end; from += COMPARE_CHUNK) {
    const to = Math.min(end, from + COMPARE_CHUNK);
    if (view.compare(zeroBuffer(to - from), 0, to - from, from, to) !== 0) return false;
  }
  return true;
}

/**
 * Whether any `granularity`-aligned block of `bytes` (which starts at device offset
 * `offset`) might be all zero: its first and last bytes are zero. False means every
 * block surely holds data, and the caller can write the whole buffer at once. A
 * tight loop of two byte reads per block, so it costs next to nothing.
 */
export function hasZeroCandidate(bytes: Uint8Array, offset: number, granularity: number): boolean {
  const length = bytes.byteLength;
  let start = 0;
  while (start < length) {
    const end = Math.min(length, start + granularity - ((offset + start) % granularity));
    if (bytes[start] === 0 && bytes[end - 1] === 0) return true;
    start = end;
  }
  return false;
}
