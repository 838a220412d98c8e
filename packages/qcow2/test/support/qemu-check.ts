import { runPeer } from '@x/test-utils';

/** What `qemu-img check --output=json` says about an image. */
export interface QemuCheck {
  code: number;
  json: Record<string, unknown> | undefined;
  /** cluster → [refcount, reference] from "Leaked cluster N refcount=R reference=C". */
  leaked: Map<number, [number, number]>;
  /** cluster → [refcount, reference] from "ERROR cluster N refcount=R reference=C". */
  errors: Map<number, [number, number]>;
  stderr: string;
}

export async function qemuCheck(path: string, ...extra: string[]): Promise<QemuCheck> {
  const result = await runPeer('qemu-img', ['check', '--output=json', ...extra, path]);
  let json: Record<string, unknown> | undefined;
  try {
    json = JSON.parse(result.stdout) as Record<string, unknown>;
  } catch {
    json = undefined;
  }
  const leaked = new Map<number, [number, number]>();
  const errors = new Map<number, [number, number]>();
  for (const match of result.stderr.matchAll(
    /(Leaked|ERROR) cluster (\d+) refcount=(\d+) reference=(\d+)/g,
  )) {
    const target = match[1] === 'Leaked' ? leaked : errors;
    target.set(Number(match[2]), [Number(match[3]), Number(match[4])]);
  }
  return { code: result.code, json, leaked, errors, stderr: result.stderr };
}
