import { zeroBuffer } from './block-device.js';

const COMPARE_CHUNK = 1 << 20;

/** True when every byte is zero. Uses memcmp against a shared zero buffer (fast). */
export function isAllZero(bytes: Uint8Array): boolean {
  const length = bytes.byteLength;
  // Data blocks almost always have a non-zero first or last byte: skip the memcmp call.
  if (length === 0) return true;
  if (bytes[0] !== 0 || bytes[length - 1] !== 0) return false;
  const view = Buffer.isBuffer(bytes)
    ? bytes
    : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let start = 0; start < length; start += COMPARE_CHUNK) {
    const end = Math.min(length, start + COMPARE_CHUNK);
    if (zeroBuffer(end - start).compare(view, start, end) !== 0) return false;
  }
  return true;
}
