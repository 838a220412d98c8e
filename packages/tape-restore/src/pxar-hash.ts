import { PXAR_HASH_KEY_0, PXAR_HASH_KEY_1 } from './format/pxar.js';
import { siphash24 } from './siphash.js';

/** pxar's hash of a name (item types, goodbye table entries), §8. */
export function pxarHash(name: Uint8Array | string): bigint {
  const bytes = typeof name === 'string' ? Buffer.from(name, 'utf8') : name;
  return siphash24(PXAR_HASH_KEY_0, PXAR_HASH_KEY_1, bytes);
}
