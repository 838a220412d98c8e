/** RBD's own objects whose omap `database` keeps (cls_rbd keeps image metadata there). */
export function wantsOmap(name: string): boolean {
  return (
    name === 'rbd_directory' ||
    name === 'rbd_namespace' ||
    name === 'rbd_info' ||
    name.startsWith('rbd_header.')
  );
}

/** RBD's own objects whose (small) data `database` keeps. */
export function wantsData(name: string): boolean {
  return name === 'rbd_directory' || name.startsWith('rbd_id.') || name.endsWith('.rbd');
}

/** Data objects are never kept whole: a metadata object bigger than this is not one. */
export const METADATA_DATA_LIMIT = 4 << 20;
