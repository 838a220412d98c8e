import type { BackingPolicy } from '../backing/policy.js';
import type { SalvageLog } from '../read/salvage-log.js';
import type { Qcow2Image } from './qcow2-image.js';
import type { Qcow2WritePath } from './write-path.js';

/*
 * The options of openQcow2 and the state of a backing chain being opened, below
 * both open.ts and backing/open-backing.ts: the backing opener gets them (and
 * openInChain as a parameter) without importing open.ts back.
 */

/** Builds the write path for an image opened with `writable: true`. */
export type Qcow2WritePathFactory = (image: Qcow2Image) => Qcow2WritePath | Promise<Qcow2WritePath>;

export interface OpenQcow2Options {
  /** Open for writing (needs a write path). Default: read-only. */
  writable?: boolean | undefined;
  /** Show this internal snapshot (by id, else by name) instead of the active state; read-only. */
  snapshot?: string | undefined;
  /** May the image make us open the files it names? Default `deny` (see BackingPolicy). */
  backingPolicy?: BackingPolicy | undefined;
  /** Memory for cached L2 tables, per image in the chain. Default 32 MiB. */
  l2CacheBytes?: number | undefined;
  /** The writer to use for a writable open; default: the package's own. */
  writePath?: Qcow2WritePathFactory | undefined;
  /**
   * How the image's files are read (blockio's FileDevice `io`): `sync` (the default
   * for regular files) is cheapest per request; `async` reads on the thread pool, so
   * a copy overlaps reading with its synchronous writes (convert uses it).
   */
  io?: 'sync' | 'async' | undefined;
  /**
   * Read what QEMU reads where the image is damaged instead of refusing (read-only
   * opens): an L2 table or data cluster past the end of the file reads as zeros
   * there, and each guest range read that way is recorded in this log. Backing
   * images of the chain share it.
   */
  salvage?: SalvageLog | undefined;
}

/** Files already open in the chain being built, by device and inode, and the depth. */
export interface ChainState {
  readonly visited: Set<string>;
  readonly depth: number;
  /** Metadata memory (L1 tables and L2 caches) the whole chain has claimed so far. */
  readonly memory: { bytes: number };
}

/** Opens a qcow2 image of a backing chain (openInChain, passed down to the backing opener). */
export type OpenInChain = (
  path: string,
  options: OpenQcow2Options,
  chain: ChainState,
) => Promise<Qcow2Image>;
