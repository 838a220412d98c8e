import { createHash } from 'node:crypto';
import { chmod, mkdir, rename, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { BlockIoError, FileDevice, type LongRunningOptions, optionRemedy } from '@x/blockio';
import { allowManyAbortListeners } from './abort-listeners.js';
import { closeDirect, openDirect } from './assemble/direct-writes.js';
import {
  type ImageState,
  imageStates,
  type PlannedRegion,
  planStates,
  type StatePlan,
} from './assemble/plan.js';
import { buildQcow2FromStates } from './assemble/qcow2-output.js';
import type { RegionTarget } from './assemble/region-writer.js';
import { compareSameEpochReplicas, type ReplicaConflict } from './assemble/tied-replicas.js';
import { type TransferJob, type TransferOutcome, transferObjects } from './assemble/transfer.js';
import { defaultTransferThreads, TransferThreads } from './assemble/transfer-threads.js';
import {
  acquireLock,
  exists,
  openStateLog,
  readState,
  workDirectoryFor,
  writeStateHeader,
} from './assemble/work-directory.js';
import { RbdRecoverError } from './errors.js';
import { loadInventory } from './inventory/workdir.js';
import type { KvStoreOpener } from './kv.js';
import { getOrInsert } from './map-utils.js';
import { Catalog, type ManualMetadata } from './metadata/catalog.js';
import { parseImageSpec } from './metadata/image-spec.js';
import type { ImageInfo, ImageSpec } from './metadata/image-types.js';
import type { ReplicaPolicy } from './replica.js';
import type { SshOptions } from './transport/ssh-options.js';
import { createTransportPool, type TransportPool } from './transport/transport-pool.js';

const OVERWRITE_REMEDY_TEXT = optionRemedy('overwrite');

export interface RecoverOptions extends LongRunningOptions {
  /** Where `database` left its inventory. Default: the current directory. */
  workdir?: string | undefined;
  /** `raw` (default) or `qcow2` (every snapshot as an internal snapshot). */
  format?: 'raw' | 'qcow2' | undefined;
  /** Every snapshot too: qcow2 → one image; raw → a directory of `<image>.raw`, `<image>@<snap>.raw`. */
  allSnapshots?: boolean | undefined;
  /** Continue an interrupted run: objects it finished are not copied again. */
  resume?: boolean | undefined;
  /** Replace an existing output (and discard an interrupted run's work). */
  overwrite?: boolean | undefined;
  policy?: ReplicaPolicy | undefined;
  poolNames?: Record<string, string> | undefined;
  manual?: ManualMetadata | undefined;
  ssh?: SshOptions | undefined;
  /** For tests and callers with their own connections. */
  transports?: TransportPool | undefined;
  /** Tar streams per OSD at once. Default 1. */
  streamsPerHost?: number | undefined;
  /**
   * Threads that run the SSH transfers (decryption is pure JS): default 3 (one per tar
   * stream, up to 3; each holds ~25 MiB with its small young generation), none on one
   * core; 0 keeps every transfer on the calling thread.
   * Not used with `transports` (the caller's own connections).
   */
  transferThreads?: number | undefined;
  /** Tests: the first transfer thread exits (as if it crashed) after writing this many bytes. */
  transferThreadExitAfterBytes?: number | undefined;
  stallTimeoutMs?: number | undefined;
  /** Unused by recover (kept for symmetry with database). */
  openKvStore?: KvStoreOpener | undefined;
}

/** What one state's output holds, object by object. */
export interface StateReport {
  readonly label: string;
  readonly snapId: bigint | undefined;
  readonly size: number;
  readonly file: string | undefined;
  readonly objects: number;
  /** Regions filled from an object file. */
  readonly recovered: number;
  /** Regions whose object did not exist in this state: zeros, as RBD reads them. */
  readonly absent: number;
  /** Regions left zero because their object could not be read or found. */
  readonly zeroFilled: ReadonlyArray<{ index: number; reason: string }>;
  /** Regions read from another replica than the chosen one. */
  readonly fallbacks: ReadonlyArray<{ index: number; from: string }>;
  /** Regions whose content came from clone names because the SnapSet was unreadable. */
  readonly inferred: number;
}

export interface RecoverReport {
  readonly image: {
    pool: number;
    poolName: string | undefined;
    namespace: string;
    name: string;
    format: 1 | 2;
    prefix: string;
    order: number;
    size: number;
  };
  readonly output: string;
  readonly format: 'raw' | 'qcow2';
  readonly states: StateReport[];
  readonly objectsCopied: number;
  readonly bytesCopied: number;
  /** Objects an earlier run finished (with `resume`), not copied again. */
  readonly objectsResumed: number;
  /** PGs whose newest epoch is on several OSDs (the first in hosts-file order was used). */
  readonly ties: ReadonlyArray<{ pg: string; osds: string[] }>;
  /**
   * Objects copied in this run whose replicas of the same epoch hold other bytes (size
   * from the inventory, else SHA-1 computed on their host): the first copy's are in the output.
   */
  readonly conflicts: readonly ReplicaConflict[];
  readonly problems: readonly string[];
  /** Every region is what the cluster held (no zero-filled object). */
  readonly complete: boolean;
  readonly elapsedMs: number;
}

/**
 * `recover`: rebuilds an image (or one snapshot, or all of them) from the inventory
 * in `workdir`, copying objects from the OSD hosts in parallel, into a raw sparse
 * file, a directory of raw files, or one QCOW2 image with every snapshot.
 */
export async function recoverImage(
  specText: string | ImageSpec,
  output: string,
  options: RecoverOptions = {},
): Promise<RecoverReport> {
  const started = performance.now();
  allowManyAbortListeners(options.signal);
  const format = options.format ?? 'raw';
  const spec = typeof specText === 'string' ? parseImageSpec(specText) : specText;
  const inventory = await loadInventory(options.workdir ?? process.cwd());
  const catalog = new Catalog(inventory, { policy: options.policy, poolNames: options.poolNames });
  const image = catalog.lookup(spec, options.manual);
  const which = spec.snapshot ?? (options.allSnapshots ? 'all' : 'head');
  const states = imageStates(image, which);
  if (spec.snapshot !== undefined && options.allSnapshots) {
    throw new RbdRecoverError('BAD_SPEC', 'name a snapshot or ask for all of them, not both');
  }

  if ((await exists(output)) && !options.overwrite) {
    throw new BlockIoError(
      'EEXIST',
      `output already exists (${OVERWRITE_REMEDY_TEXT} to replace it)`,
      {
        path: output,
      },
    );
  }
  const work = workDirectoryFor(output);
  if ((await exists(work)) && !options.resume) {
    if (!options.overwrite) {
      throw new BlockIoError(
        'EEXIST',
        `an interrupted run left ${work}; continue it with resume (--resume) or start over (${OVERWRITE_REMEDY_TEXT})`,
        { path: output },
      );
    }
    await rm(work, { recursive: true, force: true });
  }
  await mkdir(work, { recursive: true, mode: 0o700 });
  const release = await acquireLock(work);
  const transports = options.transports ?? createTransportPool(options.ssh);
  const ownsTransports = options.transports === undefined;
  let threads: TransferThreads | undefined;
  try {
    threads = ownsTransports
      ? await TransferThreads.create({
          ssh: options.ssh ?? {},
          threads: options.transferThreads ?? defaultTransferThreads(),
          stallTimeoutMs: options.stallTimeoutMs,
          signal: options.signal,
          exitAfterBytes: options.transferThreadExitAfterBytes,
        })
      : undefined;
    // Threads load and connect to the SSH OSDs while the states are planned.
    threads?.prestart(
      inventory.osds.flatMap(({ osd }) =>
        osd.ssh === undefined ? [] : [{ host: osd.host, address: osd.ssh }],
      ),
    );
    const problems = [...image.problems];
    const plans = await planStates(catalog, image, states, transports, {
      signal: options.signal,
      stallTimeoutMs: options.stallTimeoutMs,
      problems,
    });
    const digest = planDigest(image, plans, format, catalog);
    const statePath = join(work, 'state.jsonl');
    const recorded = options.resume ? await readState(statePath, digest) : undefined;
    if (recorded === undefined) {
      await rm(statePath, { force: true });
      await writeStateHeader(statePath, digest);
    }
    const files = plans.map((_, k) => join(work, `state-${k}.raw`));
    const devices = await Promise.all(
      plans.map(async (plan, k) => {
        // Writes on the thread pool: the main thread stays free to decrypt and parse streams.
        const device = await FileDevice.open(files[k] as string, {
          create: true,
          zeroExtends: true,
          io: 'async',
        });
        // Kept: a state file left by an earlier run is reopened, and the create mode
        // (0600) only applies to a file open() makes.
        await chmod(files[k] as string, 0o600);
        if (recorded === undefined) await device.truncate(0);
        await device.truncate(plan.state.size);
        return device;
      }),
    );
    // Descriptors for the threads' O_DIRECT writes (none when not on threads).
    const direct = await Promise.all(
      files.map((file) => (threads === undefined ? undefined : openDirect(file))),
    );
    try {
      const { jobs, resumed } = buildJobs(
        plans,
        devices,
        direct.map((handle) => handle?.fd),
        recorded,
      );
      // Regions an interrupted run began but did not finish may hold part of an object.
      if (recorded) {
        for (const job of jobs) {
          const begun = job.targets.filter((t) => recorded.started.has(`${t.state}:${t.index}`));
          for (const target of begun) await target.device.writeZeroes(target.offset, target.length);
        }
      }
      const stateLog = await openStateLog(statePath);
      const outcomes = await transferObjects(inventory.osds, jobs, transports, {
        threads,
        signal: options.signal,
        stallTimeoutMs: options.stallTimeoutMs,
        streamsPerHost: options.streamsPerHost,
        onProgress: options.onProgress,
        onStart: (job) => stateLog.append({ event: 'start', targets: targetKeys(job.targets) }),
        onDone: (outcome) =>
          stateLog.append({
            event: 'done',
            targets: targetKeys(outcome.job.targets),
            [outcome.checksumKind]: outcome.checksum,
            bytes: outcome.bytes,
          }),
        resetTargets: async (targets) => {
          for (const target of targets)
            await target.device.writeZeroes(target.offset, target.length);
        },
      }).finally(async () => {
        // Before the devices close: a thread writes through their descriptors.
        await threads?.close();
        await closeDirect(direct);
        await stateLog.close();
      });
      for (const device of devices) await device.flush();
      const conflicts = await compareSameEpochReplicas(catalog, outcomes, transports, {
        signal: options.signal,
        stallTimeoutMs: options.stallTimeoutMs,
        problems,
      });
      const stateReports = reportStates(plans, outcomes, catalog);
      for (const outcome of outcomes) {
        const copy = outcome.copy;
        if (copy && outcome.bytes !== copy.object.size) {
          problems.push(
            `${describeOsd(catalog, copy.osd)}/current/${copy.object.path}: ${outcome.bytes} bytes read, the inventory listed ${copy.object.size} (changed since database?)`,
          );
        }
      }
      for (const device of devices) await device.close();

      const finalFiles = await publish(output, image, plans, files, format, options, work);
      const copied = outcomes.filter((outcome) => outcome.copy !== undefined);
      return {
        image: {
          pool: image.pool.id,
          poolName: image.pool.name,
          namespace: image.namespace,
          name: image.name,
          format: image.format,
          prefix: image.prefix,
          order: image.order,
          size: image.size,
        },
        output,
        format,
        states: stateReports.map((report, k) => ({ ...report, file: finalFiles[k] })),
        objectsCopied: copied.length,
        bytesCopied: copied.reduce((sum, outcome) => sum + outcome.bytes, 0),
        objectsResumed: resumed,
        ties: [...catalog.chooser.pgChoices.values()]
          .filter((choice) => choice.ties.length > 0)
          .map((choice) => ({
            pg: choice.pg,
            osds: [choice.osd, ...choice.ties].map((i) => describeOsd(catalog, i)),
          })),
        conflicts,
        problems,
        complete: stateReports.every((report) => report.zeroFilled.length === 0),
        elapsedMs: Math.round(performance.now() - started),
      };
    } finally {
      await closeDirect(direct);
      await Promise.all(devices.map((device) => device.close().catch(() => {})));
    }
  } finally {
    // Closed already after the transfer; here when planning or setting up failed.
    await threads?.close();
    await release();
    if (ownsTransports) await transports.close();
  }
}

function describeOsd(catalog: Catalog, index: number): string {
  const osd = catalog.inventory.osds[index];
  return osd ? `${osd.osd.host}:${osd.osd.dataPath}` : String(index);
}

function targetKeys(targets: readonly RegionTarget[]): string[] {
  return targets.map((target) => `${target.state}:${target.index}`);
}

/** Groups regions by the object file they come from: each file is read once. */
function buildJobs(
  plans: readonly StatePlan[],
  devices: readonly FileDevice[],
  directFds: ReadonlyArray<number | undefined>,
  recorded: { done: Map<string, unknown> } | undefined,
): { jobs: TransferJob[]; resumed: number } {
  const bySource = new Map<string, { copies: TransferJob['copies']; targets: RegionTarget[] }>();
  let resumed = 0;
  for (const [k, plan] of plans.entries()) {
    for (const region of plan.regions) {
      const source = region.source;
      if (source.kind !== 'copy') continue;
      if (recorded?.done.has(`${k}:${region.index}`)) {
        resumed++;
        continue;
      }
      const first = source.copies[0];
      if (!first) continue;
      const key = `${first.osd}\0${first.object.path}`;
      const job = getOrInsert(bySource, key, () => ({ copies: source.copies, targets: [] }));
      job.targets.push({
        state: k,
        index: region.index,
        device: devices[k] as FileDevice,
        fd: (devices[k] as FileDevice).handle.fd,
        directFd: directFds[k],
        offset: region.offset,
        length: region.length,
      });
    }
  }
  return { jobs: [...bySource.values()], resumed };
}

function reportStates(
  plans: readonly StatePlan[],
  outcomes: readonly TransferOutcome[],
  catalog: Catalog,
): Omit<StateReport, 'file'>[] {
  const byTarget = new Map<string, TransferOutcome>();
  for (const outcome of outcomes) {
    for (const target of outcome.job.targets)
      byTarget.set(`${target.state}:${target.index}`, outcome);
  }
  return plans.map((plan, k) => {
    let recovered = 0;
    let absent = 0;
    let inferred = 0;
    const zeroFilled: Array<{ index: number; reason: string }> = [];
    const fallbacks: Array<{ index: number; from: string }> = [];
    for (const region of plan.regions) {
      const source = region.source;
      if (source.kind === 'absent') {
        absent++;
        continue;
      }
      if (source.kind === 'missing') {
        zeroFilled.push({ index: region.index, reason: source.reason });
        continue;
      }
      if (source.via === 'clone-by-name') inferred++;
      const outcome = byTarget.get(`${k}:${region.index}`);
      if (outcome === undefined) {
        recovered++; // finished by an earlier run (resume)
        continue;
      }
      if (outcome.copy === undefined) {
        zeroFilled.push({
          index: region.index,
          reason: outcome.failures.join('; ') || 'unreadable',
        });
        continue;
      }
      recovered++;
      if (outcome.copy !== source.copies[0]) {
        fallbacks.push({
          index: region.index,
          from: `${describeOsd(catalog, outcome.copy.osd)}/current/${outcome.copy.object.path}`,
        });
      }
    }
    return {
      label: plan.state.label,
      snapId: plan.state.snapId,
      size: plan.state.size,
      objects: plan.regions.length,
      recovered,
      absent,
      zeroFilled,
      fallbacks,
      inferred,
    };
  });
}

function planDigest(
  image: ImageInfo,
  plans: readonly StatePlan[],
  format: string,
  catalog: Catalog,
): string {
  const hash = createHash('sha256');
  hash.update(JSON.stringify([image.pool.id, image.namespace, image.name, image.prefix, format]));
  for (const plan of plans) {
    hash.update(JSON.stringify([plan.state.label, plan.state.size]));
    for (const region of plan.regions) hash.update(regionKey(region, catalog));
  }
  return hash.digest('hex');
}

function regionKey(region: PlannedRegion, catalog: Catalog): string {
  const source = region.source;
  if (source.kind !== 'copy') return `${region.index}:${source.kind}\n`;
  const copy = source.copies[0];
  return `${region.index}:${copy ? `${describeOsd(catalog, copy.osd)}/${copy.object.path}:${copy.object.size}` : ''}\n`;
}

/** File name of a state in a raw directory output: `<image>.raw`, `<image>@<snap>.raw`. */
export function rawStateFileName(image: { name: string }, state: ImageState): string {
  return state.snapId === undefined ? `${image.name}.raw` : `${image.name}@${state.label}.raw`;
}

/** Moves the finished work into place under the output's name. */
async function publish(
  output: string,
  image: ImageInfo,
  plans: readonly StatePlan[],
  files: readonly string[],
  format: 'raw' | 'qcow2',
  options: RecoverOptions,
  work: string,
): Promise<Array<string | undefined>> {
  if (format === 'qcow2') {
    await buildQcow2FromStates(output, plans, files, {
      overwrite: options.overwrite ?? false,
      signal: options.signal,
      onProgress: options.onProgress,
    });
    await rm(work, { recursive: true, force: true });
    return plans.map(() => output);
  }
  if (plans.length === 1 && !options.allSnapshots) {
    if (options.overwrite) await rm(output, { recursive: true, force: true });
    await rename(files[0] as string, output);
    await rm(work, { recursive: true, force: true });
    return [output];
  }
  const staged = join(work, 'out');
  await mkdir(staged, { recursive: true, mode: 0o700 });
  const names: string[] = [];
  for (const [k, plan] of plans.entries()) {
    const name = rawStateFileName(image, plan.state);
    if (basename(name) !== name) {
      throw new RbdRecoverError('UNSUPPORTED', `"${name}" cannot be a file name`);
    }
    await rename(files[k] as string, join(staged, name));
    names.push(join(output, name));
  }
  if (options.overwrite) await rm(output, { recursive: true, force: true });
  await rename(staged, output);
  await rm(work, { recursive: true, force: true });
  return names;
}
