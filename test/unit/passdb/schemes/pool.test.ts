/**
 * The hash worker pool: the event loop stays responsive under crypt load, queues are bounded,
 * aborts work, and the compiled build (dist/, crypt-worker.js) finds its worker too.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { PortierError } from '../../../../src/errors.js';
import { parseShaCrypt, shaCrypt } from '../../../../src/passdb/schemes/crypt.js';
import {
  closeHashPool,
  configureHashPool,
  DEFAULT_HASH_QUEUE,
  verifyPassword,
} from '../../../../src/passdb/schemes/index.js';

const PW = Buffer.from('pässword!');
const opts = { defaultScheme: 'PLAIN', user: 'alice' };
const SHA512 = '{SHA512-CRYPT}$6$w1O/IxybnJqbyGyC$LfdNQiBXSow1exYu6DPtkyilZ3M0KiujChOC6x8aCPGm9tUlWVLfkesbm/A4crCIh0BEFoll3wUcZ3kZR.UKV/';
const ARGON2I = '{ARGON2I}$argon2i$v=19$m=32768,t=4,p=1$zKZKOeMUhoMdBNu7pAUbgA$HoWQOILFld/WvZcCcqQpXuxHIkLUTVIeqAEi8TCJuCs';
const ROOT = resolve(import.meta.dirname, '../../../..');

afterAll(closeHashPool);

/** Largest gap between 2 ms interval ticks beyond the 2 ms itself, plus the perf_hooks histogram. */
async function measureLag<T>(work: () => Promise<T>): Promise<{ result: T; driftMs: number; p99Ms: number; maxMs: number }> {
  const hist = monitorEventLoopDelay({ resolution: 2 });
  let last = performance.now();
  let driftMs = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    driftMs = Math.max(driftMs, now - last - 2);
    last = now;
  }, 2);
  hist.enable();
  try {
    const result = await work();
    return { result, driftMs, p99Ms: hist.percentile(99) / 1e6, maxMs: hist.max / 1e6 };
  } finally {
    hist.disable();
    clearInterval(timer);
  }
}

describe('event loop under hashing load', () => {
  it('the probe notices a blocked loop (control: 10 SHA512-CRYPT on the main thread)', async () => {
    const parsed = parseShaCrypt('$6$w1O/IxybnJqbyGyC');
    if (parsed === null) throw new Error('setting');
    const lag = await measureLag(async () => {
      await new Promise((r) => setTimeout(r, 10));
      for (let i = 0; i < 10; i++) shaCrypt(PW, parsed.setting);
      await new Promise((r) => setTimeout(r, 10));
    });
    console.info(`control, 10 SHA512-CRYPT inline: drift max ${lag.driftMs.toFixed(1)} ms, histogram max ${lag.maxMs.toFixed(1)} ms`);
    expect(lag.driftMs).toBeGreaterThan(30);
  });

  // Issue 5's bound: lag under 20 ms. The same work inline would stall the loop for >= 500 ms.
  // A shared 2-core box can still deschedule the whole process for a moment (it failed once
  // under load 13 from other test runs), so one retry: a real stall fails every attempt.
  it('100 parallel SHA512-CRYPT verifies keep the event loop lag under 20 ms', { retry: 1 }, async () => {
    expect(await verifyPassword(SHA512, PW, opts)).toBe('ok'); // start the worker outside the measurement
    const t0 = performance.now();
    const lag = await measureLag(() => Promise.all(Array.from({ length: 100 }, () => verifyPassword(SHA512, PW, opts))));
    const wallMs = performance.now() - t0;
    console.info(
      `100 SHA512-CRYPT in the pool: wall ${wallMs.toFixed(0)} ms, lag p99 ${lag.p99Ms.toFixed(1)} ms, ` +
        `histogram max ${lag.maxMs.toFixed(1)} ms, interval drift max ${lag.driftMs.toFixed(1)} ms`,
    );
    expect(lag.result.every((r) => r === 'ok')).toBe(true);
    // p99 is the loop's own lag; the single worst sample also holds OS scheduling on a shared
    // box (seen at 25 ms under load 8 on 2 cores), so it only guards against real stalls.
    expect(lag.p99Ms).toBeLessThan(20);
    expect(lag.maxMs).toBeLessThan(50);
  });
});

