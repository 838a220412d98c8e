import { waitForDrain } from '../stream-drain.js';

/**
 * Buffers output lines (stdout by default) and writes them in chunks of about
 * 64 KiB, waiting for the stream to drain, so a dump of millions of entries into a
 * slow pipe stays in bounded memory. Call `flush()` after each batch of `write`s
 * and `flush(true)` at the end. A flush rejects with EPIPE once the stream has closed.
 */
export class LineWriter {
  readonly #stream: NodeJS.WritableStream;
  #lines: string[] = [];
  #bytes = 0;

  constructor(stream: NodeJS.WritableStream = process.stdout) {
    this.#stream = stream;
  }

  write(line: string): void {
    this.#lines.push(line);
    this.#bytes += line.length + 1;
  }

  /** Writes what is buffered once enough has piled up (or `force`), then waits for a drain. */
  async flush(force = false): Promise<void> {
    if (this.#lines.length === 0 || (!force && this.#bytes < 1 << 16)) return;
    const chunk = `${this.#lines.join('\n')}\n`;
    this.#lines = [];
    this.#bytes = 0;
    // A reader that went away (`| head`) never drains: waitForDrain rejects (EPIPE).
    if (!this.#stream.write(chunk)) await waitForDrain(this.#stream);
  }
}
