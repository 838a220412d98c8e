import { BlockIoError, type BlockIoErrorOptions } from '@x/blockio';

/**
 * Stable codes for what can go wrong while reading OSDs and rebuilding images.
 * Scripts and tests match on these; messages are for people.
 */
export type RbdRecoverErrorCode =
  /** A hosts file line that does not parse. */
  | 'BAD_HOSTS_FILE'
  /** A FileStore file name that does not follow the naming rules. */
  | 'BAD_NAME'
  /** An RBD format 1 header, rbd_id or rbd_directory that does not decode. */
  | 'BAD_HEADER'
  /** A SnapSet xattr that does not decode. */
  | 'BAD_SNAPSET'
  /** An omap entry (DBObjectMap header, cls_rbd value) that does not decode. */
  | 'BAD_OMAP'
  /** An OSD map file that does not decode. */
  | 'BAD_OSDMAP'
  /** getfattr output that does not parse. */
  | 'BAD_XATTR_DUMP'
  /** An image spec that is not `<pool>/[<namespace>/]<image>[@<snap>]`, or bad manual metadata. */
  | 'BAD_SPEC'
  /** A pool, namespace, image or snapshot that the inventory does not hold. */
  | 'NOT_FOUND'
  /** A name that matches more than one image or pool. */
  | 'AMBIGUOUS'
  /** ceph-osd is still running on the data path: reading it now would give torn data. */
  | 'OSD_RUNNING'
  /** A program the tool runs on a host (getfattr, find, tar) is missing there. */
  | 'MISSING_TOOL'
  /** A host that cannot be reached or refuses the connection. */
  | 'HOST_UNREACHABLE'
  /** The SSH server refused every key offered. */
  | 'AUTH_FAILED'
  /** The host key is not in known_hosts (or differs from it). */
  | 'HOST_KEY_UNKNOWN'
  | 'HOST_KEY_MISMATCH'
  /** A command or transfer on a host failed. */
  | 'REMOTE_FAILED'
  /** A transfer delivered no bytes for longer than the stall timeout. */
  | 'STALLED'
  /** Another run holds the lock of this output or working directory. */
  | 'LOCKED'
  /** No inventory in the working directory: run `database` first. */
  | 'NO_INVENTORY'
  /** An inventory or state file that is not ours, or of another version. */
  | 'BAD_INVENTORY'
  | 'BAD_STATE'
  /** Something this tool does not handle (striping v2, separate data pools…). */
  | 'UNSUPPORTED';

export interface RbdRecoverErrorOptions extends BlockIoErrorOptions {
  /** The host (as in the hosts file) the problem is on, when there is one. */
  host?: string | undefined;
}

/** Every error from @x/rbd-recover: a BlockIoError with a recovery-specific code and the host. */
export class RbdRecoverError extends BlockIoError {
  readonly host: string | undefined;

  constructor(code: RbdRecoverErrorCode, message: string, options: RbdRecoverErrorOptions = {}) {
    super(code, message, {
      ...options,
      path:
        options.host !== undefined && options.host !== 'local' && options.path !== undefined
          ? `${options.host}:${options.path}`
          : options.path,
    });
    this.host = options.host;
  }

  /** The one-line description, ending with the stable code scripts can match. */
  override describe(): string {
    const host = this.host !== undefined && this.path === undefined ? `${this.host}: ` : '';
    return `${host}${super.describe()} [${this.code}]`;
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), host: this.host };
  }
}

export function isRbdRecoverError(error: unknown): error is RbdRecoverError {
  return error instanceof RbdRecoverError;
}
