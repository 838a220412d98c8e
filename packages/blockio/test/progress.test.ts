import { execFile } from 'node:child_process';
import { requirePeer } from '@x/test-utils';
import { describe, expect, it } from 'vitest';
import {
  copy,
  createProgressRenderer,
  jsonLinesRenderer,
  MemoryDevice,
  type ProgressEvent,
  type ProgressRenderer,
  ProgressTracker,
  ttyRenderer,
} from '../src/index.js';
import { childScript, distEntry, MiB } from './support/files.js';

function recorder() {
  const events: ProgressEvent[] = [];
  return { events, listener: (event: ProgressEvent) => events.push(event) };
}

function fakeStream(isTTY: boolean, colours = false) {
  const chunks: string[] = [];
  return {
    chunks,
    stream: {
      isTTY,
      columns: 100,
      hasColors: () => colours,
      write: (chunk: string) => chunks.push(chunk),
    },
  };
}

describe('ProgressTracker', () => {
  it('reports the one event shape, with integer rates and times', () => {
    const { events, listener } = recorder();
    const tracker = new ProgressTracker('scan', 300, listener, 0);
    tracker.advance(100);
    tracker.set(250);
    tracker.finish();
    expect(events.map((event) => [event.phase, event.done, event.total])).toEqual([
      ['scan', 100, 300],
      ['scan', 250, 300],
      ['scan', 250, 300],
    ]);
    for (const event of events) {
      expect(Object.keys(event)).toEqual(['phase', 'done', 'total', 'bytesPerSecond', 'elapsedMs']);
      expect(Number.isInteger(event.bytesPerSecond) && event.bytesPerSecond >= 0).toBe(true);
      expect(Number.isInteger(event.elapsedMs) && event.elapsedMs >= 0).toBe(true);
    }
  });

  it('throttles hot loops to the interval but always reports the end', () => {
    const { events, listener } = recorder();
    const tracker = new ProgressTracker('copy', 1000, listener, 3_600_000);
    for (let i = 0; i < 1000; i++) tracker.advance(1);
    tracker.finish();
    expect(events.map((event) => event.done)).toEqual([1, 1000]);
  });

  it('carries its unit on every event when given one, none when not', () => {
    const { events, listener } = recorder();
    const inodes = new ProgressTracker('scan inodes', 8, listener, {
      intervalMs: 0,
      unit: 'items',
    });
    inodes.advance(4);
    inodes.finish();
    const bytes = new ProgressTracker('copy', 4096, listener, { unit: 'bytes' });
    bytes.finish();
    const unsaid = new ProgressTracker('copy', 4096, listener, 0);
    unsaid.finish();
    expect(events.map((event) => [event.phase, event.unit])).toEqual([
      ['scan inodes', 'items'],
      ['scan inodes', 'items'],
      ['copy', 'bytes'],
      ['copy', undefined],
    ]);
    expect(Object.keys(events[0] as ProgressEvent)).toEqual([
      'phase',
      'done',
      'total',
      'unit',
      'bytesPerSecond',
      'elapsedMs',
    ]);
    expect([inodes.unit, bytes.unit, unsaid.unit]).toEqual(['items', 'bytes', 'bytes']);
  });

  it('is what copy reports: monotonic, ending at the total', async () => {
    const { events, listener } = recorder();
    const source = new MemoryDevice(8 * MiB);
    source.bytes.fill(1, MiB, 3 * MiB);
    await copy(source, new MemoryDevice(8 * MiB), { onProgress: listener, phase: 'mirror' });
    expect(events.length).toBeGreaterThanOrEqual(1);
    expect(events.at(-1)).toMatchObject({ phase: 'mirror', done: 8 * MiB, total: 8 * MiB });
    const dones = events.map((event) => event.done);
    expect(dones).toEqual([...dones].sort((a, b) => a - b));
  });
});

