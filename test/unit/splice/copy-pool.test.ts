import { describe, expect, test } from 'vitest';
import { SHARED_READ_SIZE } from '../../../src/backend/connect.js';
import { CopyPool } from '../../../src/splice/copy-pool.js';

const filled = (n: number, byte: number): Buffer => Buffer.alloc(n, byte);

describe('CopyPool', () => {
  test('a copy holds the bytes it was given, not a view of the source', () => {
    const pool = new CopyPool();
    const src = Buffer.from('* 1 FETCH (BODY[] {5}\r\nhello)\r\n');
    const { chunk } = pool.copy(src);
    src.fill(0);
    expect(chunk.toString('latin1')).toBe('* 1 FETCH (BODY[] {5}\r\nhello)\r\n');
  });

  test('copies carved from one slab do not overlap', () => {
    const pool = new CopyPool();
    const a = pool.copy(filled(1000, 0x61)).chunk;
    const b = pool.copy(filled(1000, 0x62)).chunk;
    expect(a.buffer).toBe(b.buffer);
    expect(a.every((x) => x === 0x61)).toBe(true);
    expect(b.every((x) => x === 0x62)).toBe(true);
  });

  test('a full slab is reused only once every write holding part of it has completed', () => {
    const pool = new CopyPool();
    const half = SHARED_READ_SIZE / 2;
    const first = pool.copy(filled(half, 1));
    const second = pool.copy(filled(half, 2));
    const firstSlab = first.chunk.buffer;
    // The slab is full: the next copy needs another one, the first stays held.
    const third = pool.copy(filled(half, 3));
    expect(third.chunk.buffer).not.toBe(firstSlab);
    third.done();
    // Still held by one write: never handed out again, its bytes stay as written.
    first.done();
    const fourth = pool.copy(filled(half, 4));
    expect(fourth.chunk.buffer).not.toBe(firstSlab);
    expect(second.chunk.every((x) => x === 2)).toBe(true);
    second.done();
    // Both writes of the first slab completed: the second slab is full, so the next copy
    // takes the recycled first one (and the bytes written into it are the new ones).
    const fifth = pool.copy(filled(half, 5));
    expect(fifth.chunk.buffer).toBe(firstSlab);
    expect(fifth.chunk.every((x) => x === 5)).toBe(true);
    expect(fourth.chunk.every((x) => x === 4)).toBe(true);
    fourth.done();
    fifth.done();
  });

  test('a chunk larger than a slab gets its own buffer', () => {
    const pool = new CopyPool();
    const big = filled(SHARED_READ_SIZE + 1, 7);
    const { chunk, done } = pool.copy(big);
    expect(chunk.length).toBe(SHARED_READ_SIZE + 1);
    expect(chunk.buffer).not.toBe(big.buffer);
    expect(chunk.every((x) => x === 7)).toBe(true);
    done();
  });

  test('a lent slab is adopted without a copy and recycled once its write completed', () => {
    const pool = new CopyPool();
    const lent = pool.lend();
    expect(lent.length).toBe(SHARED_READ_SIZE);
    lent.fill(9, 0, 1000);
    const { chunk, done } = pool.adopt(lent, 1000);
    // The same memory, no copy: the read's bytes are the write's.
    expect(chunk.buffer).toBe(lent.buffer);
    expect(chunk.length).toBe(1000);
    // Still held by the write: the next lend is another slab, and copies never land in it.
    const next = pool.lend();
    expect(next.buffer).not.toBe(lent.buffer);
    const copied = pool.copy(filled(10, 1));
    expect(copied.chunk.buffer).not.toBe(lent.buffer);
    expect(chunk.every((x) => x === 9)).toBe(true);
    done();
    // Written: the slab is free again and the next slab handed out is this one.
    expect(pool.lend().buffer).toBe(lent.buffer);
  });

  test('a buffer the pool did not lend (or adopted twice) is copied, never shared', () => {
    const pool = new CopyPool();
    const foreign = filled(100, 3);
    const { chunk } = pool.adopt(foreign, 50);
    expect(chunk.buffer).not.toBe(foreign.buffer);
    expect(chunk.length).toBe(50);
    const lent = pool.lend();
    const first = pool.adopt(lent, 10);
    const again = pool.adopt(lent, 10);
    expect(first.chunk.buffer).toBe(lent.buffer);
    expect(again.chunk.buffer).not.toBe(lent.buffer);
    first.done();
  });
});
