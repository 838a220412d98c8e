import { constants } from 'node:fs';
import { open, readdir, readFile, realpath, stat } from 'node:fs/promises';

/** A mount of the filesystem on a device (or on a loop device backed by a file). */
export interface MountUse {
  readonly mountPoint: string;
  readonly readOnly: boolean;
  /** The device the kernel mounted ("/dev/sdb1", "/dev/loop3"). */
  readonly source: string;
}

/** What else is using a device or image file, as far as Linux tells (empty elsewhere). */
export interface DeviceUse {
  readonly mounts: MountUse[];
  /** Loop devices attached to the file. */
  readonly loopDevices: string[];
  /** An exclusive open of the block device failed with EBUSY (mounted, in a RAID, held by dm…). */
  readonly exclusiveOpenRefused: boolean;
}

/**
 * e2image's ext2fs_check_if_mounted, extended to images: mounts of the device
 * itself, and of loop devices whose backing file is `path`.
 */
export async function deviceUse(path: string): Promise<DeviceUse> {
  const info = await stat(path).catch(() => undefined);
  if (!info || process.platform !== 'linux') {
    return { mounts: [], loopDevices: [], exclusiveOpenRefused: false };
  }
  const devices = new Set<string>();
  const loopDevices: string[] = [];
  let exclusiveOpenRefused = false;
  if (info.isBlockDevice()) {
    devices.add(majorMinor(info.rdev));
    exclusiveOpenRefused = await refusesExclusiveOpen(path);
  } else if (info.isFile()) {
    const real = await realpath(path);
    for (const loop of await loopsBackedBy(real)) {
      loopDevices.push(`/dev/${loop.name}`);
      devices.add(loop.dev);
    }
  }
  const mounts: MountUse[] = [];
  const mountinfo = await readFile('/proc/self/mountinfo', 'utf8').catch(() => '');
  for (const line of mountinfo.split('\n')) {
    const fields = line.split(' ');
    const separator = fields.indexOf('-');
    if (separator < 0 || !devices.has(fields[2] ?? '')) continue;
    const mountOptions = (fields[5] ?? '').split(',');
    const superOptions = (fields[separator + 3] ?? '').split(',');
    mounts.push({
      mountPoint: unescapeMountField(fields[4] ?? ''),
      readOnly: mountOptions.includes('ro') || superOptions.includes('ro'),
      source: unescapeMountField(fields[separator + 2] ?? ''),
    });
  }
  return { mounts, loopDevices, exclusiveOpenRefused };
}

function majorMinor(rdev: number): string {
  const major = Math.floor(rdev / 256) & 0xfff;
  const minor = (rdev & 0xff) | (Math.floor(rdev / 4096) & ~0xff);
  return `${major}:${minor}`;
}

async function loopsBackedBy(file: string): Promise<Array<{ name: string; dev: string }>> {
  const names = await readdir('/sys/block').catch(() => [] as string[]);
  const result: Array<{ name: string; dev: string }> = [];
  for (const name of names) {
    if (!name.startsWith('loop')) continue;
    const backing = await readFile(`/sys/block/${name}/loop/backing_file`, 'utf8').catch(() => '');
    if (backing.trim() !== file) continue;
    const dev = await readFile(`/sys/block/${name}/dev`, 'utf8').catch(() => '');
    result.push({ name, dev: dev.trim() });
  }
  return result;
}

async function refusesExclusiveOpen(path: string): Promise<boolean> {
  try {
    const handle = await open(path, constants.O_RDONLY | constants.O_EXCL);
    await handle.close();
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EBUSY';
  }
}

/** mountinfo escapes spaces and friends as \ooo. */
function unescapeMountField(text: string): string {
  return text.replace(/\\([0-7]{3})/g, (_, octal: string) =>
    String.fromCharCode(Number.parseInt(octal, 8)),
  );
}

/** True when the device is in use in a way that writing to it would corrupt. */
export function isBusy(use: DeviceUse): boolean {
  return use.mounts.length > 0 || use.loopDevices.length > 0 || use.exclusiveOpenRefused;
}