describe('progress renderers', () => {
  it('writes JSON lines of exactly the documented shape', () => {
    const { chunks, stream } = fakeStream(false);
    const renderer = jsonLinesRenderer(stream);
    renderer.listener({ phase: 'copy', done: 5, total: 10, bytesPerSecond: 7, elapsedMs: 3 });
    renderer.close();
    expect(chunks).toEqual([
      '{"event":"progress","phase":"copy","done":5,"total":10,"bytesPerSecond":7,"elapsedMs":3}\n',
    ]);
  });

  it('sends --json progress to the JSON stream and nothing to stderr', () => {
    const stderr = fakeStream(true, true);
    const stdout = fakeStream(false);
    const renderer = createProgressRenderer('json', {
      stream: stderr.stream,
      jsonStream: stdout.stream,
    });
    renderer.listener({ phase: 'copy', done: 1, total: 1, bytesPerSecond: 0, elapsedMs: 0 });
    expect(stderr.chunks).toEqual([]);
    expect(JSON.parse(stdout.chunks[0] as string)).toMatchObject({ event: 'progress', done: 1 });
  });

  it('draws a bar only on a TTY in auto mode; always/never override', () => {
    const event = { phase: 'copy', done: 1, total: 2, bytesPerSecond: 1024, elapsedMs: 1000 };
    const pipe = fakeStream(false);
    createProgressRenderer('auto', { stream: pipe.stream }).listener(event);
    expect(pipe.chunks).toEqual([]);

    const tty = fakeStream(true);
    const bar = createProgressRenderer('auto', { stream: tty.stream });
    bar.listener(event);
    const drawn = tty.chunks.join('');
    expect(drawn.startsWith('\r\x1b[2K')).toBe(true);
    expect(drawn.endsWith(' 50.0% copy 1 B / 2 B 1.00 KiB/s ETA 0s')).toBe(true);
    bar.close();
    expect(tty.chunks.at(-1)).toBe('\r\x1b[2K');

    const forced = fakeStream(false);
    createProgressRenderer('always', { stream: forced.stream }).listener(event);
    expect(forced.chunks.length).toBe(1);
    const silenced = fakeStream(true);
    createProgressRenderer('never', { stream: silenced.stream }).listener(event);
    expect(silenced.chunks).toEqual([]);
  });

  it('always, into a file or pipe: whole lines without escape codes (what follows starts clean)', () => {
    const log = fakeStream(false);
    const renderer = createProgressRenderer('always', { stream: log.stream });
    renderer.listener({ phase: 'copy', done: 1, total: 4, bytesPerSecond: 1024, elapsedMs: 1 });
    renderer.listener({ phase: 'copy', done: 2, total: 4, bytesPerSecond: 1024, elapsedMs: 2 });
    renderer.listener({ phase: 'copy', done: 4, total: 4, bytesPerSecond: 1024, elapsedMs: 3 });
    renderer.listener({ phase: 'copy', done: 4, total: 4, bytesPerSecond: 1000, elapsedMs: 4 });
    renderer.close();
    // The second event comes within a second of the first: only the first and the end,
    // which is reported twice and printed once.
    expect(log.chunks).toEqual([
      'copy 25.0% 1 B / 4 B 1.00 KiB/s\n',
      'copy 100.0% 4 B / 4 B 1.00 KiB/s\n',
    ]);
  });

  it('ttyRenderer counts bytes unless told otherwise, as createProgressRenderer does', () => {
    const event = { phase: 'copy', done: 1536, total: 3072, bytesPerSecond: 1024, elapsedMs: 1 };
    const bare = fakeStream(true);
    ttyRenderer(bare.stream).listener(event);
    const chosen = fakeStream(true);
    createProgressRenderer('always', { stream: chosen.stream }).listener(event);
    expect(bare.chunks.join('')).toContain('copy 1.50 KiB / 3.00 KiB 1.00 KiB/s');
    expect(bare.chunks).toEqual(chosen.chunks);
    const items = fakeStream(true);
    ttyRenderer(items.stream, 'items').listener(event);
    expect(items.chunks.join('')).toContain('copy 1536 / 3072');
  });

  it("ttyRenderer follows each event's unit over its own, phase by phase", () => {
    // Finished phases, so the redraw throttle lets every event through.
    const inodes = { phase: 'scan inodes', done: 2048, total: 2048, bytesPerSecond: 512 };
    const copied = { phase: 'copy', done: 3072, total: 3072, bytesPerSecond: 1024 };
    const lines = (
      renderer: (stream: ReturnType<typeof fakeStream>['stream']) => ProgressRenderer,
    ) => {
      const tty = fakeStream(true);
      const { listener } = renderer(tty.stream);
      listener({ ...inodes, unit: 'items', elapsedMs: 4000 });
      listener({ ...copied, unit: 'bytes', elapsedMs: 3000 });
      return tty.chunks;
    };
    for (const chunks of [
      lines((stream) => ttyRenderer(stream)),
      lines((stream) => ttyRenderer(stream, 'items')),
      lines((stream) => createProgressRenderer('always', { stream, unit: 'items' })),
    ]) {
      expect(chunks).toHaveLength(2);
      expect(chunks[0]).toMatch(/ 100\.0% scan inodes 2048 \/ 2048$/);
      expect(chunks[1]).toMatch(/ 100\.0% copy 3\.00 KiB \/ 3\.00 KiB 1\.00 KiB\/s$/);
    }
  });

  it('writes the unit into JSON lines when the event has one', () => {
    const { chunks, stream } = fakeStream(false);
    const renderer = jsonLinesRenderer(stream);
    const tracker = new ProgressTracker('scan inodes', 10, renderer.listener, { unit: 'items' });
    tracker.finish();
    renderer.listener({ phase: 'copy', done: 5, total: 10, bytesPerSecond: 7, elapsedMs: 3 });
    const [items, bytes] = chunks.map((line) => JSON.parse(line));
    expect(items).toMatchObject({ event: 'progress', phase: 'scan inodes', unit: 'items' });
    expect(Object.keys(items)).toEqual([
      'event',
      'phase',
      'done',
      'total',
      'unit',
      'bytesPerSecond',
      'elapsedMs',
    ]);
    expect(bytes).not.toHaveProperty('unit');
  });
});

