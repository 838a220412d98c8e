export { S_IFDIR } from '../../src/format/pxar.js';
/** A symlink's file type bits, for a pxar entry the decoder must refuse. */
export const S_IFLNK_FOR_TEST = 0o120000;
