import { TapeRestoreError, type TapeRestoreErrorOptions } from '../errors.js';
import {
  PXAR_ENTRY,
  PXAR_ENTRY_V1,
  PXAR_FCAPS,
  PXAR_FILENAME,
  PXAR_GOODBYE,
  PXAR_MAX_FILENAME,
  PXAR_PAYLOAD,
  PXAR_QUOTA_PROJID,
  PXAR_STAT_SIZE,
  PXAR_STAT_V1_SIZE,
  PXAR_XATTR,
  PxarHeader,
  PxarStat,
  PxarStatV1,
  S_IFDIR,
  S_IFMT,
  S_IFREG,
} from '../format/pxar.js';
import { pxarHash } from '../pxar-hash.js';
import type { TapeFileReader } from '../tape/tape-file-reader.js';

/** A regular file of a flat pxar archive. */
export interface PxarFile {
  readonly name: string;
  readonly size: number;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly mtimeSecs: bigint;
  readonly mtimeNanos: number;
}

// §8: attribute items that may follow an ENTRY; consumed and ignored.
const ATTRIBUTES = new Set<bigint>([
  PXAR_XATTR,
  PXAR_FCAPS,
  PXAR_QUOTA_PROJID,
  ...[
    '__PROXMOX_FORMAT_ACL_USER__',
    '__PROXMOX_FORMAT_ACL_GROUP__',
    '__PROXMOX_FORMAT_ACL_GROUP_OBJ__',
    '__PROXMOX_FORMAT_ACL_DEFAULT__',
    '__PROXMOX_FORMAT_ACL_DEFAULT_USER__',
    '__PROXMOX_FORMAT_ACL_DEFAULT_GROUP__',
  ].map((name) => pxarHash(name)),
]);

const CONTENT_SLICE = 1 << 20;

/**
 * Sequentially decodes the flat pxar archive of a snapshot archive (§8): a root
 * directory, then regular files directly under it, then the root's goodbye table
 * (skipped unvalidated, as PBS's sequential decoder does). Anything else — a
 * sub-directory, a symlink, a device, a name with `/` or `..` — is BAD_PXAR. Each
 * file's content is handed to `onFile` as a stream of slices, which it must consume.
 */
