// The floor of recover's transport in this process model: one Node process, ssh2 (pure
// JS) with the settings recover uses (aes128-gcm, TCP_NODELAY), reading the same
// `xargs -0 cat` stream as the `ssh cat` peer, to nowhere (no tar, no checksum, no
// writes). bench.mjs runs it as an information row: what is left between it and
// `ssh cat` is ssh2's, not recover's.
//
//   node ssh2-floor.mjs <host> <port> <user> <key file> <known_hosts> <NUL-separated list>
import { readFileSync } from 'node:fs';
import { Client } from 'ssh2';

const [host, port, username, key, knownHosts, listFile] = process.argv.slice(2);
const paths = readFileSync(listFile, 'latin1').split('\0').filter(Boolean);
// The host key must be the one in known_hosts (as for recover), compared as base64.
const known = readFileSync(knownHosts, 'utf8')
  .split('\n')
  .map((line) => line.trim().split(/\s+/)[2])
  .filter(Boolean);
const client = new Client();
await new Promise((resolve, reject) => {
  client.on('ready', resolve).on('error', reject);
  client.connect({
    host,
    port: Number(port),
    username,
    privateKey: readFileSync(key),
    hostVerifier: (hostKey) => known.includes(hostKey.toString('base64')),
    algorithms: { cipher: ['aes128-gcm@openssh.com'] },
  });
  client.setNoDelay(true);
});
let bytes = 0;
await new Promise((resolve, reject) => {
  client.exec('xargs -0 cat --', (error, channel) => {
    if (error) return reject(error);
    channel.on('data', (chunk) => {
      bytes += chunk.byteLength;
    });
    channel.on('close', resolve);
    channel.end(`${paths.join('\0')}\0`);
  });
});
client.end();
if (bytes === 0) {
  console.error('ssh2-floor: no bytes read');
  process.exit(1);
}
