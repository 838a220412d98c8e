import { RbdRecoverError } from '../errors.js';

/**
 * Reads a tar stream (what `tar -cf -` writes, GNU and ustar headers) and hands each
 * regular file's bytes to a sink as they arrive: one stream carries many objects,
 * in bounded memory (the next chunk is pulled only when the sink has taken this one).
 */
export interface TarSink {
  /** `chunk` is valid only until the returned promise settles: a sink copies what it keeps. */
  write(chunk: Buffer): Promise<void> | void;
  end(): Promise<void> | void;
}

export type TarEntryHandler = (path: string, size: number) => TarSink | Promise<TarSink>;

const BLOCK = 512;

export async function readTarStream(
  source: AsyncIterable<Buffer>,
  onEntry: TarEntryHandler,
  where: { host?: string; path?: string },
): Promise<void> {
  let header = Buffer.alloc(0);
  let longName: Buffer[] | undefined;
  let pendingLongName: string | undefined;
  // The current entry: bytes of data left, padding left, and where data goes.
  let dataLeft = 0;
  let paddingLeft = 0;
  let sink: TarSink | undefined;
  let ended = false;
  const fail = (message: string) =>
    new RbdRecoverError('REMOTE_FAILED', `tar stream: ${message}`, {
      ...where,
      structure: 'tar stream',
    });

  const finishEntry = async () => {
    if (sink) await sink.end();
    sink = undefined;
    if (longName !== undefined) {
      pendingLongName = Buffer.concat(longName).toString('latin1').replace(/\0+$/, '');
      longName = undefined;
    }
  };

  for await (const chunk of source) {
    let at = 0;
    while (at < chunk.byteLength) {
      if (ended) break; // the record padding after the end marker: drained, not cut
      if (dataLeft > 0) {
        const take = Math.min(dataLeft, chunk.byteLength - at);
        const piece = chunk.subarray(at, at + take);
        if (longName) longName.push(Buffer.from(piece));
        else if (sink) await sink.write(piece);
        dataLeft -= take;
        at += take;
        if (dataLeft === 0) {
          if (paddingLeft === 0) await finishEntry();
        }
        continue;
      }
      if (paddingLeft > 0) {
        const take = Math.min(paddingLeft, chunk.byteLength - at);
        paddingLeft -= take;
        at += take;
        if (paddingLeft === 0) await finishEntry();
        continue;
      }
      const take = Math.min(BLOCK - header.byteLength, chunk.byteLength - at);
      header = Buffer.concat([header, chunk.subarray(at, at + take)]);
      at += take;
      if (header.byteLength < BLOCK) continue;
      const block = header;
      header = Buffer.alloc(0);
      if (block.every((byte) => byte === 0)) {
        ended = true;
        continue;
      }
      const type = String.fromCharCode(block[156] as number);
      const size = parseSize(block, fail);
      const name =
        pendingLongName ??
        (() => {
          const base = cString(block, 0, 100);
          const magic = block.subarray(257, 262).toString('latin1');
          const prefix = magic === 'ustar' ? cString(block, 345, 155) : '';
          return prefix === '' ? base : `${prefix}/${base}`;
        })();
      dataLeft = size;
      paddingLeft = (BLOCK - (size % BLOCK)) % BLOCK;
      if (type === 'L') {
        longName = [];
      } else {
        pendingLongName = undefined;
        if (type === '0' || type === '\0' || type === '7') sink = await onEntry(name, size);
      }
      if (size === 0) await finishEntry();
    }
  }
  // A stream cut inside an entry: that entry is NOT complete (its sink never ends).
  if (dataLeft > 0 || paddingLeft > 0 || header.byteLength > 0) {
    throw fail('ended in the middle of an entry');
  }
}

function cString(block: Buffer, offset: number, length: number): string {
  const field = block.subarray(offset, offset + length);
  const end = field.indexOf(0);
  return field.subarray(0, end < 0 ? length : end).toString('latin1');
}

function parseSize(block: Buffer, fail: (message: string) => Error): number {
  const field = block.subarray(124, 136);
  if ((field[0] as number) & 0x80) {
    // GNU base-256 for sizes of 8 GiB and more.
    let value = 0n;
    for (let i = 1; i < 12; i++) value = (value << 8n) | BigInt(field[i] as number);
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw fail('entry size beyond 2^53 - 1');
    return Number(value);
  }
  const text = field
    .toString('latin1')
    .replace(/[\0 ]+$/, '')
    .trim();
  if (!/^[0-7]*$/.test(text)) throw fail(`bad size field "${text}"`);
  return text === '' ? 0 : Number.parseInt(text, 8);
}
