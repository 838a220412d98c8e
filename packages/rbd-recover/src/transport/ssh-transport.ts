import { RbdRecoverError } from '../errors.js';
import type { SshAddress } from '../hosts-file.js';
import type { SshOptions } from './ssh-options.js';
import type { HostTransport, RunningCommand } from './transport.js';

/** Commands on an OSD host over SSH. */
export class SshTransport implements HostTransport {
  readonly host: string;

  constructor(host: string, _address: SshAddress, _options: SshOptions) {
    this.host = host;
  }

  async run(): Promise<RunningCommand> {
    throw new RbdRecoverError('UNSUPPORTED', 'SSH transport not built yet', { host: this.host });
  }

  async close(): Promise<void> {}
}
