import type { SnapshotEntry } from '@x/qcow2/read';
import type { Command } from 'commander';
import { addExamples } from './read-options.js';
import { formatSnapshotRow, SNAPSHOT_TABLE_HEADER } from './snapshot-table.js';

interface SnapshotOptions {
  json?: boolean;
  allExcept?: string;
  undoLog?: string;
}

const ACTIONS = ['list', 'create', 'apply', 'delete'] as const;
type Action = (typeof ACTIONS)[number];

export function registerSnapshot(program: Command): void {
  const command = program
    .command('snapshot')
    .summary('list, create, apply (revert to) or delete internal snapshots')
    .description(
      'Manage internal snapshots like `qemu-img snapshot -l|-c|-a|-d`, with the same ' +
        'on-disk result. ID|NAME matches a snapshot id first, then a name (qemu-img 7.2 ' +
        'deletes by name only). `delete --all-except ID|NAME` deletes every other snapshot. ' +
        '`apply` checks the image first: when the active tables, refcounts or header flags ' +
        'are damaged it rolls back anyway, as long as the snapshot is intact (a rescue: the ' +
        "snapshot's L1 table becomes active, the refcounts are rebuilt, every overwritten byte " +
        'goes to <image>.qcow2-undo for `qcow2 undo`); it refuses with SNAPSHOT_DAMAGED, ' +
        "writing nothing, when the snapshot's own tables are damaged. " +
        'Exit codes: 0 done, 1 failure (e.g. no such snapshot, snapshot damaged), 2 usage error.',
    )
    .argument('<action>', `one of ${ACTIONS.join(', ')}`)
    .argument('<image>', 'qcow2 image')
    .argument('[id-or-name]', 'snapshot name (create) or id/name (apply, delete)')
    .option('--json', 'print the result as JSON on stdout')
    .option('--all-except <id-or-name>', 'with delete: delete all snapshots but this one')
    .option('--undo-log <path>', 'with apply: undo log of a rescue (default <image>.qcow2-undo)')
    .action((action: string, image: string, target: string | undefined, options: SnapshotOptions) =>
      runSnapshot(action, image, target, options),
    );
  addExamples(command, [
    'qcow2 snapshot list disk.qcow2',
    'qcow2 snapshot create disk.qcow2 before-upgrade',
    'qcow2 snapshot apply disk.qcow2 before-upgrade',
    'qcow2 snapshot delete disk.qcow2 --all-except 3',
  ]);
}

async function runSnapshot(
  action: string,
  image: string,
  target: string | undefined,
  options: SnapshotOptions,
): Promise<void> {
  const { runCommand, UsageError } = await import('@x/blockio/cli');
  await runCommand({ program: 'qcow2', json: options.json }, async (context) => {
    if (!ACTIONS.includes(action as Action)) {
      throw new UsageError(`unknown action "${action}" (expected ${ACTIONS.join(', ')})`);
    }
    const qcow2 = await import('@x/qcow2');
    const needsTarget = action !== 'list' && !(action === 'delete' && options.allExcept);
    if (needsTarget && target === undefined) {
      throw new UsageError(
        `snapshot ${action} needs a snapshot ${action === 'create' ? 'name' : 'id or name'}`,
      );
    }
    if (options.allExcept !== undefined && action !== 'delete') {
      throw new UsageError('--all-except only goes with delete');
    }
    if (options.undoLog !== undefined && action !== 'apply') {
      throw new UsageError('--undo-log only goes with apply');
    }
    if (action === 'list' && target !== undefined) {
      throw new UsageError(`snapshot list takes only an image, not "${target}"`);
    }
    if (options.allExcept !== undefined && target !== undefined) {
      throw new UsageError('give either a snapshot to delete or --all-except, not both');
    }
    const name = target as string;
    switch (action as Action) {
      case 'list': {
        const snapshots = await qcow2.listSnapshots(image);
        if (context.json) context.printJson(snapshots.map(toJson));
        else printTable(context.print, snapshots);
        return;
      }
      case 'create': {
        const made = await qcow2.createSnapshot(image, name);
        if (context.json) context.printJson(toJson(made));
        else context.print(`created snapshot ${made.id} "${made.name}"`);
        return;
      }
      case 'apply': {
        const applied = await qcow2.applySnapshot(image, name, {
          undoLog: options.undoLog,
          signal: context.signal,
        });
        if (context.json) context.printJson({ ...toJson(applied), rescue: applied.rescue ?? null });
        else printApplied(context.print, context.warn, image, applied);
        return;
      }
      case 'delete': {
        const deleted =
          options.allExcept !== undefined
            ? await qcow2.deleteSnapshotsExcept(image, options.allExcept)
            : [await qcow2.deleteSnapshot(image, name)];
        if (context.json) context.printJson(deleted.map(toJson));
        else
          for (const entry of deleted)
            context.print(`deleted snapshot ${entry.id} "${entry.name}"`);
        return;
      }
    }
  });
}

