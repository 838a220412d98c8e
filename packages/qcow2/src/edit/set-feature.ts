import { FileDevice, optionRemedy } from '@x/blockio';
import { analyseImage } from '../check/analyse.js';
import type { FindingKind } from '../check/report.js';
import { Qcow2Error } from '../errors.js';
import { QCOW2_INCOMPAT_CORRUPT, QCOW2_INCOMPAT_DIRTY } from '../format/constants.js';
import { updateIncompatibleFeatures } from '../repair/header-flags.js';
import { MetadataWriter } from '../repair/metadata-writer.js';
import { UndoLogWriter, undoLogPath } from '../undo/undo-log.js';
import { requireQcow2Magic } from './require-qcow2.js';

export type HeaderFlag = 'corrupt' | 'dirty';

export interface SetFeatureOptions {
  set?: HeaderFlag[] | undefined;
  clear?: HeaderFlag[] | undefined;
  /** Clear a bit even though check still finds what it warns about. */
  force?: boolean | undefined;
  dryRun?: boolean | undefined;
  /** Undo log path (default `<image>.qcow2-undo`); false for none. */
  undoLog?: string | false | undefined;
}

export interface SetFeatureResult {
  image: string;
  /** incompatible_features before and after, hex. */
  before: string;
  after: string;
  changed: boolean;
  dryRun: boolean;
  undoLog: string | undefined;
}

const BITS: Record<HeaderFlag, bigint> = {
  corrupt: QCOW2_INCOMPAT_CORRUPT,
  dirty: QCOW2_INCOMPAT_DIRTY,
};
const STALE_REFCOUNTS: FindingKind[] = ['refcount-error', 'refcount-table', 'refcount-table-entry'];
const STILL_CORRUPT: FindingKind[] = [
  ...STALE_REFCOUNTS,
  'refcount-overflow',
  'snapshot-table',
  'l1-entry',
  'l1-table',
  'l2-entry',
  'extended-l2-bitmap',
  'v2-zero-flag',
  'overlap',
  'reused-cluster',
  'header',
];

/**
 * Sets or clears the header's corrupt and dirty bits by hand (qcow2-dump's
 * -M/-C). Clearing is checked first: a dirty bit is only cleared when the
 * refcounts are right (QEMU would trust them from then on), a corrupt bit
 * only when check finds no corruption — unless forced.
 */
export async function setFeature(
  path: string,
  options: SetFeatureOptions,
): Promise<SetFeatureResult> {
  const set = (options.set ?? []).reduce((bits, flag) => bits | BITS[flag], 0n);
  const clear = (options.clear ?? []).reduce((bits, flag) => bits | BITS[flag], 0n);
  const dryRun = options.dryRun === true;
  const file = await FileDevice.open(path, { writable: !dryRun });
  try {
    await requireQcow2Magic(file);
    if (clear !== 0n && !options.force) {
      const { findings } = await analyseImage(file);
      const blocking = (clear & QCOW2_INCOMPAT_CORRUPT ? STILL_CORRUPT : STALE_REFCOUNTS).filter(
        (kind) => findings.count(kind) > 0,
      );
      if (blocking.length > 0) {
        const what = clear & QCOW2_INCOMPAT_CORRUPT ? 'corrupt' : 'dirty';
        throw new Qcow2Error(
          what === 'dirty' ? 'DIRTY' : 'CORRUPT',
          `not clearing the ${what} bit: check still finds ${blocking.map((kind) => `${findings.count(kind)} ${kind}`).join(', ')}; run qcow2 repair first, or ${optionRemedy('force')}`,
          { path, offset: 72, structure: 'qcow2 header' },
        );
      }
    }
    const logPath = options.undoLog === false ? undefined : (options.undoLog ?? undoLogPath(path));
    const writer = new MetadataWriter(
      file,
      logPath === undefined
        ? undefined
        : () => UndoLogWriter.begin(logPath, file.size, 'set-feature'),
      dryRun,
    );
    const names = [
      ...(options.set ?? []).map((f) => `set ${f}`),
      ...(options.clear ?? []).map((f) => `clear ${f}`),
    ];
    const { before, after } = await updateIncompatibleFeatures(
      writer,
      { set, clear },
      `header: ${names.join(', ')}`,
    );
    await writer.log?.finish(file.size);
    return {
      image: path,
      before: `0x${before.toString(16)}`,
      after: `0x${after.toString(16)}`,
      changed: before !== after,
      dryRun,
      undoLog: writer.log?.path,
    };
  } finally {
    await file.close();
  }
}
