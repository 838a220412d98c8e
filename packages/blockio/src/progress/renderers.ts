import { styleText } from 'node:util';
import { formatSize } from '../size-parse.js';
import type { ProgressEvent, ProgressListener, ProgressUnit } from './progress-event.js';

export type ProgressMode = 'auto' | 'always' | 'never' | 'json';

export interface ProgressRenderer {
  readonly listener: ProgressListener;
  /** Clears the bar (TTY) so the next line of output starts clean. */
  close(): void;
}

interface WritableLike {
  write(chunk: string): unknown;
  isTTY?: boolean;
  columns?: number;
  hasColors?: () => boolean;
}

/**
 * Picks a renderer: JSON lines (for `--json`, written to `jsonStream`, normally
 * stdout), a bar on stderr when it is a TTY (or `always`), or nothing.
 */
export function createProgressRenderer(
  mode: ProgressMode,
  options: { stream?: WritableLike; jsonStream?: WritableLike; unit?: ProgressUnit } = {},
): ProgressRenderer {
  const stream = options.stream ?? process.stderr;
  if (mode === 'json') return jsonLinesRenderer(options.jsonStream ?? process.stdout);
  if (mode === 'never' || (mode === 'auto' && !stream.isTTY)) {
    return { listener: () => {}, close: () => {} };
  }
  return ttyRenderer(stream, options.unit);
}

/** One JSON line per event, as it comes: `unit` appears when the event carries one. */
export function jsonLinesRenderer(stream: WritableLike): ProgressRenderer {
  return {
    listener: (event) => {
      stream.write(`${JSON.stringify({ event: 'progress', ...event })}\n`);
    },
    close: () => {},
  };
}

const RENDER_INTERVAL_MS = 100;

/**
 * A one-line bar redrawn in place, about ten times a second. `unit` is for events
 * that carry none; an event's own `unit` wins, so a tool can switch from a phase
 * counted in items to one counted in bytes under one renderer.
 */
export function ttyRenderer(stream: WritableLike, unit: ProgressUnit = 'bytes'): ProgressRenderer {
  // `--progress=always` into a file or a pipe (a log): whole lines, no escape codes,
  // so that what is printed next starts on a line of its own.
  if (!stream.isTTY) return lineRenderer(stream, unit);
  let lastDrawAt = 0;
  let drawn = false;
  // hasColors() honours NO_COLOR, FORCE_COLOR and the terminal's depth.
  const colour = typeof stream.hasColors === 'function' && stream.hasColors();
  const paint = (style: 'cyan' | 'dim', text: string) =>
    colour ? paintTextUnchecked(style, text) : text;

  const draw = (event: ProgressEvent) => {
    const bytes = (event.unit ?? unit) === 'bytes';
    const amount = (value: number) => (bytes ? formatSize(value) : String(value));
    const fraction = event.total > 0 ? Math.min(1, event.done / event.total) : 0;
    const percent = `${(fraction * 100).toFixed(1).padStart(5)}%`;
    const rate = bytes ? `${formatSize(event.bytesPerSecond)}/s` : '';
    const remaining =
      event.bytesPerSecond > 0 && event.total > event.done
        ? `ETA ${formatDuration((event.total - event.done) / event.bytesPerSecond)}`
        : '';
    const text = `${event.phase} ${amount(event.done)} / ${amount(event.total)} ${rate} ${remaining}`;
    const width = Math.max(10, Math.min(40, (stream.columns ?? 80) - text.length - 12));
    const filled = Math.round(fraction * width);
    const bar = paint('cyan', '█'.repeat(filled)) + paint('dim', '░'.repeat(width - filled));
    stream.write(`\r\x1b[2K${bar} ${percent} ${text.trimEnd()}`);
    drawn = true;
  };

  return {
    listener: (event) => {
      const now = performance.now();
      const finished = event.total > 0 && event.done >= event.total;
      if (!finished && now - lastDrawAt < RENDER_INTERVAL_MS) return;
      lastDrawAt = now;
      draw(event);
    },
    close: () => {
      if (drawn) stream.write('\r\x1b[2K');
      drawn = false;
    },
  };
}

const LINE_INTERVAL_MS = 1000;

/** Progress as plain lines, one a second at most (and the last), for a stream that is not a terminal. */
function lineRenderer(stream: WritableLike, unit: ProgressUnit): ProgressRenderer {
  let lastLineAt = Number.NEGATIVE_INFINITY;
  let lastLine = '';
  return {
    listener: (event) => {
      const now = performance.now();
      const finished = event.total > 0 && event.done >= event.total;
      if (!finished && now - lastLineAt < LINE_INTERVAL_MS) return;
      // A job that reports its end twice (the copy, then the command) prints it once.
      const key = `${event.phase} ${event.done} ${event.total}`;
      if (key === lastLine) return;
      lastLine = key;
      lastLineAt = now;
      const bytes = (event.unit ?? unit) === 'bytes';
      const amount = (value: number) => (bytes ? formatSize(value) : String(value));
      const percent = event.total > 0 ? Math.min(100, (event.done / event.total) * 100) : 0;
      const rate = bytes ? ` ${formatSize(event.bytesPerSecond)}/s` : '';
      stream.write(
        `${event.phase} ${percent.toFixed(1)}% ${amount(event.done)} / ${amount(event.total)}${rate}\n`,
      );
    },
    close: () => {},
  };
}

/**
 * styleText on Node 22.13+ checks stdout by default, which is the wrong stream for a
 * bar on stderr; we have already decided on colour, so skip that check (Node 20
 * ignores the option).
 */
const styleTextWithOptions = styleText as (
  format: 'cyan' | 'dim',
  text: string,
  options?: { validateStream?: boolean },
) => string;

function paintTextUnchecked(style: 'cyan' | 'dim', text: string): string {
  return styleTextWithOptions(style, text, { validateStream: false });
}

function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}
