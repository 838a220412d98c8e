// What a demo step gets: a scratch directory and a few ways to tell the user what
// is going on. Output goes to stdout; the progress bar (TTY only) to stderr.
import { createProgressRenderer, formatSize } from '@x/blockio';

export function createDemoContext({ root, directory, title }) {
  const renderers = [];
  const tty = Boolean(process.stderr.isTTY);
  const context = {
    /** The repository root, for finding built apps (e.g. `apps/qcow2-cli/bin/...`). */
    root,
    /** An empty directory of the step's own. */
    directory,
    isTTY: tty,
    formatSize,
    heading(text) {
      console.log(`\n== ${text}`);
    },
    say(text) {
      console.log(`   ${text}`);
    },
    /**
     * A progress listener for a long call: a bar on a TTY, else one plain line at each
     * quarter of the work.
     */
    progress() {
      if (tty) {
        const renderer = createProgressRenderer('auto');
        renderers.push(renderer);
        return renderer.listener;
      }
      let printed = 0;
      return (event) => {
        if (event.total <= 0) return;
        const quarter = Math.floor((event.done * 4) / event.total);
        if (quarter <= printed) return;
        printed = quarter;
        console.log(
          `   ${event.phase}: ${quarter * 25}% (${formatSize(event.done)} of ${formatSize(event.total)}, ${formatSize(event.bytesPerSecond)}/s)`,
        );
      };
    },
    /** Runs `fn` and returns [result, milliseconds]. */
    async timed(fn) {
      const start = performance.now();
      const result = await fn();
      return [result, Math.round(performance.now() - start)];
    },
    fail(error) {
      context.close();
      const message = error?.describe?.() ?? error?.message ?? String(error);
      console.log(`   FAILED in ${title}: ${message}`);
    },
    close() {
      for (const renderer of renderers.splice(0)) renderer.close();
    },
  };
  return context;
}
