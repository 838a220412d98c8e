import { TapeRestoreError } from './errors.js';

/** §6 Naming. */
export type BackupType = 'vm' | 'ct' | 'host';

export interface SnapshotName {
  /** Namespace components, root = []. */
  readonly namespace: readonly string[];
  readonly type: BackupType;
  readonly id: string;
  /** RFC 3339 UTC, seconds: `YYYY-MM-DDTHH:MM:SSZ`. */
  readonly time: string;
}

const SAFE_ID = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/;
const TIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})Z$/;
/** §6: up to 7 namespace levels, 256 characters in all. */
export const MAX_NAMESPACE_DEPTH = 7;
export const MAX_NAMESPACE_LENGTH = 256;

function bad(text: string, why: string): TapeRestoreError {
  return new TapeRestoreError('BAD_SNAPSHOT_NAME', `"${text}" is not a snapshot path: ${why}`, {
    structure: 'snapshot name',
  });
}

export function isSafeId(text: string): boolean {
  return SAFE_ID.test(text) && text.length <= 128;
}

/** Checks a time string is a real RFC 3339 UTC second. */
export function isBackupTime(text: string): boolean {
  const match = TIME.exec(text);
  if (!match) return false;
  const date = new Date(text);
  return !Number.isNaN(date.getTime()) && date.toISOString().replace('.000Z', 'Z') === text;
}

/**
 * Parses the printed form `[ns/<a>/ns/<b>/]<type>/<id>/<time>` (§6: split at the 3rd
 * `/` from the right; the left part must be `ns/<x>` pairs). Every component is a
 * safe id, so `..`, `.`, empty components and absolute paths are refused.
 */
export function parseSnapshotPath(text: string): SnapshotName {
  const parts = text.split('/');
  if (parts.length < 3) throw bad(text, 'expected [ns/<namespace>/…]<type>/<id>/<time>');
  const [type, id, time] = parts.slice(-3) as [string, string, string];
  const nsParts = parts.slice(0, -3);
  if (nsParts.length % 2 !== 0) throw bad(text, 'the namespace part must be ns/<name> pairs');
  const namespace: string[] = [];
  for (let i = 0; i < nsParts.length; i += 2) {
    const name = nsParts[i + 1] ?? '';
    if (nsParts[i] !== 'ns') throw bad(text, `expected "ns", found "${nsParts[i]}"`);
    if (!isSafeId(name)) throw bad(text, `namespace "${name}" is not a safe name`);
    namespace.push(name);
  }
  if (namespace.length > MAX_NAMESPACE_DEPTH) {
    throw bad(text, `more than ${MAX_NAMESPACE_DEPTH} namespace levels`);
  }
  if (namespace.join('/').length > MAX_NAMESPACE_LENGTH) {
    throw bad(text, `namespace longer than ${MAX_NAMESPACE_LENGTH} characters`);
  }
  if (type !== 'vm' && type !== 'ct' && type !== 'host') {
    throw bad(text, `backup type "${type}" is not vm, ct or host`);
  }
  if (!isSafeId(id)) throw bad(text, `backup id "${id}" is not a safe name`);
  if (!isBackupTime(time)) throw bad(text, `"${time}" is not a time like 2021-01-01T00:00:00Z`);
  return { namespace, type, id, time };
}

/** The printed form (the catalog's key, §7, §10). */
export function formatSnapshotPath(name: SnapshotName): string {
  const ns = name.namespace.map((n) => `ns/${n}/`).join('');
  return `${ns}${name.type}/${name.id}/${name.time}`;
}

/** The group's printed form: `[ns/…/]type/id`. */
export function formatGroupPath(name: SnapshotName): string {
  const ns = name.namespace.map((n) => `ns/${n}/`).join('');
  return `${ns}${name.type}/${name.id}`;
}

/** The relative directory of a snapshot in a datastore (§6 Datastore on disk). */
export function snapshotRelativeDir(name: SnapshotName): string {
  return formatSnapshotPath(name);
}

export interface StoreSnapshot {
  readonly store: string;
  readonly snapshot: SnapshotName;
}

/** §6: API restore list entries `store:[ns/x/…]type/id/time` (the first `:` separates). */
export function parseStoreSnapshot(text: string): StoreSnapshot {
  const colon = text.indexOf(':');
  if (colon <= 0) throw bad(text, 'expected <store>:[ns/…/]<type>/<id>/<time>');
  const store = text.slice(0, colon);
  if (!isSafeId(store)) throw bad(text, `datastore name "${store}" is not a safe name`);
  return { store, snapshot: parseSnapshotPath(text.slice(colon + 1)) };
}

export function formatStoreSnapshot(entry: StoreSnapshot): string {
  return `${entry.store}:${formatSnapshotPath(entry.snapshot)}`;
}
