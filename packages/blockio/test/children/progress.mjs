// Child for the renderer tests: reports a phase of work through the renderer that
// `--progress=<mode>` would pick, so the parent can run it on a real TTY or a pipe.
import { pathToFileURL } from 'node:url';

const [distIndex, mode] = process.argv.slice(2);
const { createProgressRenderer, ProgressTracker } = await import(pathToFileURL(distIndex).href);

const renderer = createProgressRenderer(mode);
const tracker = new ProgressTracker('copy', 4 << 20, renderer.listener, 0);
for (let step = 0; step < 4; step++) tracker.advance(1 << 20);
tracker.finish();
renderer.close();
process.stdout.write('end\n');
