import type { Readable } from 'node:stream';

/** Chunks queued before the stream is paused (its own buffer and SSH's window then push back). */
const HIGH = 32;
const LOW = 8;

/**
 * A readable stream's chunks as they came, one by one. Node 20's own async iterator
 * reads with `read()`, which joins every buffered chunk into a new buffer: on an SSH
 * channel that copied every byte once more and fed the garbage collector.
 * Ends when the stream ends or closes; rejects with the stream's error. A consumer that
 * stops early leaves the stream paused (the caller ends the command).
 */
export async function* readChunks(stream: Readable): AsyncIterable<Buffer> {
  const queue: Buffer[] = [];
  let head = 0;
  let finished = false;
  let failure: Error | undefined;
  let wake: (() => void) | undefined;
  const notify = () => {
    const resolve = wake;
    wake = undefined;
    resolve?.();
  };
  const onData = (chunk: Buffer) => {
    queue.push(chunk);
    if (queue.length - head >= HIGH) stream.pause();
    notify();
  };
  const onEnd = () => {
    finished = true;
    notify();
  };
  // Closed before its end (a dropped connection, a destroyed stream): as Node's iterator does.
  const onClose = () => {
    if (!stream.readableEnded && failure === undefined) {
      failure = Object.assign(new Error('Premature close'), { code: 'ERR_STREAM_PREMATURE_CLOSE' });
    }
    onEnd();
  };
  const onError = (error: Error) => {
    failure = error;
    notify();
  };
  stream.on('data', onData);
  stream.on('end', onEnd);
  stream.on('close', onClose);
  stream.on('error', onError);
  if (stream.readableEnded) finished = true;
  else if (stream.destroyed) onClose();
  try {
    for (;;) {
      if (head < queue.length) {
        const chunk = queue[head] as Buffer;
        queue[head++] = undefined as unknown as Buffer;
        if (head === queue.length) {
          queue.length = 0;
          head = 0;
        }
        if (queue.length - head <= LOW && stream.isPaused() && !finished) stream.resume();
        yield chunk;
        continue;
      }
      if (failure !== undefined) throw failure;
      if (finished) return;
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
    }
  } finally {
    stream.off('data', onData);
    stream.off('end', onEnd);
    stream.off('close', onClose);
    stream.off('error', onError);
    stream.pause();
  }
}
