import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { LineWriter, sizeOption, UsageError } from '../src/cli/index.js';

describe('sizeOption', () => {
  const clusterSize = sizeOption('--cluster-size');

  it('reads what parseSize reads', () => {
    expect(clusterSize('64k')).toBe(65536);
    expect(clusterSize('2M')).toBe(2 << 20);
    expect(clusterSize('0x1000')).toBe(4096);
    expect(clusterSize('512')).toBe(512);
  });

  it.each([
    ['big', /^invalid --cluster-size "big": expected bytes/],
    ['0.1K', /^invalid --cluster-size "0.1K": not a whole number of bytes$/],
    ['99999999999P', /^--cluster-size "99999999999P" is beyond 2\^53 - 1 bytes$/],
  ])('throws a UsageError naming the option and %s', (text, message) => {
    let thrown: unknown;
    try {
      clusterSize(text);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(UsageError);
    expect((thrown as UsageError).code).toBe('USAGE');
    expect((thrown as UsageError).message).toMatch(message);
  });
});

/** A sink that accepts 1 KiB before asking writers to wait, and drains only when told. */
function slowSink() {
  const chunks: string[] = [];
  const pending: Array<() => void> = [];
  const stream = new Writable({
    highWaterMark: 1024,
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(chunk.toString());
      pending.push(callback);
    },
  });
  const release = () => {
    for (const callback of pending.splice(0)) callback();
  };
  return { stream, chunks, release };
}

describe('LineWriter', () => {
  it('buffers lines until about 64 KiB, then writes them as one chunk', async () => {
    const { stream, chunks, release } = slowSink();
    const out = new LineWriter(stream);
    out.write('first');
    await out.flush();
    expect(chunks).toEqual([]);
    const line = 'x'.repeat(1023);
    for (let i = 0; i < 64; i++) out.write(line);
    const flushed = out.flush();
    expect(chunks).toHaveLength(1);
    expect(chunks[0]).toBe(`first\n${`${line}\n`.repeat(64)}`);
    release();
    await flushed;
  });

  it('waits for the stream to drain before flush resolves', async () => {
    const { stream, release } = slowSink();
    const out = new LineWriter(stream);
    out.write('x'.repeat(2048));
    let resolved = false;
    const flushed = out.flush(true).then(() => {
      resolved = true;
    });
    await new Promise((resolve) => setImmediate(resolve));
    expect(resolved).toBe(false);
    release();
    await flushed;
    expect(resolved).toBe(true);
  });

  it('flush(true) writes whatever is buffered; nothing buffered writes nothing', async () => {
    const { stream, chunks, release } = slowSink();
    const out = new LineWriter(stream);
    await out.flush(true);
    expect(chunks).toEqual([]);
    out.write('a');
    out.write('b');
    await out.flush(true);
    expect(chunks).toEqual(['a\nb\n']);
    release();
  });
});
