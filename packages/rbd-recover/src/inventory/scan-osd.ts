import { mkdir, mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, posix } from 'node:path';
import { throwIfAborted } from '@x/blockio';
import { RbdRecoverError } from '../errors.js';
import {
  isLongFileName,
  LONG_NAME_XATTR,
  type ObjectFileNameFields,
  splitObjectFileName,
} from '../filestore/file-name.js';
import { snapText } from '../filestore/object-name.js';
import {
  HOBJ_TO_SEQ,
  headerSeq,
  parseOmapObjectKey,
  rawKey,
  userPrefix,
  xattrPrefix,
} from '../filestore/omap-keys.js';
import { decodeOsdMapPools } from '../format/osdmap.js';
import type { OsdLocation } from '../hosts-file.js';
import type { KvStore, KvStoreOpener } from '../kv.js';
import {
  type CommandOptions,
  findRunningOsd,
  listFileBatches,
  listFiles,
  readSmallFile,
  readXattrs,
  streamFiles,
} from '../transport/osd-commands.js';
import type { HostTransport } from '../transport/transport.js';
import {
  INVENTORY_FORMAT,
  INVENTORY_VERSION,
  type InventoryObject,
  type ObjectOmap,
  type OsdInventory,
  objectId,
  type UnparsedFile,
} from './inventory-types.js';
import { METADATA_DATA_LIMIT, wantsData, wantsOmap } from './metadata-objects.js';

export interface ScanOsdOptions extends CommandOptions {
  openKvStore: KvStoreOpener;
  /** Called with the number of files listed so far. */
  onFiles?: ((count: number) => void) | undefined;
}

const PG_COLLECTION = /^(\d+)\.([0-9a-f]+)_head$/;
const OSD_MAP_FILE = /^osdmap\.(\d+)__/;

/**
 * Reads one OSD: refuses if its ceph-osd runs, lists `current/` in one pass, parses
 * every object file name (long names through their xattr), reads PG epochs and RBD
 * metadata omap from the KV store (fetched to a temporary copy over SSH), and the
 * small metadata objects and the newest OSD map.
 */