/** What the JSON and the listing show of a snapshot (entries from any of the library's calls). */
type Entry = Omit<SnapshotEntry, 'l1TableOffset' | 'l1Size'>;

/** Key names as `qemu-img info --output=json` uses them for snapshots. */
function toJson(entry: Entry): Record<string, unknown> {
  return {
    id: entry.id,
    name: entry.name,
    'vm-state-size': entry.vmStateSize,
    'date-sec': entry.dateSec,
    'date-nsec': entry.dateNsec,
    'vm-clock-sec': Math.floor(entry.vmClockNsec / 1e9),
    'vm-clock-nsec': entry.vmClockNsec % 1e9,
    icount: entry.icount === 0xffffffffffffffffn ? undefined : entry.icount,
    'disk-size': entry.diskSize,
  };
}

interface Applied extends Entry {
  rescue:
    | {
        damage: Array<{ kind: string; count: number; example: string }>;
        l1TableOffset: number;
        refused: string[];
        flagsCleared: string[];
        writes: number;
        bytesWritten: number;
        undoLog: string | undefined;
        exitCode: number;
        after: { verdict: string } | undefined;
      }
    | undefined;
}

function printApplied(
  print: (line: string) => void,
  warn: (line: string) => void,
  image: string,
  applied: Applied,
): void {
  const { rescue } = applied;
  if (rescue === undefined) {
    print(`reverted to snapshot ${applied.id} "${applied.name}"`);
    return;
  }
  print(
    `reverted to snapshot ${applied.id} "${applied.name}" by a rescue: the active state was damaged`,
  );
  for (const damage of rescue.damage) {
    print(`  ${damage.example}${damage.count > 1 ? ` (and ${damage.count - 1} more)` : ''}`);
  }
  print(
    `the snapshot's L1 table was copied to 0x${rescue.l1TableOffset.toString(16)} and made active; refcounts rebuilt${rescue.flagsCleared.length > 0 ? `; ${rescue.flagsCleared.join(' and ')} bit cleared` : ''}`,
  );
  print(`wrote ${rescue.writes} ranges (${rescue.bytesWritten} bytes)`);
  for (const reason of rescue.refused) warn(reason);
  if (rescue.undoLog) print(`undo log: ${rescue.undoLog} (undo with: qcow2 undo ${image})`);
  if (rescue.exitCode !== 0) {
    warn(
      `the image is not clean yet (${rescue.after?.verdict ?? 'unknown'}); see qcow2 check --mode error ${image}`,
    );
  } else {
    print('check afterwards: clean');
  }
}

function printTable(print: (line: string) => void, entries: Entry[]): void {
  if (entries.length === 0) {
    print('no snapshots');
    return;
  }
  print(SNAPSHOT_TABLE_HEADER);
  for (const entry of entries) print(formatSnapshotRow(entry));
}
