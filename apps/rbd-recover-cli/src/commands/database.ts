import type { Command } from 'commander';
import {
  addExamples,
  type CommonOptions,
  jsonOption,
  poolNameOption,
  progressOption,
  sshOptions,
  workdirOption,
} from './common.js';

export interface DatabaseOptions extends CommonOptions {
  hosts: string;
  identity?: string;
  knownHosts?: string;
  insecureAcceptHostKey?: boolean;
  stallTimeout?: string;
  jobs?: string;
  fresh?: boolean;
}

export function registerDatabase(program: Command): void {
  const command = program
    .command('database')
    .summary('read every OSD once and keep the inventory in the working directory')
    .description(
      'Reads every OSD of the hosts file at once: refuses an OSD whose ceph-osd runs, lists its ' +
        'object files (one streamed find), parses their names, reads PG epochs and RBD metadata from ' +
        'its omap store and pool names from its newest OSD map, and keeps one inventory file per OSD ' +
        'in <workdir>/rbd-recover-inventory/. A rerun keeps the OSDs an earlier run finished ' +
        '(--fresh reads them all again). Hosts file: one "<host> <OSD data path>" per line; ' +
        'several lines for several OSDs of a host; # comments; user@host:port; host "local" for a ' +
        'data path on this machine.',
    )
    .requiredOption('--hosts <file>', "the hosts file (as the original tool's osd_host_path)")
    .option('-j, --jobs <n>', 'OSDs read at the same time (default 4)')
    .option('--fresh', 'read every OSD again, even those an earlier run finished');
  workdirOption(command);
  sshOptions(command);
  poolNameOption(command);
  jsonOption(command);
  progressOption(command);
  command.action(async (options: DatabaseOptions) => {
    const { runCommand } = await import('@x/blockio/cli');
    await runCommand(
      { program: 'rbd-recover', json: options.json, progress: options.progress },
      async (context) => {
        const { runDatabase } = await import('./database-run.js');
        return runDatabase(options, context);
      },
    );
  });
  addExamples(command, [
    'rbd-recover database --hosts osds.txt',
    'rbd-recover database --hosts osds.txt -i ~/.ssh/recovery_ed25519 -j 8',
    'echo "local /mnt/disk1/ceph-3" > osds.txt && rbd-recover database --hosts osds.txt --workdir /srv/rescue',
  ]);
}
