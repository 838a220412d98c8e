import { sizeOption, UsageError } from '@x/blockio/cli';
import type { ManualMetadata, SshOptions } from '@x/rbd-recover';

/** `--pool-name 1=rbd` (repeatable) → { '1': 'rbd' }. */
export function parsePoolNames(values: readonly string[] | undefined): Record<string, string> {
  const names: Record<string, string> = {};
  for (const value of values ?? []) {
    const match = /^(\d+)=(.+)$/.exec(value);
    if (!match) throw new UsageError(`--pool-name must be ID=NAME, not "${value}"`);
    names[match[1] as string] = match[2] as string;
  }
  return names;
}

export function parseCount(
  value: string | undefined,
  flag: string,
  max = 1024,
  min = 1,
): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new UsageError(`${flag} must be a whole number from ${min} to ${max}, not "${value}"`);
  }
  return Number(value);
}

export interface SshFlags {
  identity?: string;
  knownHosts?: string;
  insecureAcceptHostKey?: boolean;
  stallTimeout?: string;
  jobs?: string;
}

export function sshFromFlags(options: SshFlags): SshOptions {
  return {
    identity: options.identity,
    knownHosts: options.knownHosts,
    acceptUnknownHostKey: options.insecureAcceptHostKey ?? false,
  };
}

export function stallTimeoutMs(options: SshFlags): number | undefined {
  const seconds = parseCount(options.stallTimeout, '--stall-timeout', 86_400);
  return seconds === undefined ? undefined : seconds * 1000;
}

export interface MetadataFlags {
  prefix?: string;
  size?: string;
  order?: string;
}

export function manualFromFlags(options: MetadataFlags): ManualMetadata | undefined {
  if (options.prefix === undefined) {
    if (options.size !== undefined || options.order !== undefined) {
      throw new UsageError('--size and --order go with --prefix (the image is then named by hand)');
    }
    return undefined;
  }
  const order = options.order === undefined ? undefined : Number(options.order);
  if (order !== undefined && (!/^\d+$/.test(options.order ?? '') || order < 12 || order > 25)) {
    throw new UsageError(`--order must be from 12 to 25, not "${options.order}"`);
  }
  return {
    prefix: options.prefix,
    size: options.size === undefined ? undefined : sizeOption('--size')(options.size),
    order,
  };
}

/** A library error that means the command line was wrong becomes a usage error (exit 2). */
export async function asUsage<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if ((error as { code?: string }).code === 'BAD_SPEC')
      throw new UsageError((error as Error).message);
    throw error;
  }
}
