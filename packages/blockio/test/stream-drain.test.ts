import { PassThrough, Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { LineWriter } from '../src/cli/line-writer.js';
import { waitForDrain } from '../src/index.js';

/** A stream that takes one byte before it asks the writer to wait. */
function tinyStream(): PassThrough {
  return new PassThrough({ highWaterMark: 1 });
}

describe('waitForDrain', () => {
  it('resolves when the stream drains', async () => {
    const stream = tinyStream();
    expect(stream.write('more than one byte')).toBe(false);
    const waiting = waitForDrain(stream);
    stream.resume();
    await expect(waiting).resolves.toBeUndefined();
  });

  it('rejects with EPIPE when the stream closes first (a reader that went away)', async () => {
    const stream = tinyStream();
    stream.write('more than one byte');
    const waiting = waitForDrain(stream, { path: 'standard output' });
    stream.destroy();
    await expect(waiting).rejects.toMatchObject({ code: 'EPIPE', path: 'standard output' });
  });

  it('rejects at once for a stream already destroyed', async () => {
    const stream = tinyStream();
    stream.destroy();
    await expect(waitForDrain(stream)).rejects.toMatchObject({ code: 'EPIPE' });
  });

  it('rejects with EPIPE on an EPIPE error, EIO on another error', async () => {
    for (const [code, expected] of [
      ['EPIPE', 'EPIPE'],
      ['ENOSPC', 'EIO'],
    ] as const) {
      const stream = new Writable({
        highWaterMark: 1,
        write: (_chunk, _encoding, done) =>
          done(Object.assign(new Error(`write ${code}`), { code })),
      });
      stream.on('error', () => {});
      stream.write('bytes');
      await expect(waitForDrain(stream)).rejects.toMatchObject({ code: expected });
    }
  });

  it('rejects with ABORTED when the signal aborts, and removes its listeners', async () => {
    const stream = tinyStream();
    stream.write('more than one byte');
    const controller = new AbortController();
    const waiting = waitForDrain(stream, { signal: controller.signal });
    controller.abort();
    await expect(waiting).rejects.toMatchObject({ code: 'ABORTED' });
    expect(stream.listenerCount('drain')).toBe(0);
    expect(stream.listenerCount('close')).toBe(0);
  });
});

describe('LineWriter on a closed stream', () => {
  it('flush rejects with EPIPE instead of waiting for a drain that never comes', async () => {
    const stream = tinyStream();
    const writer = new LineWriter(stream);
    writer.write('x'.repeat(100));
    const flushing = writer.flush(true);
    stream.destroy();
    await expect(flushing).rejects.toMatchObject({ code: 'EPIPE' });
  });
});
