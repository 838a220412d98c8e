import type { KvStore } from '../../src/index.js';

/** Every entry the reader returns, as `[hex key, hex value]`. */
export async function readAll(
  store: KvStore,
  options?: Parameters<KvStore['entries']>[0],
): Promise<Array<[string, string]>> {
  const out: Array<[string, string]> = [];
  for await (const { key, value } of store.entries(options))
    out.push([key.toString('hex'), value.toString('hex')]);
  return out;
}
