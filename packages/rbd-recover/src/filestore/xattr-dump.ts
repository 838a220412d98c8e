import { RbdRecoverError } from '../errors.js';

/**
 * Parses what `getfattr -d -m <pattern> -e hex --absolute-names` prints (LC_ALL=C):
 * blocks of `# file: <path>` then `name=0x<hex>` lines. getfattr quotes bytes that
 * are not printable, and `\`, as `\ooo` octal: paths come back as byte strings
 * (latin1, one character per byte), as the inventory keeps them.
 */
export function parseXattrDump(text: string, source: string): Map<string, Map<string, Buffer>> {
  const files = new Map<string, Map<string, Buffer>>();
  let current: Map<string, Buffer> | undefined;
  let lineNumber = 0;
  for (const line of text.split('\n')) {
    lineNumber++;
    if (line === '') continue;
    if (line.startsWith('# file: ')) {
      current = new Map();
      files.set(unquote(line.slice(8)), current);
      continue;
    }
    const equals = line.indexOf('=');
    if (current === undefined || equals < 0) {
      throw new RbdRecoverError('BAD_XATTR_DUMP', `line ${lineNumber} does not parse: "${line}"`, {
        path: source,
        structure: 'getfattr output',
      });
    }
    const name = unquote(line.slice(0, equals));
    const value = line.slice(equals + 1);
    current.set(
      Buffer.from(name, 'latin1').toString('utf8'),
      decodeValue(value, source, lineNumber),
    );
  }
  return files;
}

function decodeValue(value: string, source: string, lineNumber: number): Buffer {
  if (value === '' || value === '""') return Buffer.alloc(0);
  if (value.startsWith('0x') && /^[0-9a-fA-F]*$/.test(value.slice(2)) && value.length % 2 === 0) {
    return Buffer.from(value.slice(2), 'hex');
  }
  throw new RbdRecoverError('BAD_XATTR_DUMP', `line ${lineNumber}: value is not 0x<hex>`, {
    path: source,
    structure: 'getfattr output',
  });
}

/** `\ooo` → the byte; the result is a latin1 byte string. */
export function unquote(text: string): string {
  return text.replace(/\\([0-7]{3})/g, (_, octal: string) =>
    String.fromCharCode(Number.parseInt(octal, 8)),
  );
}
