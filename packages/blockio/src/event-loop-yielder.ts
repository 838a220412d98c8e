const EVENT_LOOP_SLICE_MS = 20;

/**
 * Devices that complete requests synchronously (FileDevice on regular files) never
 * give the event loop a turn, and then SIGINT, timers and stream writes wait until
 * the copy ends. Every few milliseconds of work, hand out a macrotask turn; in
 * between, no promise at all.
 */
export function eventLoopYielder(): () => Promise<void> | undefined {
  let sliceStart = performance.now();
  return () => {
    if (performance.now() - sliceStart < EVENT_LOOP_SLICE_MS) return undefined;
    return new Promise<void>((resolve) =>
      setImmediate(() => {
        sliceStart = performance.now();
        resolve();
      }),
    );
  };
}
