import { CephDecoder } from './decoder.js';

/**
 * Pool names from a full OSD map (`meta/osdmap.<epoch>__0_<hash>__none`), OSDMap::encode
 * on Pacific: outer envelope, client-usable envelope with fsid, epoch, created,
 * modified, pools (each pg_pool_t skipped by its length), then pool_name.
 */
export interface OsdMapPools {
  readonly epoch: number;
  /** Pool id → name. */
  readonly names: ReadonlyMap<number, string>;
}

export function decodeOsdMapPools(data: Uint8Array, path?: string): OsdMapPools {
  const outer = new CephDecoder(data, 'BAD_OSDMAP', 'OSD map', path).envelope('OSD map');
  const client = outer.body.envelope('OSD map client section');
  const body = client.body;
  if (client.version < 7) {
    throw body.fail(`client section version ${client.version}: only maps of Luminous and later`, 0);
  }
  body.bytes(16, 'fsid');
  const epoch = body.u32('epoch');
  body.bytes(16, 'created and modified');
  const poolCount = body.count('pools', 14);
  for (let i = 0; i < poolCount; i++) {
    body.i64('pool id');
    body.envelope('pg_pool_t');
  }
  const nameCount = body.count('pool_name', 12);
  const names = new Map<number, string>();
  for (let i = 0; i < nameCount; i++) {
    const id = Number(body.i64('pool id'));
    names.set(id, body.string('pool name'));
  }
  return { epoch, names };
}
