import {
  PXAR_ENTRY,
  PXAR_FILENAME,
  PXAR_GOODBYE,
  PXAR_GOODBYE_TAIL_MARKER,
  PXAR_PAYLOAD,
  PxarGoodbyeItem,
  PxarHeader,
  PxarStat,
  S_IFDIR,
  S_IFREG,
} from '../format/pxar.js';
import { pxarHash } from '../pxar-hash.js';

export interface PxarWriterFile {
  readonly name: string;
  readonly data: Uint8Array;
  readonly mode?: number;
  readonly uid?: number;
  readonly gid?: number;
  readonly mtimeSecs?: bigint;
  readonly mtimeNanos?: number;
}

const header = (htype: bigint, contentSize: number) =>
  PxarHeader.encode({ htype, fullSize: BigInt(16 + contentSize) });

const stat = (mode: number, uid: number, gid: number, secs: bigint, nanos: number) =>
  PxarStat.encode({
    mode: BigInt(mode),
    flags: 0n,
    uid,
    gid,
    mtimeSecs: secs,
    mtimeNanos: nanos,
    padding: new Uint8Array(4),
  });

/**
 * The flat pxar archive PBS writes into a snapshot archive (§8): root directory
 * (mode dir|0664, uid/gid 0, mtime 0), one FILENAME/ENTRY/PAYLOAD per file in the
 * given order, then the root's goodbye table laid out as pxar's binary search tree.
 */
export function encodeFlatPxar(files: readonly PxarWriterFile[]): Buffer {
  const parts: Uint8Array[] = [];
  let position = 0;
  const push = (bytes: Uint8Array) => {
    parts.push(bytes);
    position += bytes.byteLength;
  };
  push(header(PXAR_ENTRY, 40));
  push(stat(S_IFDIR | 0o664, 0, 0, 0n, 0));
  const children: Array<{ hash: bigint; start: number; end: number }> = [];
  for (const file of files) {
    const start = position;
    const name = Buffer.from(`${file.name}\0`, 'utf8');
    push(header(PXAR_FILENAME, name.byteLength));
    push(name);
    push(header(PXAR_ENTRY, 40));
    push(
      stat(
        file.mode ?? S_IFREG | 0o644,
        file.uid ?? 0,
        file.gid ?? 0,
        file.mtimeSecs ?? 0n,
        file.mtimeNanos ?? 0,
      ),
    );
    push(header(PXAR_PAYLOAD, file.data.byteLength));
    push(file.data);
    children.push({ hash: pxarHash(file.name), start, end: position });
  }
  const goodbyeStart = position;
  const sorted = [...children].sort((a, b) => (a.hash < b.hash ? -1 : a.hash > b.hash ? 1 : 0));
  const tree = goodbyeOrder(sorted.length).map((index) => sorted[index] as (typeof sorted)[number]);
  const itemCount = tree.length + 1;
  push(header(PXAR_GOODBYE, 24 * itemCount));
  for (const child of tree) {
    push(
      PxarGoodbyeItem.encode({
        hash: child.hash,
        offset: BigInt(goodbyeStart - child.start),
        size: BigInt(child.end - child.start),
      }),
    );
  }
  push(
    PxarGoodbyeItem.encode({
      hash: PXAR_GOODBYE_TAIL_MARKER,
      offset: BigInt(goodbyeStart),
      size: BigInt(16 + 24 * itemCount),
    }),
  );
  return Buffer.concat(parts);
}

/** §8: slot -> sorted index of pxar's implicit binary search tree. */
export function goodbyeOrder(n: number): number[] {
  const slots = new Array<number>(n);
  if (n === 0) return [];
  const place = (count: number, offset: number, exponent: number, slot: number) => {
    const p = 2 ** exponent;
    const t = p + p / 2 - 1;
    const m = count > t ? p - 1 : p - 1 - (t - count);
    slots[slot] = offset + m;
    if (m > 0) place(m, offset, exponent - 1, 2 * slot + 1);
    if (m + 1 < count) place(count - m - 1, offset + m + 1, exponent - 1, 2 * slot + 2);
  };
  place(n, 0, Math.floor(Math.log2(n)), 0);
  return slots;
}
