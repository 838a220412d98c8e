import { CephDecoder } from './decoder.js';

/**
 * Values cls_rbd keeps in omap (format 2 images): `rbd_id.<name>` data,
 * `rbd_directory` keys, `rbd_header.<id>` keys, and the cls_rbd_snap record.
 */

/** `rbd_id.<name>` data, and `name_<name>` / `id_<id>` values: u32 length + string. */
export function decodeRbdString(value: Uint8Array, structure: string, path?: string): string {
  return new CephDecoder(value, 'BAD_OMAP', structure, path).string(structure);
}

export function decodeU64(value: Uint8Array, structure: string, path?: string): bigint {
  return new CephDecoder(value, 'BAD_OMAP', structure, path).u64(structure);
}

export function decodeU8(value: Uint8Array, structure: string, path?: string): number {
  return new CephDecoder(value, 'BAD_OMAP', structure, path).u8(structure);
}

export interface ClsRbdSnapshot {
  readonly id: bigint;
  readonly name: string;
  readonly size: number;
}

/**
 * cls_rbd_snap (cls/rbd/cls_rbd.h): envelope, snap id, name, image_size, then newer
 * fields this tool does not need. The prefix layout is the same from v1 to v8 (Pacific).
 */
export function decodeClsRbdSnapshot(value: Uint8Array, path?: string): ClsRbdSnapshot {
  const { body } = new CephDecoder(value, 'BAD_OMAP', 'cls_rbd_snap', path).envelope(
    'cls_rbd_snap',
  );
  const id = body.u64('snap id');
  const name = body.string('snapshot name');
  const size = body.safeU64('image_size');
  return { id, name, size };
}

/**
 * The legacy TMAP data of `rbd_directory` (format 1 images): u32 header length,
 * header, u32 count, then count × (u32 length + name, u32 length + value).
 */
export function decodeTmapNames(data: Uint8Array, path?: string): string[] {
  if (data.byteLength === 0) return [];
  const decoder = new CephDecoder(data, 'BAD_HEADER', 'rbd_directory tmap', path);
  decoder.lengthPrefixed('tmap header');
  const count = decoder.count('tmap entries', 8);
  const names: string[] = [];
  for (let i = 0; i < count; i++) {
    names.push(decoder.string('tmap key'));
    decoder.lengthPrefixed('tmap value');
  }
  return names;
}
