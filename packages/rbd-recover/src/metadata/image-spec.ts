import { RbdRecoverError } from '../errors.js';
import type { ImageSpec } from './image-types.js';

/**
 * Parses `<pool>/[<namespace>/]<image>[@<snap>]`. RBD image names cannot hold `/`
 * or `@`, so the first `/` ends the pool, a second one the namespace, and the first
 * `@` after the last `/` starts the snapshot name (which may itself hold `@`).
 */
export function parseImageSpec(text: string): ImageSpec {
  const first = text.indexOf('/');
  if (first <= 0)
    throw new RbdRecoverError('BAD_SPEC', `"${text}" is not <pool>/[<namespace>/]<image>[@<snap>]`);
  const pool = text.slice(0, first);
  let rest = text.slice(first + 1);
  let namespace = '';
  const second = rest.indexOf('/');
  if (second >= 0) {
    namespace = rest.slice(0, second);
    rest = rest.slice(second + 1);
  }
  const at = rest.indexOf('@');
  const image = at < 0 ? rest : rest.slice(0, at);
  const snapshot = at < 0 ? undefined : rest.slice(at + 1);
  if (image === '') throw new RbdRecoverError('BAD_SPEC', `"${text}" names no image`);
  if (snapshot === '') throw new RbdRecoverError('BAD_SPEC', `"${text}" names an empty snapshot`);
  return { pool, namespace, image, snapshot };
}
