import { spawn } from 'node:child_process';
import { stat, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  filesEqual,
  makeTempDir,
  requirePeer,
  runPeer,
  type SshdServer,
  startSshd,
  type TempDir,
} from '@x/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createInventory,
  loadInventory,
  type OsdLocation,
  parseHostsFile,
  recoverImage,
  type SshOptions,
} from '../src/index.js';
import { type ExtractedFixture, extractedFixture } from './support/ceph-fixture.js';

let fixture: ExtractedFixture;
let temp: TempDir;
let sshd: SshdServer;
let ssh: SshOptions;
let osds: OsdLocation[];
const workdir = () => temp.file('work');

beforeAll(async () => {
  fixture = await extractedFixture();
  temp = await makeTempDir('rbd-ssh-');
  sshd = await startSshd({ directory: temp.file('sshd') });
  ssh = { identity: sshd.userKey, knownHosts: sshd.knownHosts };
  // The two OSDs as two "hosts" (two names of one sshd), as in a real cluster.
  osds = parseHostsFile(
    `${sshd.username}@127.0.0.1:${sshd.port} ${fixture.osd0}\n${sshd.username}@localhost:${sshd.port} ${fixture.osd1}\n`,
  );
  const summary = await createInventory(osds, { workdir: workdir(), ssh });
  expect(summary.osds.map((osd) => [osd.status, osd.kvBackend, osd.error])).toEqual([
    ['scanned', 'leveldb', undefined],
    ['scanned', 'rocksdb', undefined],
  ]);
});

afterAll(async () => {
  await sshd?.stop();
  await temp?.remove();
});

describe('the real fixture served by a real sshd', () => {
  it('the inventory over SSH equals the one through local paths', async () => {
    const local = temp.file('local');
    await createInventory(
      [
        { host: 'local', dataPath: fixture.osd0 },
        { host: 'local', dataPath: fixture.osd1 },
      ],
      { workdir: local },
    );
    const a = await loadInventory(workdir());
    const b = await loadInventory(local);
    for (const [i, osd] of a.osds.entries()) {
      const other = b.osds[i];
      expect(osd.objects).toEqual(other?.objects);
      expect(osd.pgEpochs).toEqual(other?.pgEpochs);
      expect(osd.omap).toEqual(other?.omap);
      expect(osd.data).toEqual(other?.data);
      expect(osd.osdMap).toEqual(other?.osdMap);
    }
  });

  for (const name of ['img_v2.a', 'img_v2.a@s1', 'img_v2.a@s2', 'img_v1', 'img_v1@v1s1']) {
    it(`rebuilds ${name} equal to its rbd export`, async () => {
      const output = temp.file(`${name}.raw`);
      const report = await recoverImage(`rbd/${name}`, output, { workdir: workdir(), ssh });
      expect(report.complete).toBe(true);
      expect(await filesEqual(output, fixture.exportPath(name))).toBe(true);
    });
  }

  it('the stale OSD alone gives the pre-degrade head', async () => {
    const stale = temp.file('stale');
    await createInventory([osds[1] as OsdLocation], { workdir: stale, ssh });
    const output = temp.file('stale.raw');
    await recoverImage('rbd/img_v2.a', output, { workdir: stale, ssh });
    expect(await filesEqual(output, fixture.exportPath('img_v2.a.pre-degrade'))).toBe(true);
  });

  it('an unknown host key is refused unless accepted explicitly', async () => {
    const empty = temp.file('empty_known_hosts');
    await writeFile(empty, '');
    const summary = await createInventory([osds[0] as OsdLocation], {
      workdir: temp.file('unknown-key'),
      ssh: { ...ssh, knownHosts: empty },
    });
    expect(summary.osds[0]?.status).toBe('failed');
    expect(errorCode(summary.osds[0]?.error)).toBe('HOST_KEY_UNKNOWN');
    const accepted = await createInventory([osds[0] as OsdLocation], {
      workdir: temp.file('accepted-key'),
      ssh: { ...ssh, knownHosts: empty, acceptUnknownHostKey: true },
    });
    expect(accepted.osds[0]?.status).toBe('scanned');
  });

  it('a changed host key is HOST_KEY_MISMATCH; a key the server does not know is AUTH_FAILED', async () => {
    const wrong = temp.file('wrong_known_hosts');
    await writeFile(
      wrong,
      `[127.0.0.1]:${sshd.port} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n`,
    );
    const mismatch = await createInventory([osds[0] as OsdLocation], {
      workdir: temp.file('mismatch'),
      ssh: { ...ssh, knownHosts: wrong },
    });
    expect(errorCode(mismatch.osds[0]?.error)).toBe('HOST_KEY_MISMATCH');
    const otherKey = temp.file('sshd/host_ed25519'); // a valid key the server does not accept
    const refused = await createInventory([osds[0] as OsdLocation], {
      workdir: temp.file('refused'),
      ssh: { ...ssh, identity: otherKey },
    });
    expect(errorCode(refused.osds[0]?.error)).toBe('AUTH_FAILED');
  });

  it('authenticates through ssh-agent (SSH_AUTH_SOCK) when no key file is given', async () => {
    const socket = temp.file('agent.sock');
    const agent = spawn(requirePeer('ssh-agent'), ['-D', '-a', socket], { stdio: 'ignore' });
    const saved = process.env.SSH_AUTH_SOCK;
    try {
      for (let tries = 0; !(await stat(socket).catch(() => undefined)); tries++) {
        if (tries > 100 || agent.exitCode !== null) throw new Error('ssh-agent did not start');
        await sleep(50);
      }
      const added = await runPeer('ssh-add', [sshd.userKey], {
        env: { ...process.env, SSH_AUTH_SOCK: socket },
      });
      expect(added.code, added.stderr).toBe(0);
      process.env.SSH_AUTH_SOCK = socket;
      // No identity: the agent holds the only key the server accepts.
      const summary = await createInventory([osds[0] as OsdLocation], {
        workdir: temp.file('agent'),
        ssh: { knownHosts: sshd.knownHosts },
      });
      expect(summary.osds[0]?.error).toBeUndefined();
      expect(summary.osds[0]?.status).toBe('scanned');
    } finally {
      if (saved === undefined) delete process.env.SSH_AUTH_SOCK;
      else process.env.SSH_AUTH_SOCK = saved;
      agent.kill('SIGTERM');
    }
  });

  it('a host nobody listens on is HOST_UNREACHABLE after the retries', async () => {
    const [nobody] = parseHostsFile(`${sshd.username}@127.0.0.1:1 ${fixture.osd0}\n`);
    const summary = await createInventory([nobody as OsdLocation], {
      workdir: temp.file('unreachable'),
      ssh: { ...ssh, retries: 2, retryDelayMs: 10 },
    });
    expect(errorCode(summary.osds[0]?.error)).toBe('HOST_UNREACHABLE');
  });
});

function errorCode(error: unknown): string | undefined {
  return (error as { code?: string } | undefined)?.code;
}