export async function scanOsd(
  transport: HostTransport,
  osd: OsdLocation,
  index: number,
  options: ScanOsdOptions,
): Promise<OsdInventory> {
  const { signal } = options;
  const running = await findRunningOsd(transport, osd.dataPath, options);
  if (running) {
    throw new RbdRecoverError(
      'OSD_RUNNING',
      `ceph-osd (pid ${running.pid}: ${running.commandLine}) is running on this data path; stop it (and flush its journal with ceph-osd --flush-journal --no-mon-config) before reading the OSD`,
      { host: osd.host, path: osd.dataPath },
    );
  }
  const current = posix.join(osd.dataPath, 'current');
  const objects: InventoryObject[] = [];
  const unparsed: UnparsedFile[] = [];
  const problems: string[] = [];
  const pgs = new Set<string>();
  const longNames: Array<{ path: string; pg: string; size: number }> = [];
  let newestMap: { epoch: number; path: string } | undefined;
  let listed = 0;

  const addObject = (object: ObjectFileNameFields, pg: string, path: string, size: number) => {
    const snap = object.snapField;
    if (object.name === '' && snap === 'head') {
      pgs.add(pg);
      return;
    }
    objects.push({
      pg,
      path,
      size,
      name: object.name,
      key: object.key,
      namespace: object.namespace,
      // As snapText spells a snap id: no leading zeros (FileStore writes none).
      snap: snap.length > 1 && snap.charCodeAt(0) === 0x30 ? snapText(BigInt(`0x${snap}`)) : snap,
      hash: object.hashField,
      pool: object.pool,
    });
  };
  // Collection (`1.7_head`) → its PG (`1.7`), or null for meta, omap and temp ones.
  const collections = new Map<string, string | null>();
  const pgOfCollection = (collection: string): string | null => {
    let pg = collections.get(collection);
    if (pg === undefined) {
      const match = PG_COLLECTION.exec(collection);
      pg = match ? `${match[1]}.${match[2]}` : null;
      collections.set(collection, pg);
      if (pg !== null) pgs.add(pg);
    }
    return pg;
  };

  for await (const batch of listFileBatches(transport, current, options)) {
    listed += batch.length;
    options.onFiles?.(listed);
    throwIfAborted(signal);
    for (const file of batch) {
      const slash = file.path.indexOf('/');
      if (slash < 0) continue; // commit_op_seq, nosnap
      const collection = file.path.slice(0, slash);
      const base = file.path.slice(file.path.lastIndexOf('/') + 1);
      if (collection === 'meta') {
        const map = OSD_MAP_FILE.exec(base);
        if (map && (newestMap === undefined || Number(map[1]) > newestMap.epoch)) {
          newestMap = { epoch: Number(map[1]), path: file.path };
        }
        continue;
      }
      const pg = pgOfCollection(collection);
      if (pg === null) continue; // omap/, <pg>_TEMP
      // Names are UTF-8 bytes; most are ASCII, which needs no decoding.
      const name = /[\x80-\xff]/.test(base) ? Buffer.from(base, 'latin1').toString('utf8') : base;
      if (name.endsWith('_long') && isLongFileName(name)) {
        longNames.push({ path: file.path, pg, size: file.size });
        continue;
      }
      try {
        addObject(splitObjectFileName(name), pg, file.path, file.size);
      } catch (error) {
        unparsed.push({ path: file.path, reason: (error as Error).message });
      }
    }
  }
  options.onFiles?.(listed);

  if (longNames.length > 0) {
    const xattrs = await readXattrs(
      transport,
      current,
      longNames.map((entry) => entry.path),
      '^user\\.cephos\\.lfn',
      options,
    );
    for (const entry of longNames) {
      const attributes = xattrs.get(entry.path);
      const full =
        attributes?.get(LONG_NAME_XATTR) ??
        [...(attributes?.entries() ?? [])].find(([key]) => key.startsWith('user.cephos.lfn'))?.[1];
      if (full === undefined) {
        unparsed.push({
          path: entry.path,
          reason: `a long name without a ${LONG_NAME_XATTR} xattr`,
        });
        continue;
      }
      try {
        addObject(
          splitObjectFileName(full.toString('utf8').replace(/\0+$/, '')),
          entry.pg,
          entry.path,
          entry.size,
        );
      } catch (error) {
        unparsed.push({ path: entry.path, reason: (error as Error).message });
      }
    }
  }

  const omapResult = await readOmap(transport, osd, objects, options, problems);

  const data: Record<string, string> = {};
  const small = objects.filter(
    (object) =>
      object.snap === 'head' && wantsData(object.name) && object.size <= METADATA_DATA_LIMIT,
  );
  if (small.length > 0) {
    const byPath = new Map(small.map((object) => [object.path, object]));
    const { missing } = await streamFiles(
      transport,
      current,
      small.map((object) => object.path),
      (path) => {
        const chunks: Buffer[] = [];
        return {
          write: (chunk) => {
            chunks.push(Buffer.from(chunk));
          },
          end: () => {
            const object = byPath.get(path);
            if (object) data[objectId(object)] = Buffer.concat(chunks).toString('hex');
          },
        };
      },
      options,
    );
    for (const path of missing) problems.push(`metadata object ${path} could not be read`);
  }

  let osdMap: OsdInventory['osdMap'];
  if (newestMap) {
    const path = posix.join(current, newestMap.path);
    const bytes = await readSmallFile(transport, path, options);
    if (bytes) {
      try {
        const decoded = decodeOsdMapPools(bytes, path);
        osdMap = {
          epoch: decoded.epoch,
          pools: Object.fromEntries([...decoded.names].map(([id, name]) => [String(id), name])),
        };
      } catch (error) {
        problems.push(`OSD map ${path}: ${(error as Error).message}`);
      }
    }
  }
  let whoami: string | undefined;
  const whoamiBytes = await readSmallFile(transport, posix.join(osd.dataPath, 'whoami'), options);
  if (whoamiBytes) whoami = whoamiBytes.toString('utf8').trim();

  return {
    format: INVENTORY_FORMAT,
    version: INVENTORY_VERSION,
    osd,
    index,
    whoami,
    kvBackend: omapResult.kind,
    pgs: [...pgs].sort(comparePg),
    pgEpochs: omapResult.pgEpochs,
    objects,
    unparsed,
    omap: omapResult.omap,
    data,
    spilledSnapSets: omapResult.spilledSnapSets,
    osdMap,
    problems,
    createdAt: new Date().toISOString(),
  };
}

export function comparePg(a: string, b: string): number {
  const [poolA = 0, seedA = 0] = a
    .split('.')
    .map((part, i) => (i === 0 ? Number(part) : Number.parseInt(part, 16)));
  const [poolB = 0, seedB = 0] = b
    .split('.')
    .map((part, i) => (i === 0 ? Number(part) : Number.parseInt(part, 16)));
  return poolA - poolB || seedA - seedB;
}

interface OmapResult {
  kind: 'leveldb' | 'rocksdb' | undefined;
  pgEpochs: Record<string, number>;
  omap: Record<string, ObjectOmap>;
  spilledSnapSets: Record<string, string>;
}

