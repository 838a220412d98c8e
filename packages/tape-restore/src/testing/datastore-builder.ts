import { createHash } from 'node:crypto';
import { mkdir, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  DynamicIndexEntry,
  DynamicIndexHeader,
  FixedIndexHeader,
  INDEX_HEADER_SIZE,
} from '../format/index-file.js';
import { DYNAMIC_SIZED_CHUNK_INDEX_1_0, FIXED_SIZED_CHUNK_INDEX_1_0 } from '../format/magics.js';
import {
  chunkDigest,
  type EncodeBlobOptions,
  encodeDataBlob,
  type FixtureKey,
} from './blob-encoder.js';

/** One archive of a fixture snapshot. */
export type FixtureArchive =
  /** A `.fidx` image cut into chunks of `chunkSize` (a power of two). */
  | {
      readonly name: string;
      readonly kind: 'fidx';
      readonly data: Uint8Array;
      readonly chunkSize: number;
    }
  /** A `.didx` stream cut at the given chunk lengths. */
  | { readonly name: string; readonly kind: 'didx'; readonly chunks: readonly Uint8Array[] }
  /** A `.blob` file with this plaintext (a config file). */
  | { readonly name: string; readonly kind: 'blob'; readonly data: Uint8Array };

export interface FixtureSnapshot {
  /** Namespace components; root = []. */
  readonly namespace?: readonly string[];
  readonly type: 'vm' | 'ct' | 'host';
  readonly id: string;
  /** `YYYY-MM-DDTHH:MM:SSZ` */
  readonly time: string;
  readonly archives: readonly FixtureArchive[];
  /** Encrypt chunks and blobs with this key (crypt-mode "encrypt"). */
  readonly key?: FixtureKey | undefined;
  /** Store chunks uncompressed (default: compress when smaller). */
  readonly uncompressed?: boolean;
  /** Makes chunk zstd frames (default: the built-in raw/RLE frame encoder). */
  readonly compressor?: (plaintext: Uint8Array) => Uint8Array;
  /** Owner of the group when it is created. Default `root@pam`. */
  readonly owner?: string;
  /** Extra `unprotected` members (verify_state, notes). */
  readonly unprotected?: Record<string, unknown>;
  /** Also write a client.log.blob. */
  readonly clientLog?: string;
}

/** The printed snapshot path of a fixture snapshot (`ns/a/vm/100/…`). */
export function fixtureSnapshotPath(snapshot: FixtureSnapshot): string {
  return `${(snapshot.namespace ?? []).map((n) => `ns/${n}/`).join('')}${snapshot.type}/${snapshot.id}/${snapshot.time}`;
}

/**
 * Writes fixture snapshots into a PBS datastore directory (§6): chunks under
 * `.chunks/XXXX/`, the index files, `index.json.blob` and the group's owner file.
 * Independent of the restore's code: it shares only the field tables.
 */
export class DatastoreBuilder {
  readonly path: string;

  constructor(path: string) {
    this.path = path;
  }

  async init(): Promise<this> {
    await mkdir(join(this.path, '.chunks'), { recursive: true });
    await writeFile(join(this.path, '.lock'), '');
    return this;
  }

