import { createHash } from 'node:crypto';
import { RbdRecoverError } from '../errors.js';
import { hashText, type ObjectName, snapText } from './object-name.js';

/**
 * FileStore's object file names, collection versions 3 and 4 (LFNIndex,
 * lfn_generate_object_name_current / lfn_parse_object_name):
 * `<name>_<key>_<snap>_<HASH>_<namespace>_<pool>[_<gen>_<shard>]`, where name, key
 * and namespace escape `\`→`\\`, `/`→`\s`, `_`→`\u`, NUL→`\n`, and the name also
 * turns a leading `DIR_` into `\d` (else a leading `.` into `\.`).
 */

/** The longest file name FileStore writes as is; longer ones become `…_long` (LFNIndex). */
export const FILENAME_SHORT_LENGTH = 255;
/** Characters of the escaped name a long file name keeps (FILENAME_PREFIX_LEN). */
export const FILENAME_PREFIX_LENGTH = FILENAME_SHORT_LENGTH - 20 - 8; // 227
/** Where FileStore keeps the full name of a `_long` file (Pacific; older: user.cephos.lfn). */
export const LONG_NAME_XATTR = 'user.cephos.lfn3';

function escapeComponent(text: string): string {
  let out = '';
  for (const character of text) {
    if (character === '\\') out += '\\\\';
    else if (character === '/') out += '\\s';
    else if (character === '_') out += '\\u';
    else if (character === '\0') out += '\\n';
    else out += character;
  }
  return out;
}

/** The escaped name exactly as FileStore writes it (before the long-name rule). */
export function escapeObjectFileName(object: ObjectName): string {
  let name = object.name;
  let lead = '';
  if (name.startsWith('DIR_')) {
    lead = '\\d';
    name = name.slice(4);
  } else if (name.startsWith('.')) {
    lead = '\\.';
    name = name.slice(1);
  }
  let text = `${lead}${escapeComponent(name)}_${escapeComponent(object.key)}_${snapText(object.snap)}_${hashText(object.hash)}_${escapeComponent(object.namespace)}_${object.pool === -1 ? 'none' : object.pool.toString(16)}`;
  if (object.generation !== undefined || object.shard !== undefined) {
    text += `_${(object.generation ?? 0xffffffffffffffffn).toString(16)}_${(object.shard ?? 0xff).toString(16)}`;
  }
  return text;
}

/**
 * The file name FileStore gives an object, as a byte string (latin1: one character
 * per byte, as the inventory keeps paths): the escaped name, or for escaped names of
 * 255 bytes and more `<first 227 bytes>_<SHA-1 prefix>_<index>_long` (LFNIndex's
 * build_filename, which cuts bytes, even inside a UTF-8 sequence); the full name then
 * lives in the LONG_NAME_XATTR xattr.
 */
export function objectFileName(object: ObjectName, index = 0): string {
  const full = Buffer.from(escapeObjectFileName(object));
  if (full.byteLength < FILENAME_SHORT_LENGTH) return full.toString('latin1');
  return longFileName(full, index);
}

export function longFileName(escaped: Uint8Array, index = 0): string {
  const hash = createHash('sha1').update(escaped).digest('hex').slice(0, 20);
  const suffix = `_${hash}_${index}_long`;
  let prefixLength = FILENAME_PREFIX_LENGTH;
  while (prefixLength + suffix.length > FILENAME_SHORT_LENGTH && prefixLength > 0) prefixLength--;
  return `${Buffer.from(escaped.subarray(0, prefixLength)).toString('latin1')}${suffix}`;
}

/** True for a `…_<hash>_<index>_long` file, whose full name is in an xattr. */
export function isLongFileName(fileName: string): boolean {
  return /_[0-9a-f]{20}_\d+_long$/.test(fileName);
}

function unescapeComponent(text: string, fileName: string): string {
  if (!text.includes('\\')) return text; // the common case, without a copy
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const character = text[i] as string;
    if (character !== '\\') {
      out += character;
      continue;
    }
    const next = text[++i];
    if (next === '\\') out += '\\';
    else if (next === 's') out += '/';
    else if (next === 'u') out += '_';
    else if (next === 'n') out += '\0';
    else throw badName(fileName, `unknown escape "\\${next ?? ''}"`);
  }
  return out;
}

function badName(fileName: string, reason: string): RbdRecoverError {
  return new RbdRecoverError(
    'BAD_NAME',
    `"${fileName}" is not a FileStore object file name: ${reason}`,
    {
      structure: 'object file name',
    },
  );
}

/**
 * Parses an object file name (or the full name from a long name's xattr). Throws
 * BAD_NAME for anything that is not an object file (callers skip those with a report).
 */
export function parseObjectFileName(fileName: string): ObjectName {
  let rest = fileName;
  let name = '';
  if (rest.startsWith('\\d')) {
    name = 'DIR_';
    rest = rest.slice(2);
  } else if (rest.startsWith('\\.')) {
    name = '.';
    rest = rest.slice(2);
  }
  // Escaped components never hold a raw `_`: split on every one.
  const fields = rest.split('_');
  if (fields.length !== 6 && fields.length !== 8) {
    throw badName(fileName, `${fields.length - 1} field separators, expected 5 or 7`);
  }
  const [nameText, keyText, snapField, hashField, namespaceText, poolField, genField, shardField] =
    fields as [string, string, string, string, string, string, string?, string?];
  name += unescapeComponent(nameText, fileName);
  const key = unescapeComponent(keyText, fileName);
  const namespace = unescapeComponent(namespaceText, fileName);
  let snap: ObjectName['snap'];
  if (snapField === 'head' || snapField === 'snapdir') snap = snapField;
  else if (/^[0-9a-f]{1,16}$/.test(snapField)) snap = BigInt(`0x${snapField}`);
  else throw badName(fileName, `snap "${snapField}" is not head, snapdir or a hex snap id`);
  if (!/^[0-9A-F]{8}$/.test(hashField)) {
    throw badName(fileName, `hash "${hashField}" is not 8 uppercase hex digits`);
  }
  let pool: number;
  if (poolField === 'none') pool = -1;
  else if (/^[0-9a-f]{1,13}$/.test(poolField)) pool = Number.parseInt(poolField, 16);
  else throw badName(fileName, `pool "${poolField}" is not hex or none`);
  const object: ObjectName = {
    name,
    key,
    namespace,
    snap,
    hash: Number.parseInt(hashField, 16),
    pool,
  };
  if (genField === undefined) return object;
  if (!/^[0-9a-f]{1,16}$/.test(genField) || !/^[0-9a-f]{1,2}$/.test(shardField ?? '')) {
    throw badName(fileName, 'generation and shard are not hex');
  }
  return {
    ...object,
    generation: BigInt(`0x${genField}`),
    shard: Number.parseInt(shardField as string, 16),
  };
}