async function readOmap(
  transport: HostTransport,
  osd: OsdLocation,
  objects: readonly InventoryObject[],
  options: ScanOsdOptions,
  problems: string[],
): Promise<OmapResult> {
  const omapDirectory = posix.join(osd.dataPath, 'current', 'omap');
  let local = omapDirectory;
  let scratch: string | undefined;
  if (transport.host !== 'local') {
    scratch = await mkdtemp(join(tmpdir(), 'rbd-recover-omap-'));
    local = scratch;
    await fetchDirectory(transport, omapDirectory, scratch, options);
  }
  let store: KvStore;
  try {
    store = await options.openKvStore(local, { signal: options.signal });
  } catch (error) {
    if (scratch) await rm(scratch, { recursive: true, force: true });
    problems.push(`omap store ${osd.host}:${omapDirectory}: ${(error as Error).message}`);
    return { kind: undefined, pgEpochs: {}, omap: {}, spilledSnapSets: {} };
  }
  try {
    // Only the few objects whose omap is kept need their PG: a map of every object's
    // id cost 100,000 strings.
    let pgOf: Map<string, string> | undefined;
    const pgOfObject = (id: string) => {
      pgOf ??= new Map(
        objects
          .filter((object) => object.snap === 'head' && wantsOmap(object.name))
          .map((object) => [objectId(object), object.pg]),
      );
      return pgOf.get(id);
    };
    const pgEpochs: Record<string, number> = {};
    const omap: Record<string, ObjectOmap> = {};
    const spilledSnapSets: Record<string, string> = {};
    const prefix = rawKey(HOBJ_TO_SEQ, '');
    for await (const { key, value } of store.entries({ prefix })) {
      const object = parseOmapObjectKey(key.subarray(prefix.byteLength).toString('utf8'));
      if (object === undefined || object.pool < 0) continue;
      const where = `${osd.host}:${omapDirectory} ${HOBJ_TO_SEQ} ${key.subarray(prefix.byteLength).toString('utf8')}`;
      let seq: bigint;
      try {
        seq = headerSeq(value, where);
      } catch (error) {
        problems.push((error as Error).message);
        continue;
      }
      if (object.name === '' && object.snap === 'head') {
        const pg = `${object.pool}.${object.hash.toString(16)}`;
        const epoch = await store.get(rawKey(userPrefix(seq), '_epoch'));
        if (epoch && epoch.byteLength >= 4) pgEpochs[pg] = epoch.readUInt32LE(0);
        else problems.push(`pg ${pg}: no _epoch in its pgmeta omap`);
        continue;
      }
      const id = objectId({ ...object, snap: snapText(object.snap) });
      if (wantsOmap(object.name) && object.snap === 'head') {
        const entries: Record<string, string> = {};
        const userKeys = rawKey(userPrefix(seq), '');
        for await (const entry of store.entries({ prefix: userKeys })) {
          entries[entry.key.subarray(userKeys.byteLength).toString('hex')] =
            entry.value.toString('hex');
        }
        omap[id] = {
          pg: pgOfObject(id),
          name: object.name,
          namespace: object.namespace,
          pool: object.pool,
          entries,
        };
      }
      if (object.snap === 'head' || object.snap === 'snapdir') {
        const spilled = await store.get(rawKey(xattrPrefix(seq), 'snapset'));
        if (spilled) spilledSnapSets[id] = spilled.toString('hex');
      }
    }
    return { kind: store.kind, pgEpochs, omap, spilledSnapSets };
  } finally {
    await store.close();
    if (scratch) await rm(scratch, { recursive: true, force: true });
  }
}

/** Copies a directory (the omap store) from a host into `target`, in one tar stream. */
export async function fetchDirectory(
  transport: HostTransport,
  directory: string,
  target: string,
  options: CommandOptions,
): Promise<void> {
  const files: string[] = [];
  for await (const file of listFiles(transport, directory, options)) files.push(file.path);
  const { missing } = await streamFiles(
    transport,
    directory,
    files,
    async (path) => {
      const destination = join(target, Buffer.from(path, 'latin1').toString('utf8'));
      await mkdir(dirname(destination), { recursive: true });
      const handle = await open(destination, 'w', 0o600);
      return {
        write: async (chunk) => {
          await handle.write(chunk);
        },
        end: () => handle.close(),
      };
    },
    options,
  );
  // LOCK and LOG may come and go; a missing table or log is a real loss.
  const lost = missing.filter((path) => !/^(LOCK|LOG(\.old.*)?)$/.test(path));
  if (lost.length > 0) {
    throw new RbdRecoverError(
      'REMOTE_FAILED',
      `could not copy ${lost.join(', ')} of the omap store`,
      {
        host: transport.host,
        path: directory,
      },
    );
  }
}
