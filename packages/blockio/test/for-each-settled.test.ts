import { describe, expect, it } from 'vitest';
import { BlockIoError, forEachSettled } from '../src/index.js';

const turn = () => new Promise((resolve) => setImmediate(resolve));

describe('forEachSettled', () => {
  it('runs every item despite failures and reports them in item order', async () => {
    const seen: number[] = [];
    let inFlight = 0;
    let most = 0;
    const failures = await forEachSettled([1, 2, 3, 4, 5, 6, 7, 8], 3, async (item) => {
      inFlight++;
      most = Math.max(most, inFlight);
      // Later items finish first, so failures are recorded out of order.
      for (let wait = 8 - item; wait > 0; wait--) await turn();
      inFlight--;
      seen.push(item);
      if (item % 3 === 0 || item === 1) throw new Error(`object ${item} unreadable`);
    });
    expect(seen.sort()).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(most).toBe(3);
    expect(failures.map(({ item, index }) => [item, index])).toEqual([
      [1, 0],
      [3, 2],
      [6, 5],
    ]);
    expect(failures[1]?.error).toMatchObject({ message: 'object 3 unreadable' });
  });

  it('returns no failures when everything succeeds, and handles no items', async () => {
    expect(await forEachSettled([1, 2], 4, async () => {})).toEqual([]);
    expect(await forEachSettled([], 2, async () => {})).toEqual([]);
  });

  it('records workers that throw synchronously and non-Error values', async () => {
    const worker = ((item: number) => {
      if (item === 2) throw 'plain string';
      return Promise.resolve();
    }) as (item: number) => Promise<void>;
    const failures = await forEachSettled([1, 2, 3], 2, worker);
    expect(failures).toEqual([{ item: 2, index: 1, error: 'plain string' }]);
  });

  it('takes async iterables, pulling one item at a time', async () => {
    let pulling = 0;
    async function* objects() {
      for (let index = 0; index < 6; index++) {
        pulling++;
        expect(pulling).toBe(1);
        await turn();
        pulling--;
        yield `obj.${index}`;
      }
    }
    const failures = await forEachSettled(objects(), 3, async (name) => {
      await turn();
      if (name.endsWith('4')) throw new Error('gone');
    });
    expect(failures.map(({ item, index }) => [item, index])).toEqual([['obj.4', 4]]);
  });

  it('hands promise items over as they are, like forEachConcurrent', async () => {
    const promise = Promise.resolve(1);
    const seen: unknown[] = [];
    await forEachSettled([promise], 1, async (item) => {
      seen.push(item);
    });
    expect(seen[0]).toBe(promise);
  });

  it('stops on abort with ABORTED naming the path, after the calls in flight settle', async () => {
    const controller = new AbortController();
    const started: number[] = [];
    let settled = 0;
    const work = forEachSettled(
      [1, 2, 3, 4, 5, 6],
      2,
      async (item) => {
        started.push(item);
        if (item === 3) controller.abort('user');
        await turn();
        settled++;
        throw new Error('broken');
      },
      { signal: controller.signal, path: 'cluster' },
    );
    const error = await work.catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(BlockIoError);
    expect(error).toMatchObject({
      code: 'ABORTED',
      path: 'cluster',
      message: 'operation cancelled: user',
    });
    expect(started).toEqual([1, 2, 3]);
    expect(settled).toBe(started.length);
  });

  it('rethrows a failing iterable (not an item failure) after the calls in flight', async () => {
    let settled = 0;
    async function* listing() {
      yield 1;
      yield 2;
      throw new Error('listing failed');
    }
    await expect(
      forEachSettled(listing(), 2, async () => {
        await turn();
        settled++;
      }),
    ).rejects.toThrow('listing failed');
    expect(settled).toBe(2);
  });
});
