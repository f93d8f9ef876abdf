/**
 * The message spool: memory up to its limit, then an unlinked temp file (nothing visible in
 * the directory once it is open); re-readable by several readers at once; past the size limit bytes are
 * counted, not kept; a temp dir that cannot be written is an error at finish().
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MessageSpool } from '../../../src/lmtp/spool.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'spool-test-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function readAll(s: MessageSpool): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of s.chunks()) parts.push(c);
  return Buffer.concat(parts);
}

function chunked(data: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < data.length; i += size) out.push(data.subarray(i, i + size));
  return out;
}

describe('MessageSpool', () => {
  it('keeps a small message in memory, as a copy of the input', async () => {
    const s = new MessageSpool({ maxSize: 1 << 20, dir, memoryLimit: 1024 });
    const input = Buffer.from('hello\r\n');
    s.write([input]);
    input.fill(0x78);
    await s.finish();
    expect(s.inFile).toBe(false);
    expect((await readAll(s)).toString()).toBe('hello\r\n');
    expect(await readdir(dir)).toEqual([]);
    await s.close();
  });

  it('spills to an unlinked temp file past the memory limit; several readers get the same bytes', async () => {
    const data = randomBytes(300_000);
    const s = new MessageSpool({ maxSize: 1 << 20, dir, memoryLimit: 64 * 1024 });
    for (const c of chunked(data, 7001)) s.write([c]);
    await s.finish();
    expect(s.inFile).toBe(true);
    expect(s.size).toBe(data.length);
    expect(await readdir(dir)).toEqual([]);
    const [x, y] = await Promise.all([readAll(s), readAll(s)]);
    expect(x.equals(data)).toBe(true);
    expect(y.equals(data)).toBe(true);
    await s.close();
  });

  it('past maxSize it counts but stores nothing more', async () => {
    const s = new MessageSpool({ maxSize: 100_000, dir, memoryLimit: 10_000 });
    for (const c of chunked(randomBytes(250_000), 4096)) s.write([c]);
    expect(s.tooBig).toBe(true);
    expect(s.size).toBe(250_000);
    await s.close();
    expect(await readdir(dir)).toEqual([]);
  });

  it('a temp dir that cannot be used fails finish() (the caller answers 451)', async () => {
    const s = new MessageSpool({ maxSize: 1 << 20, dir: join(dir, 'missing'), memoryLimit: 10 });
    s.write([randomBytes(1000)]);
    await expect(s.finish()).rejects.toThrow(/ENOENT/);
    await s.close();
  });

  it('an empty message reads as nothing', async () => {
    const s = new MessageSpool({ maxSize: 10, dir });
    await s.finish();
    expect((await readAll(s)).length).toBe(0);
  });
});
