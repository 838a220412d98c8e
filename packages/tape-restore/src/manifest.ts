import { TapeRestoreError, type TapeRestoreErrorOptions } from './errors.js';

/** §6 Manifest: one entry of `files`. */
export interface ManifestFile {
  readonly filename: string;
  readonly cryptMode: 'none' | 'encrypt' | 'sign-only';
  readonly size: number;
  readonly csum: string;
  readonly kind: 'fidx' | 'didx' | 'blob';
}

export interface Manifest {
  readonly backupType: string;
  readonly backupId: string;
  readonly backupTime: number;
  readonly files: readonly ManifestFile[];
  /** The parsed JSON as it was, for re-encoding. */
  readonly json: Record<string, unknown>;
}

export const MANIFEST_BLOB_NAME = 'index.json.blob';
export const CLIENT_LOG_BLOB_NAME = 'client.log.blob';

/** A file name inside a snapshot directory: one safe path component. */
export function isSafeFileName(name: string): boolean {
  return (
    name.length > 0 &&
    name.length <= 255 &&
    name !== '.' &&
    name !== '..' &&
    !name.includes('/') &&
    !name.includes('\0')
  );
}

/** Parses the manifest's plaintext JSON (§6) and checks every field the restore uses. */
export function parseManifest(text: string, where: TapeRestoreErrorOptions = {}): Manifest {
  const fail = (why: string, cause?: unknown) =>
    new TapeRestoreError('BAD_MANIFEST', `the manifest ${why}`, {
      structure: 'manifest',
      ...where,
      cause,
    });
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw fail(`is not JSON: ${(error as Error).message}`, error);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw fail('is not a JSON object');
  }
  const record = json as Record<string, unknown>;
  const backupType = record['backup-type'];
  const backupId = record['backup-id'];
  const backupTime = record['backup-time'];
  if (typeof backupType !== 'string') throw fail('has no string "backup-type"');
  if (typeof backupId !== 'string') throw fail('has no string "backup-id"');
  if (typeof backupTime !== 'number' || !Number.isSafeInteger(backupTime)) {
    throw fail('has no integer "backup-time"');
  }
  if (!Array.isArray(record.files)) throw fail('has no "files" array');
  const files = record.files.map((entry: unknown, index): ManifestFile => {
    if (typeof entry !== 'object' || entry === null) throw fail(`files[${index}] is not an object`);
    const file = entry as Record<string, unknown>;
    const filename = file.filename;
    if (typeof filename !== 'string' || !isSafeFileName(filename)) {
      throw fail(`files[${index}] has an unsafe or missing filename ${JSON.stringify(filename)}`);
    }
    const kind = filename.endsWith('.fidx')
      ? 'fidx'
      : filename.endsWith('.didx')
        ? 'didx'
        : filename.endsWith('.blob')
          ? 'blob'
          : undefined;
    if (kind === undefined) throw fail(`lists "${filename}", which is no .fidx, .didx or .blob`);
    if (filename === MANIFEST_BLOB_NAME || filename === CLIENT_LOG_BLOB_NAME) {
      throw fail(`lists "${filename}", which a manifest never lists`);
    }
    const cryptMode = file['crypt-mode'] ?? 'none';
    if (cryptMode !== 'none' && cryptMode !== 'encrypt' && cryptMode !== 'sign-only') {
      throw fail(`files[${index}] has crypt-mode ${JSON.stringify(cryptMode)}`);
    }
    const size = file.size;
    if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
      throw fail(`files[${index}] has no valid size`);
    }
    const csum = file.csum;
    if (typeof csum !== 'string' || !/^[0-9a-f]{64}$/.test(csum)) {
      throw fail(`files[${index}] has no valid csum`);
    }
    return { filename, cryptMode, size, csum, kind };
  });
  const names = new Set(files.map((f) => f.filename));
  if (names.size !== files.length) throw fail('lists a file twice');
  return { backupType, backupId, backupTime, files, json: record };
}

/**
 * The manifest as phase 1 stores it (§9): `unprotected.verify_state` removed, pretty
 * JSON (serde_json's 2-space style). The signature covers only the protected part, so
 * dropping verify_state keeps it valid.
 */
export function manifestWithoutVerifyState(manifest: Manifest): string {
  const json = structuredClone(manifest.json);
  const unprotected = json.unprotected;
  if (typeof unprotected === 'object' && unprotected !== null && !Array.isArray(unprotected)) {
    delete (unprotected as Record<string, unknown>).verify_state;
  }
  return JSON.stringify(json, null, 2);
}
