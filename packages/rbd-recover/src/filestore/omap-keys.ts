import { RbdRecoverError } from '../errors.js';
import { hashText, type ObjectName, snapText } from './object-name.js';

/**
 * How FileStore's DBObjectMap lays out omap in its LevelDB/RocksDB store: raw key =
 * `<prefix>` NUL `<key>`. `_HOBJTOSEQ_` maps an object key to a header whose bytes
 * 6..13 are the object's omap sequence number; the object's omap is then under
 * `_USER_<seq, 16 decimal digits>_USER_`, spilled xattrs under `…_AXATTR_`.
 */
export const HOBJ_TO_SEQ = '_HOBJTOSEQ_';

function escapeOmapComponent(text: string): string {
  return text.replaceAll('%', '%p').replaceAll('.', '%e').replaceAll('_', '%u');
}

function unescapeOmapComponent(text: string, key: string): string {
  return text.replace(/%(.?)/g, (_, code: string) => {
    if (code === 'p') return '%';
    if (code === 'e') return '.';
    if (code === 'u') return '_';
    throw new RbdRecoverError('BAD_OMAP', `bad escape "%${code}" in omap object key "${key}"`, {
      structure: '_HOBJTOSEQ_ key',
    });
  });
}

/** DBObjectMap::ghobject_key. */
export function omapObjectKey(object: ObjectName): string {
  let key = `${escapeOmapComponent(object.name)}.${escapeOmapComponent(object.key)}.${escapeOmapComponent(object.namespace)}.${snapText(object.snap)}.${object.pool === -1 ? 'none' : object.pool.toString(16)}.${hashText(object.hash)}`;
  if (object.generation !== undefined || object.shard !== undefined) {
    key += `.${(object.generation ?? 0xffffffffffffffffn).toString(16)}.${(object.shard ?? 0xff).toString(16)}`;
  }
  return key;
}

/** The inverse of omapObjectKey; undefined for keys that are not object keys. */
export function parseOmapObjectKey(key: string): ObjectName | undefined {
  const fields = key.split('.');
  if (fields.length !== 6 && fields.length !== 8) return undefined;
  const [name, locator, namespace, snapField, poolField, hashField] = fields as [
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  if (!/^[0-9A-F]{8}$/.test(hashField)) return undefined;
  let snap: ObjectName['snap'];
  if (snapField === 'head' || snapField === 'snapdir') snap = snapField;
  else if (/^[0-9a-f]{1,16}$/.test(snapField)) snap = BigInt(`0x${snapField}`);
  else return undefined;
  let pool: number;
  if (poolField === 'none') pool = -1;
  else if (/^[0-9a-f]{1,13}$/.test(poolField)) pool = Number.parseInt(poolField, 16);
  else return undefined;
  return {
    name: unescapeOmapComponent(name, key),
    key: unescapeOmapComponent(locator, key),
    namespace: unescapeOmapComponent(namespace, key),
    snap,
    hash: Number.parseInt(hashField, 16),
    pool,
  };
}

/** `<prefix>\0<key>` as bytes. */
export function rawKey(prefix: string, key: string | Uint8Array): Buffer {
  return Buffer.concat([Buffer.from(prefix), Buffer.from([0]), Buffer.from(key)]);
}

export function userPrefix(seq: bigint): string {
  return `_USER_${seq.toString().padStart(16, '0')}_USER_`;
}

export function xattrPrefix(seq: bigint): string {
  return `_USER_${seq.toString().padStart(16, '0')}_AXATTR_`;
}

/** The omap sequence number in a `_HOBJTOSEQ_` header value (bytes 6..13, after the envelope). */
export function headerSeq(value: Uint8Array, where: string): bigint {
  if (value.byteLength < 14) {
    throw new RbdRecoverError(
      'BAD_OMAP',
      `a ${value.byteLength}-byte _HOBJTOSEQ_ header for ${where}; it needs 14`,
      { structure: '_HOBJTOSEQ_ header' },
    );
  }
  return Buffer.from(value.buffer, value.byteOffset, value.byteLength).readBigUInt64LE(6);
}