describe('bounds', () => {
  afterEach(async () => {
    configureHashPool({ maxQueue: DEFAULT_HASH_QUEUE, nativeConcurrency: 3 });
    await closeHashPool();
  });

  it('a full worker queue rejects with PASSDB_TEMPFAIL; accepted work still completes', async () => {
    configureHashPool({ maxThreads: 1, maxQueue: 2 });
    const settled = await Promise.allSettled(Array.from({ length: 12 }, () => verifyPassword(SHA512, PW, opts)));
    const ok = settled.filter((s) => s.status === 'fulfilled');
    const refused = settled.filter((s): s is PromiseRejectedResult => s.status === 'rejected');
    expect(ok.length).toBeGreaterThanOrEqual(3);
    expect(refused.length).toBeGreaterThan(0);
    for (const r of refused) expect(r.reason).toMatchObject({ name: 'PortierError', code: 'PASSDB_TEMPFAIL' });
    expect(ok.every((s) => s.value === 'ok')).toBe(true);
  });

  it('argon2 concurrency is gated and its wait list bounded', async () => {
    configureHashPool({ nativeConcurrency: 1, maxQueue: 2 });
    const settled = await Promise.allSettled(Array.from({ length: 6 }, () => verifyPassword(ARGON2I, PW, opts)));
    expect(settled.filter((s) => s.status === 'fulfilled').length).toBe(3);
    for (const s of settled) {
      if (s.status === 'fulfilled') expect(s.value).toBe('ok');
      else expect(s.reason).toBeInstanceOf(PortierError);
    }
  });

  it('an aborted verify rejects with AbortError', async () => {
    const ac = new AbortController();
    ac.abort();
    await expect(verifyPassword(SHA512, PW, { ...opts, signal: ac.signal })).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('rejects nonsense limits', () => {
    expect(() => configureHashPool({ maxThreads: 0 })).toThrow(RangeError);
    expect(() => configureHashPool({ maxQueue: 1.5 })).toThrow(RangeError);
  });
});

describe('compiled build', () => {
  const dir = join(ROOT, '.vitest-tmp', `schemes-build-${process.pid}`);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('tsc output finds crypt-worker.js and runs pool schemes in a plain node process', () => {
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        extends: join(ROOT, 'tsconfig.build.json'),
        compilerOptions: { rootDir: join(ROOT, 'src'), outDir: join(dir, 'dist'), sourceMap: false },
        include: [join(ROOT, 'src/passdb/schemes')],
      }),
    );
    const tsc = spawnSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(dir, 'tsconfig.json')], { encoding: 'utf8' });
    expect(tsc.stdout + tsc.stderr).toBe('');
    const out = join(dir, 'dist/passdb/schemes');
    expect(existsSync(join(out, 'crypt-worker.js'))).toBe(true);
    expect(existsSync(join(out, 'crypt-worker.dev.mjs'))).toBe(false);

    // No closeHashPool(): idle workers must not keep the process alive.
    const script = `
      const { verifyPassword, hashPassword } = await import(${JSON.stringify(pathToFileURL(join(out, 'index.js')).href)});
      const pw = Buffer.from('pässword!');
      const o = { defaultScheme: 'PLAIN', user: 'alice' };
      const stored = [${JSON.stringify(SHA512)}, '{MD5-CRYPT}$1$4iJFk.4n$uTpJhH2dalcZEOIamHplI.',
        '{PBKDF2}$1$df37d//fj7DlpLE.$5000$b127a12606ba39991f35ef03508bf60a9de1ef8f', await hashPassword('SHA256-CRYPT', pw),
        '{BLF-CRYPT}$2y$05$7x/V2S5uE3YFDT9x7LUrj.eQx1/N186qzsFkyDpKHIk8Iz.RHZhkO'];
      console.log(JSON.stringify(await Promise.all(stored.map((s) => verifyPassword(s, pw, o)))));`;
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: dir, encoding: 'utf8', timeout: 30_000 });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual(['ok', 'ok', 'ok', 'ok', 'ok']);
  });
});