export async function decodeFlatPxar(
  reader: TapeFileReader,
  onFile: (file: PxarFile, content: AsyncIterable<Buffer>) => Promise<void>,
): Promise<PxarFile[]> {
  const files: PxarFile[] = [];
  const names = new Set<string>();
  const fail = (why: string, where: TapeRestoreErrorOptions) =>
    new TapeRestoreError('BAD_PXAR', why, where);

  const readHeader = async () => {
    const where = reader.where('pxar item header');
    const header = PxarHeader.decode(await reader.readExact(PxarHeader.size, 'pxar item header'));
    if (header.fullSize < 16n) throw fail(`item full_size ${header.fullSize} is below 16`, where);
    return { ...header, contentSize: header.fullSize - 16n, where };
  };
  const readEntry = async (header: Awaited<ReturnType<typeof readHeader>>) => {
    const v2 = header.htype === PXAR_ENTRY;
    const size = v2 ? PXAR_STAT_SIZE : PXAR_STAT_V1_SIZE;
    if (header.contentSize !== BigInt(size)) {
      throw fail(`ENTRY holds ${header.contentSize} bytes, expected ${size}`, header.where);
    }
    const bytes = await reader.readExact(size, 'pxar stat');
    if (v2) {
      const stat = PxarStat.decode(bytes);
      return {
        mode: Number(stat.mode),
        uid: stat.uid,
        gid: stat.gid,
        mtimeSecs: stat.mtimeSecs,
        mtimeNanos: stat.mtimeNanos,
      };
    }
    const stat = PxarStatV1.decode(bytes);
    return {
      mode: Number(stat.mode),
      uid: stat.uid,
      gid: stat.gid,
      mtimeSecs: stat.mtimeNanos / 1_000_000_000n,
      mtimeNanos: Number(stat.mtimeNanos % 1_000_000_000n),
    };
  };
  const skipContent = async (header: Awaited<ReturnType<typeof readHeader>>, what: string) => {
    const size = Number(header.contentSize);
    if ((await reader.skip(size)) !== size) {
      throw new TapeRestoreError(
        'TRUNCATED',
        `the stream ends inside a pxar ${what}`,
        header.where,
      );
    }
  };

  const root = await readHeader();
  if (root.htype !== PXAR_ENTRY && root.htype !== PXAR_ENTRY_V1) {
    throw fail('the archive does not start with an ENTRY item', root.where);
  }
  const rootStat = await readEntry(root);
  if ((rootStat.mode & S_IFMT) !== S_IFDIR) {
    throw fail(
      `the root entry is not a directory (mode 0o${rootStat.mode.toString(8)})`,
      root.where,
    );
  }
  let item = await readHeader();
  while (ATTRIBUTES.has(item.htype)) {
    await skipContent(item, 'attribute');
    item = await readHeader();
  }
  for (;;) {
    if (item.htype === PXAR_GOODBYE) {
      await skipContent(item, 'goodbye table');
      return files;
    }
    if (item.htype !== PXAR_FILENAME) {
      throw fail(
        `expected a FILENAME or GOODBYE item, found type 0x${item.htype.toString(16)}`,
        item.where,
      );
    }
    if (item.contentSize < 2n || item.contentSize > BigInt(PXAR_MAX_FILENAME + 1)) {
      throw fail(`FILENAME of ${item.contentSize} bytes`, item.where);
    }
    const raw = await reader.readExact(Number(item.contentSize), 'pxar filename');
    const nul = raw.indexOf(0);
    if (nul !== raw.byteLength - 1)
      throw fail('the file name is not one NUL-terminated string', item.where);
    const name = raw.toString('utf8', 0, nul);
    if (name === '.' || name === '..' || name.includes('/')) {
      throw fail(`the file name "${name}" escapes the snapshot directory`, item.where);
    }
    if (names.has(name)) throw fail(`"${name}" appears twice`, item.where);
    names.add(name);
    const entryHeader = await readHeader();
    if (entryHeader.htype !== PXAR_ENTRY && entryHeader.htype !== PXAR_ENTRY_V1) {
      throw fail(`"${name}" is not followed by an ENTRY item`, entryHeader.where);
    }
    const stat = await readEntry(entryHeader);
    let next = await readHeader();
    while (ATTRIBUTES.has(next.htype)) {
      await skipContent(next, 'attribute');
      next = await readHeader();
    }
    if (next.htype !== PXAR_PAYLOAD || (stat.mode & S_IFMT) !== S_IFREG) {
      throw fail(
        `"${name}" is not a regular file (mode 0o${stat.mode.toString(8)})`,
        entryHeader.where,
      );
    }
    if (next.contentSize > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw fail(`"${name}" claims ${next.contentSize} bytes`, next.where);
    }
    const file: PxarFile = { name, size: Number(next.contentSize), ...stat };
    let remaining = file.size;
    const payloadWhere = next.where;
    async function* content(): AsyncIterable<Buffer> {
      while (remaining > 0) {
        const slice = Buffer.allocUnsafe(Math.min(CONTENT_SLICE, remaining));
        const got = await reader.read(slice);
        if (got < slice.byteLength) {
          throw new TapeRestoreError(
            'TRUNCATED',
            `the stream ends inside the content of "${name}"`,
            payloadWhere,
          );
        }
        remaining -= got;
        yield slice;
      }
    }
    await onFile(file, content());
    if (remaining > 0) {
      // The callback did not take everything: skip the rest so decoding stays in step.
      for await (const _ of content()) {
        /* drained */
      }
    }
    files.push(file);
    item = await readHeader();
  }
}
