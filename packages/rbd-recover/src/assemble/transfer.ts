import { posix } from 'node:path';
import { forEachConcurrent, type ProgressListener, ProgressTracker } from '@x/blockio';
import type { OsdInventory } from '../inventory/inventory-types.js';
import { getOrInsert } from '../map-utils.js';
import type { ObjectCopy } from '../replica.js';
import type { CommandOptions } from '../transport/osd-commands.js';
import type { TransportPool } from '../transport/transport-pool.js';
import { fetchFiles } from './fetch-files.js';
import { type ChecksumKind, GATHER, type RegionTarget, RegionWriter } from './region-writer.js';
import type { TransferThreads } from './transfer-threads.js';

/** One source object to copy, and every region it fills. */
export interface TransferJob {
  /** The chosen copy first, then fallbacks on other OSDs. */
  readonly copies: readonly ObjectCopy[];
  readonly targets: readonly RegionTarget[];
}

export interface TransferOutcome {
  readonly job: TransferJob;
  /** The copy the bytes came from, when the copy succeeded. */
  readonly copy: ObjectCopy | undefined;
  readonly bytes: number;
  /** Checksum (hex) of the bytes copied; '' when the copy failed. */
  readonly checksum: string;
  /** SHA-1 when the copy has a replica of the same epoch (compared by SHA-1), else CRC-32. */
  readonly checksumKind: ChecksumKind;
  /** Why each tried copy failed. */
  readonly failures: readonly string[];
}

export interface TransferOptions extends CommandOptions {
  /**
   * Tar streams at the same time per OSD. Default 1: on loopback, 4 per OSD cost sshd twice
   * the CPU of 1 and our side a third more, for no gain (one stream fills a core here).
   */
  streamsPerHost?: number | undefined;
  /** Objects per stream at most (more objects: more streams, one after another). Default 256. */
  objectsPerStream?: number | undefined;
  onProgress?: ProgressListener | undefined;
  /** Called when an object's bytes begin to arrive (to record it in the state file). */
  onStart?: ((job: TransferJob) => Promise<void> | void) | undefined;
  /** Called after each object is complete (to record it in the state file). */
  onDone?: ((outcome: TransferOutcome) => Promise<void> | void) | undefined;
  /** Called before a region is written again after a failed attempt (zero it first). */
  resetTargets?: ((targets: readonly RegionTarget[]) => Promise<void>) | undefined;
  /**
   * Threads that stream SSH batches whose regions all have a descriptor (`fd`); other
   * batches (local paths, a caller's own transports) stream on this thread.
   */
  threads?: TransferThreads | undefined;
}

/**
 * Copies objects from the OSD hosts into their regions: every host at once, a few
 * tar streams per host, each carrying many objects. An object whose copy fails (host
 * dropped, file vanished) is tried again on its next copy (another replica); what
 * still fails is returned unrecovered, the rest is complete.
 */
export async function transferObjects(
  osds: readonly OsdInventory[],
  jobs: readonly TransferJob[],
  transports: TransportPool,
  options: TransferOptions,
): Promise<TransferOutcome[]> {
  const total = jobs.reduce((sum, job) => sum + (job.copies[0]?.object.size ?? 0), 0);
  const progress = new ProgressTracker('recover', total, options.onProgress, { unit: 'bytes' });
  const outcomes: TransferOutcome[] = [];
  const failures = new Map<TransferJob, string[]>();
  let pending = [...jobs];
  for (let attempt = 0; pending.length > 0; attempt++) {
    // Attempt 0 and 1 use the chosen copy (1 after a reconnect), then the fallbacks.
    const now = pending.filter((job) => tryCopy(job, attempt) !== undefined);
    for (const job of pending) {
      if (tryCopy(job, attempt) === undefined) {
        outcomes.push({
          job,
          copy: undefined,
          bytes: 0,
          checksum: '',
          checksumKind: 'crc32',
          failures: failures.get(job) ?? [],
        });
      }
    }
    if (now.length === 0) break;
    const failed = await runAttempt(
      osds,
      now,
      attempt,
      transports,
      options,
      progress,
      outcomes,
      failures,
    );
    if (attempt > 0 || failed.length > 0) {
      await options.resetTargets?.(failed.flatMap((job) => job.targets));
    }
    pending = failed;
  }
  progress.finish();
  return outcomes;
}

