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
  let backslash = text.indexOf('\\');
  if (backslash < 0) return text; // the common case, without a copy
  // Runs between escapes are copied whole: a string built character by character
  // (`rbd\udata.<id>.<16 hex>` is 30 of them) was most of `database`'s garbage.
  let out = '';
  let from = 0;
  while (backslash >= 0) {
    out += text.slice(from, backslash);
    const next = text[backslash + 1];
    if (next === '\\') out += '\\';
    else if (next === 's') out += '/';
    else if (next === 'u') out += '_';
    else if (next === 'n') out += '\0';
    else throw badName(fileName, `unknown escape "\\${next ?? ''}"`);
    from = backslash + 2;
    backslash = text.indexOf('\\', from);
  }
  return out + text.slice(from);
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
  const fields = splitObjectFileName(fileName);
  const { snapField } = fields;
  const object: ObjectName = {
    name: fields.name,
    key: fields.key,
    namespace: fields.namespace,
    snap: snapField === 'head' || snapField === 'snapdir' ? snapField : BigInt(`0x${snapField}`),
    hash: fields.hash,
    pool: fields.pool,
  };
  if (fields.generationField === undefined) return object;
  return {
    ...object,
    generation: BigInt(`0x${fields.generationField}`),
    shard: Number.parseInt(fields.shardField as string, 16),
  };
}

/** An object file name's fields, checked, with snap and hash still as the name spells them. */
export interface ObjectFileNameFields {
  readonly name: string;
  readonly key: string;
  readonly namespace: string;
  /** `head`, `snapdir` or lowercase hex (as `snapText` spells it when it has no leading 0). */
  readonly snapField: string;
  /** 8 uppercase hex digits (as `hashText` spells them). */
  readonly hashField: string;
  readonly hash: number;
  readonly pool: number;
  readonly generationField: string | undefined;
  readonly shardField: string | undefined;
}

/**
 * The checking half of parseObjectFileName, without BigInt or regular expressions:
 * `database` runs it on every file of an OSD (100,000 and more), where split('_') and
 * a regular expression per field were most of its time.
 */
export function splitObjectFileName(fileName: string): ObjectFileNameFields {
  let start = 0;
  let lead = '';
  if (fileName.charCodeAt(0) === BACKSLASH) {
    const next = fileName.charCodeAt(1);
    if (next === 0x64 /* d */) {
      lead = 'DIR_';
      start = 2;
    } else if (next === 0x2e /* . */) {
      lead = '.';
      start = 2;
    }
  }
  // Escaped components never hold a raw `_`: every one is a field separator.
  const cuts: number[] = [];
  for (let at = fileName.indexOf('_', start); at >= 0; at = fileName.indexOf('_', at + 1)) {
    cuts.push(at);
    if (cuts.length > 7) break;
  }
  if (cuts.length !== 5 && cuts.length !== 7) {
    const count = cuts.length > 7 ? fileName.slice(start).split('_').length - 1 : cuts.length;
    throw badName(fileName, `${count} field separators, expected 5 or 7`);
  }
  const field = (k: number) =>
    fileName.slice(k === 0 ? start : (cuts[k - 1] as number) + 1, cuts[k] ?? fileName.length);
  const name = lead + unescapeComponent(field(0), fileName);
  const key = unescapeComponent(field(1), fileName);
  const snapField = field(2);
  const hashField = field(3);
  const namespace = unescapeComponent(field(4), fileName);
  const poolField = field(5);
  if (snapField !== 'head' && snapField !== 'snapdir' && !isHex(snapField, 16, false)) {
    throw badName(fileName, `snap "${snapField}" is not head, snapdir or a hex snap id`);
  }
  if (hashField.length !== 8 || !isHex(hashField, 8, true)) {
    throw badName(fileName, `hash "${hashField}" is not 8 uppercase hex digits`);
  }
  let pool: number;
  if (poolField === 'none') pool = -1;
  else if (isHex(poolField, 13, false)) pool = Number.parseInt(poolField, 16);
  else throw badName(fileName, `pool "${poolField}" is not hex or none`);
  let generationField: string | undefined;
  let shardField: string | undefined;
  if (cuts.length === 7) {
    generationField = field(6);
    shardField = field(7);
    if (!isHex(generationField, 16, false) || !isHex(shardField, 2, false)) {
      throw badName(fileName, 'generation and shard are not hex');
    }
  }
  return {
    name,
    key,
    namespace,
    snapField,
    hashField,
    hash: Number.parseInt(hashField, 16),
    pool,
    generationField,
    shardField,
  };
}

const BACKSLASH = 0x5c;

/** 1 to `maxLength` hex digits, all uppercase or all lowercase. */
function isHex(text: string, maxLength: number, upper: boolean): boolean {
  if (text.length === 0 || text.length > maxLength) return false;
  const letterA = upper ? 0x41 : 0x61;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (!((c >= 0x30 && c <= 0x39) || (c >= letterA && c <= letterA + 5))) return false;
  }
  return true;
}
