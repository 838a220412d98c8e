import { PassThrough, Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { readChunks } from '../src/transport/read-chunks.js';

describe('readChunks', () => {
  it('yields the chunks as they came, the same buffers, not joined, with back-pressure', async () => {
    const chunks = Array.from({ length: 200 }, (_, k) => Buffer.alloc(1000 + k, k));
    const stream = new PassThrough();
    for (const chunk of chunks) stream.write(chunk);
    stream.end();
    const seen: Buffer[] = [];
    for await (const chunk of readChunks(stream)) {
      seen.push(chunk);
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(seen.length).toBe(chunks.length);
    expect(seen.every((chunk, k) => chunk.equals(chunks[k] as Buffer))).toBe(true);
  });

  it('rejects with the stream error, and on a close before the end', async () => {
    const failing = new Readable({ read() {} });
    failing.push(Buffer.from('a'));
    setImmediate(() => failing.destroy(new Error('boom')));
    await expect(async () => {
      for await (const _ of readChunks(failing)) {
        // drain
      }
    }).rejects.toThrow('boom');
    const cut = new Readable({ read() {} });
    setImmediate(() => cut.destroy());
    await expect(async () => {
      for await (const _ of readChunks(cut)) {
        // drain
      }
    }).rejects.toMatchObject({ code: 'ERR_STREAM_PREMATURE_CLOSE' });
  });
});
