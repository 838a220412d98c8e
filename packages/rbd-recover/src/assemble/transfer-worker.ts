import { parentPort } from 'node:worker_threads';
import { allocateAligned, moduleWorkerData } from '@x/blockio';
import type { SshAddress } from '../hosts-file.js';
import { streamFiles } from '../transport/osd-commands.js';
import type { SshOptions } from '../transport/ssh-options.js';
import { SshTransport } from '../transport/ssh-transport.js';
import { DirectWriter } from './direct-writes.js';
import { type ChecksumKind, GATHER, type RegionSink, RegionWriter } from './region-writer.js';

/**
 * A transfer thread: the SSH side of `transferObjects` for the batches it is given —
 * its own ssh2 connections (decryption and packet parsing are pure JS, most of a
 * transfer's CPU), the tar stream, the per-object checksums and the writes into the state files
 * (positional writes on the main thread's descriptors: it closes them only once
 * every thread has ended its batches or been terminated).
 * The main thread keeps planning, the state file, progress and the report; it
 * records an object's start before the object's first byte is written (so that a
 * killed run knows which regions may hold part of one).
 *
 * Loaded twice: on the main thread for `TRANSFER_WORKER_MODULE` (nothing runs), and
 * as a worker started by `startModuleWorker`, where the code at the bottom runs.
 */
export const TRANSFER_WORKER_TAG = '@x/rbd-recover:transfer';
export const TRANSFER_WORKER_MODULE = import.meta.url;

export interface TransferWorkerSetup {
  readonly ssh: SshOptions;
  readonly stallTimeoutMs?: number | undefined;
  /** Tests: the thread exits (as if it crashed) after writing this many bytes. */
  readonly exitAfterBytes?: number | undefined;
}

export interface WorkerRegion {
  /** A descriptor of the main thread's, open for writing (descriptors belong to the process). */
  readonly fd: number;
  /** The same file opened with O_DIRECT (aligned writes go there), when possible. */
  readonly directFd?: number | undefined;
  readonly offset: number;
  readonly length: number;
}

/** One tar stream's worth of objects from one OSD, for a transfer thread. */
export interface ThreadBatch {
  readonly host: string;
  readonly address: SshAddress;
  /** The OSD's `current/`. */
  readonly directory: string;
  readonly entries: ReadonlyArray<{
    path: string;
    checksum: ChecksumKind;
    targets: readonly WorkerRegion[];
  }>;
}

/** Main thread → worker. */
export type ToWorker =
  | ({
      readonly type: 'batch';
      readonly id: number;
    } & ThreadBatch)
  | { readonly type: 'started'; readonly id: number; readonly entry: number }
  /** Connect to the host now: a batch for it is expected. */
  | { readonly type: 'connect'; readonly host: string; readonly address: SshAddress }
  | { readonly type: 'close' };

/** Worker → main thread. */
export type FromWorker =
  | { readonly type: 'start'; readonly id: number; readonly entry: number }
  | { readonly type: 'progress'; readonly bytes: number }
  | {
      readonly type: 'done';
      readonly id: number;
      readonly entry: number;
      readonly bytes: number;
      readonly checksum: string;
    }
  | {
      readonly type: 'end';
      readonly id: number;
      readonly missing?: string[];
      /** Bytes this thread has written through O_DIRECT descriptors so far. */
      readonly directBytes?: number;
      readonly error?: { message: string; code?: string | undefined };
    }
  | { readonly type: 'closed' };

/** Progress is reported in steps this big (a message per packet would cost more than it says). */
const PROGRESS_STEP = 4 << 20;

function runTransferWorker(setup: TransferWorkerSetup): void {
  const port = parentPort;
  if (port === null) return;
  const post = (message: FromWorker) => port.postMessage(message);
  const transports = new Map<string, SshTransport>();
  const acknowledged = new Map<string, () => void>();
  let unreported = 0;
  let written = 0;
  const writer = new DirectWriter();

  /** `started`: settles once the main thread has recorded the object's start. */
  const sinkFor = (region: WorkerRegion, started: Promise<void>): RegionSink => {
    const descriptor = region.fd;
    return {
      offset: region.offset,
      length: region.length,
      device: {
        // Synchronous: this thread has nothing else to do meanwhile, and a thread-pool
        // round trip per megabyte cost more than the write. `data` is the start of the
        // RegionWriter's gather buffer, which is page-aligned here.
        async write(offset, data) {
          await started;
          writer.write(descriptor, region.directFd, data, offset, true);
          written += data.byteLength;
          if (setup.exitAfterBytes !== undefined && written >= setup.exitAfterBytes) {
            process.exit(70);
          }
        },
      },
    };
  };

  const transportFor = (host: string, address: SshAddress): SshTransport => {
    let transport = transports.get(host);
    if (transport === undefined) {
      transport = new SshTransport(host, address, setup.ssh);
      transports.set(host, transport);
    }
    return transport;
  };

  const runBatch = async (batch: Extract<ToWorker, { type: 'batch' }>) => {
    const transport = transportFor(batch.host, batch.address);
    const byPath = new Map(batch.entries.map((entry, index) => [entry.path, index]));
    // Page-aligned: the O_DIRECT writes need it, and the kernel copies faster from it.
    const gather = allocateAligned(GATHER);
    try {
      const { missing } = await streamFiles(
        transport,
        batch.directory,
        batch.entries.map((entry) => entry.path),
        async (path) => {
          const entry = byPath.get(path);
          if (entry === undefined) return { write: () => {}, end: () => {} };
          // Waited for only at the first write (after a megabyte gathered, or at the end):
          // the stream is not held up for a round trip to the main thread per object.
          const started = new Promise<void>((resolve) => {
            acknowledged.set(`${batch.id}:${entry}`, resolve);
            post({ type: 'start', id: batch.id, entry });
          });
          const targets = (batch.entries[entry]?.targets ?? []).map((region) =>
            sinkFor(region, started),
          );
          const writer = new RegionWriter(targets, gather, batch.entries[entry]?.checksum);
          return {
            write: async (chunk) => {
              await writer.write(chunk);
              unreported += chunk.byteLength;
              if (unreported >= PROGRESS_STEP) {
                post({ type: 'progress', bytes: unreported });
                unreported = 0;
              }
            },
            end: async () => {
              await writer.end();
              if (unreported > 0) post({ type: 'progress', bytes: unreported });
              unreported = 0;
              post({
                type: 'done',
                id: batch.id,
                entry,
                bytes: writer.received,
                checksum: writer.checksum,
              });
            },
          };
        },
        { stallTimeoutMs: setup.stallTimeoutMs },
      );
      post({ type: 'end', id: batch.id, missing, directBytes: writer.directBytes });
    } catch (error) {
      const { message, code } = error as { message?: string; code?: string };
      post({ type: 'end', id: batch.id, error: { message: String(message ?? error), code } });
    }
  };

  port.on('message', (message: ToWorker) => {
    if (message.type === 'batch') void runBatch(message);
    else if (message.type === 'connect') void transportFor(message.host, message.address).warm();
    else if (message.type === 'started') {
      const key = `${message.id}:${message.entry}`;
      const resolve = acknowledged.get(key);
      acknowledged.delete(key);
      resolve?.();
    } else if (message.type === 'close') {
      void Promise.all([...transports.values()].map((transport) => transport.close())).then(() => {
        transports.clear();
        post({ type: 'closed' });
        port.close();
      });
    }
  });
}

const setup = moduleWorkerData<TransferWorkerSetup>(TRANSFER_WORKER_TAG);
if (setup !== undefined) runTransferWorker(setup);
