import {
  createOutputFile,
  FileDevice,
  isAllZero,
  type LongRunningOptions,
  ProgressTracker,
  throwIfAborted,
} from '@x/blockio';
import { createQcow2In } from '@x/qcow2';
import { RbdRecoverError } from '../errors.js';
import type { StatePlan } from './plan.js';

export interface Qcow2OutputOptions extends LongRunningOptions {
  overwrite: boolean;
}

const PIECE = 1 << 20;

/**
 * One QCOW2 image holding every state: the snapshots oldest first, each written,
 * then taken as an internal snapshot of its own name and size; the head last, as
 * the active state. Between two states only the regions whose source changed are
 * rewritten (zeros as unmapped zero clusters), so unchanged data is shared.
 * QCOW2 cannot shrink here: states must not get smaller (a head smaller than a
 * snapshot is refused; use raw output).
 */
export async function buildQcow2FromStates(
  path: string,
  plans: readonly StatePlan[],
  files: readonly string[],
  options: Qcow2OutputOptions,
): Promise<void> {
  const order = orderForQcow2(plans);
  const first = plans[order[0] as number] as StatePlan;
  const output = await createOutputFile(path, { overwrite: options.overwrite });
  const total = plans.reduce((sum, plan) => sum + plan.state.size, 0);
  const progress = new ProgressTracker('qcow2', total, options.onProgress, { unit: 'bytes' });
  try {
    const image = await createQcow2In(output, { size: first.state.size });
    try {
      let previous: Map<number, string> | undefined;
      const buffer = Buffer.alloc(PIECE);
      for (const k of order) {
        const plan = plans[k] as StatePlan;
        if (plan.state.size > image.size) await image.resize(plan.state.size);
        const source = await FileDevice.open(files[k] as string);
        const identities = new Map<number, string>();
        try {
          for (const region of plan.regions) {
            throwIfAborted(options.signal, path);
            const identity = regionIdentity(region.source);
            identities.set(region.index, identity);
            const before = previous?.get(region.index);
            if (previous !== undefined && before === identity) {
              progress.advance(region.length);
              continue;
            }
            const hadData = before !== undefined && before !== 'zero';
            for (let at = 0; at < region.length; at += PIECE) {
              const length = Math.min(PIECE, region.length - at);
              const piece = buffer.subarray(0, length);
              await source.read(region.offset + at, piece);
              if (isAllZero(piece)) {
                if (hadData) await image.writeZeroes(region.offset + at, length, { unmap: true });
              } else {
                await image.write(region.offset + at, piece);
              }
              progress.advance(length);
            }
          }
        } finally {
          await source.close();
        }
        if (plan.state.snapId !== undefined) await image.createSnapshot(plan.state.label);
        previous = identities;
      }
    } finally {
      await image.close();
    }
    await output.commit();
    progress.finish();
  } catch (error) {
    await output.abort();
    throw error;
  }
}

function regionIdentity(source: StatePlan['regions'][number]['source']): string {
  if (source.kind !== 'copy') return 'zero';
  const copy = source.copies[0];
  return copy ? `${copy.osd}\0${copy.object.path}` : 'zero';
}

/** Snapshots by id then the head; by size where sizes shrink, as QCOW2 only grows. */
function orderForQcow2(plans: readonly StatePlan[]): number[] {
  const snapshots = plans
    .map((plan, k) => ({ plan, k }))
    .filter(({ plan }) => plan.state.snapId !== undefined);
  const head = plans.findIndex((plan) => plan.state.snapId === undefined);
  snapshots.sort((a, b) => a.plan.state.size - b.plan.state.size || compareIds(a.plan, b.plan));
  const order = snapshots.map(({ k }) => k);
  const largest = Math.max(0, ...snapshots.map(({ plan }) => plan.state.size));
  for (const plan of plans) {
    if (plan.state.size % 512 !== 0) {
      throw new RbdRecoverError(
        'UNSUPPORTED',
        `${plan.state.label} is ${plan.state.size} bytes, not a multiple of 512: QCOW2 cannot hold it; use raw output`,
      );
    }
  }
  if (head >= 0) {
    if ((plans[head] as StatePlan).state.size < largest) {
      throw new RbdRecoverError(
        'UNSUPPORTED',
        'the image was shrunk after a snapshot: QCOW2 output cannot shrink between states; use raw output',
      );
    }
    order.push(head);
  }
  return order;
}

function compareIds(a: StatePlan, b: StatePlan): number {
  const x = a.state.snapId ?? 0n;
  const y = b.state.snapId ?? 0n;
  return x < y ? -1 : x > y ? 1 : 0;
}
