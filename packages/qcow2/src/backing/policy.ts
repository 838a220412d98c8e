import { dirname, isAbsolute, resolve as resolvePath } from 'node:path';
import { Qcow2Error } from '../errors.js';

/**
 * Whether opening an image may open the other files it names (backing files and
 * external data files). An image is untrusted input: its header can name any
 * path (`/dev/sda`, `/etc/shadow`), and reading through it would copy that
 * file's bytes into whatever we produce.
 *
 * - `deny` (the library default): refuse with BACKING_DENIED if the image names one.
 * - `allow`: open them (what qemu-img does).
 * - `ignore`: do not open the backing file; unallocated clusters read as zeros
 *   (an external data file is still required and is opened).
 */
export type BackingPolicy = 'deny' | 'allow' | 'ignore';

/**
 * Most backing files below the top image (so a chain holds at most this + 1
 * images); deeper chains are treated as a loop (QEMU has no useful limit).
 */
export const MAX_BACKING_DEPTH = 256;

/**
 * The one depth rule for opening a chain and for `backingChainInfo`: following
 * the backing file that `imagePath` names, to `depth` levels below the top, is
 * BACKING_LOOP past MAX_BACKING_DEPTH.
 */
export function checkBackingDepth(depth: number, imagePath: string): void {
  if (depth > MAX_BACKING_DEPTH) {
    throw new Qcow2Error(
      'BACKING_LOOP',
      `the backing chain is more than ${MAX_BACKING_DEPTH} backing files deep`,
      { path: imagePath, structure: 'backing file' },
    );
  }
}

const PROTOCOL_PREFIX =
  /^(json|nbd|nbd\+unix|nbd\+tcp|https?|ftps?|ssh|iscsi|rbd|gluster|nfs|sheepdog|vxhs|null-co|null-aio|vvfat|blkdebug|blkverify|quorum|throttle|copy-on-read|host_device|host_cdrom):/;

/**
 * The path a file name stored in `imagePath` refers to: absolute names as they
 * are, relative ones against the image's directory (as QEMU does). Names that
 * are QEMU protocol specifications (`nbd:`, `json:{...}`) are refused.
 */
export function resolveNamedFile(imagePath: string, name: string, what: string): string {
  const where = { path: imagePath, structure: what };
  if (name.length === 0) {
    throw new Qcow2Error('CORRUPT', `the ${what} name is empty`, where);
  }
  if (name.includes('\0')) {
    throw new Qcow2Error('CORRUPT', `the ${what} name contains a NUL byte`, where);
  }
  const stripped = name.startsWith('file:') ? name.slice('file:'.length) : name;
  if (PROTOCOL_PREFIX.test(stripped)) {
    throw new Qcow2Error(
      'UNSUPPORTED',
      `the ${what} "${name}" is a QEMU protocol specification, not a file; only local files are supported`,
      where,
    );
  }
  return isAbsolute(stripped) ? stripped : resolvePath(dirname(imagePath), stripped);
}

/** Throws BACKING_DENIED when the policy forbids opening a file the image names. */
export function checkPolicy(
  policy: BackingPolicy,
  imagePath: string,
  name: string,
  what: 'backing file' | 'external data file',
): void {
  if (policy !== 'deny') return;
  throw new Qcow2Error(
    'BACKING_DENIED',
    `the image names a ${what} "${name}" and the backing policy is "deny"; open it with backingPolicy "allow" (CLI: --backing allow) if you trust the image`,
    { path: imagePath, structure: what },
  );
}