async function runAttempt(
  osds: readonly OsdInventory[],
  jobs: readonly TransferJob[],
  attempt: number,
  transports: TransportPool,
  options: TransferOptions,
  progress: ProgressTracker,
  outcomes: TransferOutcome[],
  failures: Map<TransferJob, string[]>,
): Promise<TransferJob[]> {
  const byOsd = new Map<number, TransferJob[]>();
  for (const job of jobs) {
    const osd = (tryCopy(job, attempt) as ObjectCopy).osd;
    const list = getOrInsert(byOsd, osd, () => []);
    list.push(job);
  }
  const failed: TransferJob[] = [];
  const fail = (job: TransferJob, reason: string) => {
    const list = getOrInsert(failures, job, () => []);
    list.push(reason);
    failed.push(job);
  };
  const perStream = options.objectsPerStream ?? 256;
  const batches: Array<{ osd: number; jobs: TransferJob[] }> = [];
  for (const [osd, list] of byOsd) {
    const streams = options.streamsPerHost ?? 1;
    const size = Math.max(1, Math.min(perStream, Math.ceil(list.length / streams)));
    for (let i = 0; i < list.length; i += size)
      batches.push({ osd, jobs: list.slice(i, i + size) });
  }
  // Interleave hosts so that every host is busy from the start.
  batches.sort((a, b) => a.jobs.length - b.jobs.length || a.osd - b.osd);
  await forEachConcurrent(
    batches,
    Math.max(1, byOsd.size * (options.streamsPerHost ?? 1)),
    async (batch) => {
      await runBatch(
        osds,
        batch.osd,
        batch.jobs,
        attempt,
        transports,
        options,
        progress,
        outcomes,
        fail,
      );
    },
    { signal: options.signal },
  );
  return failed;
}

async function runBatch(
  osds: readonly OsdInventory[],
  osdIndex: number,
  jobs: readonly TransferJob[],
  attempt: number,
  transports: TransportPool,
  options: TransferOptions,
  progress: ProgressTracker,
  outcomes: TransferOutcome[],
  fail: (job: TransferJob, reason: string) => void,
): Promise<void> {
  const osd = osds[osdIndex] as OsdInventory;
  const current = posix.join(osd.osd.dataPath, 'current');
  const byPath = new Map<string, TransferJob>();
  for (const job of jobs) byPath.set((tryCopy(job, attempt) as ObjectCopy).object.path, job);
  const finished = new Set<TransferJob>();
  const complete = async (job: TransferJob, bytes: number, checksum: string) => {
    finished.add(job);
    const copy = tryCopy(job, attempt) as ObjectCopy;
    const checksumKind = checksumFor(job, attempt);
    const outcome: TransferOutcome = { job, copy, bytes, checksum, checksumKind, failures: [] };
    outcomes.push(outcome);
    await options.onDone?.(outcome);
  };
  try {
    const threads = options.threads;
    const address = osd.osd.ssh;
    const onThread =
      threads !== undefined &&
      address !== undefined &&
      jobs.every((job) => job.targets.every((target) => target.fd !== undefined));
    let missing: string[];
    if (onThread) {
      const entries = [...byPath].map(([path, job]) => ({ path, job }));
      missing = await threads.run(
        {
          host: osd.osd.host,
          address,
          directory: current,
          entries: entries.map(({ path, job }) => ({
            path,
            checksum: checksumFor(job, attempt),
            targets: job.targets.map(({ fd, directFd, offset, length }) => ({
              fd: fd as number,
              directFd,
              offset,
              length,
            })),
          })),
        },
        entries.reduce((sum, { job }) => sum + (tryCopy(job, attempt)?.object.size ?? 0), 0),
        {
          onStart: (entry) => options.onStart?.((entries[entry] as { job: TransferJob }).job),
          onProgress: (bytes) => progress.advance(bytes),
          onDone: (entry, bytes, checksum) =>
            complete((entries[entry] as { job: TransferJob }).job, bytes, checksum),
        },
      );
    } else {
      const transport = await transports.get(osd.osd);
      // One buffer for the stream: its objects come one after another.
      const gather = Buffer.allocUnsafe(GATHER);
      missing = await fetchFiles(
        transport,
        current,
        [...byPath.keys()],
        async (path) => {
          const job = byPath.get(path);
          if (!job) return { write: () => {}, end: () => {} };
          await options.onStart?.(job);
          const writer = new RegionWriter(job.targets, gather, checksumFor(job, attempt));
          return {
            write: async (chunk) => {
              await writer.write(chunk);
              progress.advance(chunk.byteLength);
            },
            end: async () => {
              await writer.end();
              await complete(job, writer.received, writer.checksum);
            },
          };
        },
        options,
      );
    }
    for (const path of missing) {
      const job = byPath.get(path);
      if (job && !finished.has(job))
        fail(job, `${osd.osd.host}:${current}/${path}: could not be read (vanished?)`);
    }
  } catch (error) {
    if ((error as { code?: string }).code === 'ABORTED') throw error;
    const reason = (error as Error).message;
    for (const job of jobs) {
      if (!finished.has(job)) fail(job, `${osd.osd.host}:${current}: ${reason}`);
    }
  }
}

/** SHA-1 when another replica has the same epoch as the copy read (see tied-replicas.ts). */
function checksumFor(job: TransferJob, attempt: number): ChecksumKind {
  const copy = tryCopy(job, attempt);
  const epoch = copy?.epoch;
  if (epoch === undefined) return 'crc32';
  return job.copies.some((other) => other !== copy && other.epoch === epoch) ? 'sha1' : 'crc32';
}

/** The copy attempt `attempt` reads: the chosen one twice (a dropped host gets a second go), then the others. */
function tryCopy(job: TransferJob, attempt: number): ObjectCopy | undefined {
  return job.copies[attempt === 0 ? 0 : attempt - 1];
}
