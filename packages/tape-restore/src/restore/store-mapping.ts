import { TapeRestoreError } from '../errors.js';
import { isSafeId } from '../snapshot-name.js';

/** PBS's datastore mapping (§9 Entry point): a default target and/or `source=target`. */
export interface StoreMapping {
  readonly defaultTarget: string | undefined;
  readonly explicit: ReadonlyMap<string, string>;
}

/** Parses `target`, `source=target` and comma lists of both (at most one default). */
export function parseStoreMapping(text: string): StoreMapping {
  const explicit = new Map<string, string>();
  let defaultTarget: string | undefined;
  const bad = (why: string) =>
    new TapeRestoreError('BAD_DATASTORE', `store mapping "${text}": ${why}`, {
      structure: 'store mapping',
    });
  for (const part of text.split(',').map((p) => p.trim())) {
    if (part === '') throw bad('empty entry');
    const eq = part.indexOf('=');
    if (eq < 0) {
      if (defaultTarget !== undefined) throw bad('more than one default target');
      if (!isSafeId(part)) throw bad(`"${part}" is not a datastore name`);
      defaultTarget = part;
      continue;
    }
    const source = part.slice(0, eq);
    const target = part.slice(eq + 1);
    if (!isSafeId(source) || !isSafeId(target)) throw bad(`"${part}" is not source=target`);
    if (explicit.has(source)) throw bad(`source "${source}" is mapped twice`);
    explicit.set(source, target);
  }
  return { defaultTarget, explicit };
}

/** The target of a source store: its explicit mapping, else the default, else undefined. */
export function targetStore(mapping: StoreMapping, source: string): string | undefined {
  return mapping.explicit.get(source) ?? mapping.defaultTarget;
}
