// Child for the SIGKILL test: replaces `target` through createOutputFile (overwrite)
// and keeps writing without ever committing, announcing on stdout once it has
// written `announceAfter` bytes. The parent kills it with SIGKILL.
import { pathToFileURL } from 'node:url';

const [distIndex, target, announceAfter] = process.argv.slice(2);
const { createOutputFile } = await import(pathToFileURL(distIndex).href);

const output = await createOutputFile(target, { overwrite: true });
const chunk = Buffer.alloc(1 << 20, 0xab);
let written = 0;
let announced = false;
for (;;) {
  await output.device.write(written % (64 << 20), chunk);
  written += chunk.byteLength;
  if (!announced && written >= Number(announceAfter)) {
    announced = true;
    process.stdout.write(`writing ${output.partialPath}\n`);
  }
}
