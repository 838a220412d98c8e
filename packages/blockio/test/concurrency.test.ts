import { describe, expect, it } from 'vitest';
import { BlockIoError, forEachConcurrent } from '../src/index.js';

describe('forEachConcurrent', () => {
  it('runs every item with at most `concurrency` calls in flight', async () => {
    let inFlight = 0;
    let most = 0;
    const seen: number[] = [];
    await forEachConcurrent([1, 2, 3, 4, 5, 6, 7], 3, async (item) => {
      inFlight++;
      most = Math.max(most, inFlight);
      await new Promise((resolve) => setImmediate(resolve));
      seen.push(item);
      inFlight--;
    });
    expect(seen.sort()).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(most).toBe(3);
  });

  it('stops on abort with an ABORTED error naming the file it was given', async () => {
    const controller = new AbortController();
    const started: number[] = [];
    const work = forEachConcurrent(
      [1, 2, 3, 4, 5, 6],
      2,
      async (item) => {
        started.push(item);
        if (item === 2) controller.abort('user');
        await new Promise((resolve) => setImmediate(resolve));
      },
      { signal: controller.signal, path: 'disk.img' },
    );
    const error = await work.catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(BlockIoError);
    expect(error).toMatchObject({
      code: 'ABORTED',
      path: 'disk.img',
      message: 'operation cancelled: user',
    });
    expect(started).toEqual([1, 2]);
  });

  it('refuses to start when the signal is already aborted', async () => {
    const worker = async () => {
      throw new Error('must not run');
    };
    await expect(
      forEachConcurrent([1], 1, worker, { signal: AbortSignal.abort() }),
    ).rejects.toMatchObject({ code: 'ABORTED', path: undefined });
  });
});
