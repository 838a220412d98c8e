/** Deterministic test data: a seeded generator (mulberry32) and key/value makers. */
export function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const keyOf = (index: number): string => `key-${String(index).padStart(6, '0')}`;

/** A value of `length` bytes: compressible text (snappy shrinks it) with a varying head. */
export function makeValue(label: string, length: number): Buffer {
  const base = Buffer.from(`${label}:`);
  const out = Buffer.alloc(length);
  for (let i = 0; i < length; i++)
    out[i] = i < base.length ? (base[i] as number) : 97 + ((i * 7) % 13);
  return out;
}

/** A model of the database: what a correct reader must return. */
export class Model {
  readonly map = new Map<string, string>();

  put(keyHex: string, valueHex: string): void {
    this.map.set(keyHex, valueHex);
  }

  delete(keyHex: string): void {
    this.map.delete(keyHex);
  }

  /** [start, end) in hex key order (bytewise, as hex preserves it). */
  deleteRange(startHex: string, endHex: string): void {
    for (const key of [...this.map.keys()]) {
      if (
        Buffer.compare(Buffer.from(key, 'hex'), Buffer.from(startHex, 'hex')) >= 0 &&
        Buffer.compare(Buffer.from(key, 'hex'), Buffer.from(endHex, 'hex')) < 0
      ) {
        this.map.delete(key);
      }
    }
  }

  listing(): Array<[string, string]> {
    return [...this.map.entries()].sort((a, b) =>
      Buffer.compare(Buffer.from(a[0], 'hex'), Buffer.from(b[0], 'hex')),
    );
  }
}