/** Runs the progress child under `script`, which gives it a real pseudo-terminal. */
function runOnTerminal(env: Record<string, string>): Promise<string> {
  const command = `'${process.execPath}' '${childScript('progress.mjs')}' '${distEntry()}' auto`;
  return new Promise((resolve, reject) => {
    execFile(
      requirePeer('script'),
      ['--quiet', '--return', '--command', command, '/dev/null'],
      { env: { PATH: process.env.PATH ?? '', ...env }, encoding: 'utf8' },
      (error, stdout) => (error ? reject(error) : resolve(stdout)),
    );
  });
}

describe('the TTY renderer on a real terminal', () => {
  it('draws a coloured bar on stderr when it is a terminal', async () => {
    const output = await runOnTerminal({ TERM: 'xterm-256color' });
    expect(output).toContain('100.0% copy 4.00 MiB / 4.00 MiB');
    expect(output).toContain('\x1b[36m█');
  });

  it('honours NO_COLOR: the bar, but no colour codes', async () => {
    const output = await runOnTerminal({ TERM: 'xterm-256color', NO_COLOR: '1' });
    expect(output).toContain('100.0% copy 4.00 MiB / 4.00 MiB');
    expect(output).toContain('█');
    for (const code of ['\x1b[36m', '\x1b[39m', '\x1b[2m', '\x1b[22m']) {
      expect(output).not.toContain(code);
    }
  });

  it('prints nothing when stderr is a pipe', async () => {
    const output = await new Promise<string>((resolve, reject) => {
      execFile(
        process.execPath,
        [childScript('progress.mjs'), distEntry(), 'auto'],
        { env: { TERM: 'xterm-256color' }, encoding: 'utf8' },
        (error, stdout, stderr) => (error ? reject(error) : resolve(stdout + stderr)),
      );
    });
    expect(output).toBe('end\n');
  });
});
