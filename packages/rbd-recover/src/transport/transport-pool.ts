import { LOCAL_HOST, type OsdLocation } from '../hosts-file.js';
import { LocalTransport } from './local-transport.js';
import type { SshOptions } from './ssh-options.js';
import type { HostTransport } from './transport.js';

/** One transport per host, shared by its OSDs, opened on first use and closed together. */
export interface TransportPool {
  get(osd: OsdLocation): Promise<HostTransport>;
  close(): Promise<void>;
}

export function createTransportPool(ssh: SshOptions = {}): TransportPool {
  const transports = new Map<string, Promise<HostTransport>>();
  return {
    get(osd) {
      let transport = transports.get(osd.host);
      if (transport === undefined) {
        transport =
          osd.host === LOCAL_HOST || osd.ssh === undefined
            ? Promise.resolve(new LocalTransport())
            : import('./ssh-transport.js').then(
                ({ SshTransport }) =>
                  new SshTransport(osd.host, osd.ssh as NonNullable<OsdLocation['ssh']>, ssh),
              );
        transports.set(osd.host, transport);
      }
      return transport;
    },
    async close() {
      const all = [...transports.values()];
      transports.clear();
      await Promise.all(
        all.map(async (transport) => (await transport.catch(() => undefined))?.close()),
      );
    },
  };
}