  /** Writes a chunk (if absent) and returns its digest. */
  async addChunk(plaintext: Uint8Array, options: EncodeBlobOptions = {}): Promise<Buffer> {
    const digest = chunkDigest(plaintext, options.key);
    const hex = digest.toString('hex');
    const dir = join(this.path, '.chunks', hex.slice(0, 4));
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, hex), encodeDataBlob(plaintext, options), { flag: 'wx' }).catch(
      (error) => {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      },
    );
    return digest;
  }

  async addSnapshot(snapshot: FixtureSnapshot): Promise<string> {
    const relative = fixtureSnapshotPath(snapshot);
    const groupDir = join(this.path, relative, '..');
    const dir = join(this.path, relative);
    await mkdir(dir, { recursive: true });
    await writeFile(join(groupDir, 'owner'), `${snapshot.owner ?? 'root@pam'}\n`, {
      flag: 'wx',
    }).catch((error) => {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    });
    const chunkOptions: EncodeBlobOptions = {
      compress: !snapshot.uncompressed,
      key: snapshot.key,
      compressor: snapshot.compressor,
    };
    const files: Array<Record<string, unknown>> = [];
    const cryptMode = snapshot.key ? 'encrypt' : 'none';
    for (const archive of snapshot.archives) {
      if (archive.kind === 'blob') {
        const blob = encodeDataBlob(archive.data, chunkOptions);
        await writeFile(join(dir, archive.name), blob);
        files.push({
          filename: archive.name,
          'crypt-mode': cryptMode,
          size: blob.byteLength,
          csum: sha256(blob),
        });
      } else if (archive.kind === 'fidx') {
        const digests: Buffer[] = [];
        for (let at = 0; at < archive.data.byteLength; at += archive.chunkSize) {
          digests.push(
            await this.addChunk(archive.data.subarray(at, at + archive.chunkSize), chunkOptions),
          );
        }
        const csum = createHash('sha256');
        for (const d of digests) csum.update(d);
        const indexCsum = csum.digest();
        const file = Buffer.alloc(INDEX_HEADER_SIZE + 32 * digests.length);
        FixedIndexHeader.encode(
          {
            magic: FIXED_SIZED_CHUNK_INDEX_1_0,
            uuid: createHash('md5')
              .update(relative + archive.name)
              .digest(),
            ctime: 1_600_000_000n,
            indexCsum,
            size: BigInt(archive.data.byteLength),
            chunkSize: BigInt(archive.chunkSize),
            reserved: new Uint8Array(4016),
          },
          file,
        );
        for (const [i, d] of digests.entries()) file.set(d, INDEX_HEADER_SIZE + 32 * i);
        await writeFile(join(dir, archive.name), file);
        files.push({
          filename: archive.name,
          'crypt-mode': cryptMode,
          size: archive.data.byteLength,
          csum: indexCsum.toString('hex'),
        });
      } else {
        const file = Buffer.alloc(
          INDEX_HEADER_SIZE + DynamicIndexEntry.size * archive.chunks.length,
        );
        const csum = createHash('sha256');
        let end = 0n;
        for (const [i, chunk] of archive.chunks.entries()) {
          const digest = await this.addChunk(chunk, chunkOptions);
          end += BigInt(chunk.byteLength);
          const entry = DynamicIndexEntry.encode({ endOffset: end, digest });
          csum.update(entry);
          file.set(entry, INDEX_HEADER_SIZE + DynamicIndexEntry.size * i);
        }
        const indexCsum = csum.digest();
        DynamicIndexHeader.encode(
          {
            magic: DYNAMIC_SIZED_CHUNK_INDEX_1_0,
            uuid: createHash('md5')
              .update(relative + archive.name)
              .digest(),
            ctime: 1_600_000_000n,
            indexCsum,
            reserved: new Uint8Array(4032),
          },
          file,
        );
        await writeFile(join(dir, archive.name), file);
        files.push({
          filename: archive.name,
          'crypt-mode': cryptMode,
          size: Number(end),
          csum: indexCsum.toString('hex'),
        });
      }
    }
    const manifest = {
      'backup-type': snapshot.type,
      'backup-id': snapshot.id,
      'backup-time': Math.floor(Date.parse(snapshot.time) / 1000),
      files,
      signature: null,
      unprotected: {
        ...(snapshot.key ? { 'key-fingerprint': 'fixture' } : {}),
        ...snapshot.unprotected,
      },
    };
    // The manifest is compressed, never encrypted (§6).
    await writeFile(
      join(dir, 'index.json.blob'),
      encodeDataBlob(Buffer.from(JSON.stringify(manifest, null, 2))),
    );
    if (snapshot.clientLog !== undefined) {
      await writeFile(
        join(dir, 'client.log.blob'),
        encodeDataBlob(Buffer.from(snapshot.clientLog)),
      );
    }
    // Stable mtimes, so a restored copy can be compared with the original.
    const when = new Date(Date.parse(snapshot.time));
    for (const name of [
      'index.json.blob',
      ...snapshot.archives.map((a) => a.name),
      ...(snapshot.clientLog !== undefined ? ['client.log.blob'] : []),
    ]) {
      await utimes(join(dir, name), when, when);
    }
    return relative;
  }
}

function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}
