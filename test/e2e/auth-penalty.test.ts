/**
 * The failure penalty shared between TWO real portier processes (`portier serve`) through one
 * Redis: failures from one client address on either process raise the delay both apply
 * (doubling up to the maximum); a login from a trusted network is neither delayed nor
 * counted; a successful login resets the address. Delays are read from the processes' logs
 * (what each decided) and checked as lower bounds on the reply time, never as upper bounds.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { imapCommand } from '../support/clients.js';
import { passdbEntry, testConfig } from '../support/config.js';
import { startDovecot, type DovecotBackend } from '../support/dovecot.js';
import { freePort } from '../support/ports.js';
import { runPortierBin, type PortierProcess } from '../support/portier.js';
import { startRedis, type RedisServer } from '../support/redis.js';
import { makeTempDir } from '../support/tmp.js';

const ATTACKER = '127.0.0.5';
const TRUSTED = '127.0.0.6';
const INITIAL_MS = 150;
const MAX_MS = 2000;

let backend: DovecotBackend;
let redis: RedisServer;
const procs: { proc: PortierProcess; port: number }[] = [];

async function startOne(dir: string, name: string): Promise<{ proc: PortierProcess; port: number }> {
  const port = await freePort('127.0.0.1');
  const file = join(dir, `${name}.yaml`);
  writeFileSync(
    file,
    testConfig(['imap'], {
      settings: {
        instance_name: name,
        workers: 1,
        login_trusted_networks: TRUSTED,
        auth_penalty_initial_delay: `${INITIAL_MS}ms`,
        auth_penalty_max_delay: `${MAX_MS}ms`,
        auth_penalty_redis: redis.url,
        admin_socket: `${dir}/${name}.sock`,
        log_level: 'info',
      },
      ports: { imap: port },
      passdb: passdbEntry('passwd-file', { args: `scheme=PLAIN ${dir}/users` }),
    }),
  );
  const proc = runPortierBin(['serve', '-c', file]);
  const until = Date.now() + 20_000;
  while (!/"msg":"listening"/.test(proc.stdout())) {
    if (Date.now() > until || proc.child.exitCode !== null) throw new Error(`${name} did not start:\n${proc.stderr()}${proc.stdout()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { proc, port };
}

interface Attempt {
  readonly reply: string;
  readonly ms: number;
}

/** The reply, and the time from sending LOGIN to it. */
async function login(port: number, from: string, password: string, user = 'alice'): Promise<Attempt> {
  const { c, reply, ms } = await imapCommand(port, `a LOGIN ${user} ${password}`, { from, timeoutMs: 10_000 });
  c.close();
  return { reply, ms };
}

/** The delays one process logged for an address, in order. */
function delays(p: PortierProcess, ip: string): number[] {
  return p
    .stdout()
    .split('\n')
    .filter((l) => l.includes('auth penalty: delaying this login'))
    .map((l) => JSON.parse(l) as { rip: string; delay_ms: number })
    .filter((l) => l.rip === ip)
    .map((l) => l.delay_ms);
}

beforeAll(async () => {
  [backend, redis] = await Promise.all([
    startDovecot({ address: '127.0.0.2', protocols: ['imap'], users: [{ user: 'alice', password: 'alice-pw' }] }),
    startRedis(),
  ]);
  const dir = await makeTempDir('portier-penalty-');
  writeFileSync(join(dir, 'users'), `alice:alice-pw::::::proxy=y host=${backend.host} port=${backend.ports.imap}\nquick:quick-pw::::::nodelay=y proxy=y host=${backend.host}\n`);
  procs.push(await startOne(dir, 'one'), await startOne(dir, 'two'));
});

afterAll(async () => {
  for (const { proc } of procs) {
    proc.child.kill('SIGTERM');
    await proc.exited;
  }
  await Promise.all([backend?.stop(), redis?.stop()]);
});

describe('failure penalty across two processes through Redis', () => {
  test('failures on either process raise the delay both apply; it doubles up to the maximum', async () => {
    const [one, two] = procs;
    if (one === undefined || two === undefined) throw new Error('not started');
    const r = new Redis(redis.url);
    const seen: Attempt[] = [];
    // Alternate processes; a different wrong password each time (a repeated one is not an attack).
    for (let i = 0; i < 5; i++) {
      const target = i % 2 === 0 ? one : two;
      seen.push(await login(target.port, ATTACKER, `wrong-${i}`));
      expect(await r.hget(`portier:penalty:${ATTACKER}`, 'p')).toBe(String(i + 1));
    }
    for (const a of seen) expect(a.reply).toBe('a NO [AUTHENTICATIONFAILED] Authentication failed.');
    // Attempt 1 had no penalty; then 2×, 4×, 8×, (16× capped at the max).
    const expected = [INITIAL_MS * 2, INITIAL_MS * 4, INITIAL_MS * 8, MAX_MS];
    expect([...delays(one.proc, ATTACKER), ...delays(two.proc, ATTACKER)].sort((a, b) => a - b)).toEqual([...expected].sort((a, b) => a - b));
    expect(delays(one.proc, ATTACKER)).toEqual([INITIAL_MS * 4, MAX_MS]); // attempts 3 and 5
    expect(delays(two.proc, ATTACKER)).toEqual([INITIAL_MS * 2, INITIAL_MS * 8]); // attempts 2 and 4: penalties from process one
    seen.slice(1).forEach((a, i) => expect(a.ms).toBeGreaterThanOrEqual((expected[i] ?? 0) - 5));
    r.disconnect();
  });

  test('the same wrong password again does not raise it further (a stale client, not an attack)', async () => {
    const [one] = procs;
    if (one === undefined) throw new Error('not started');
    const r = new Redis(redis.url);
    // A fresh rise (Redis clock), so no decay interferes.
    const [secs = 0, micros = 0] = (await r.time()).map(Number);
    await r.hset(`portier:penalty:${ATTACKER}`, 'p', '1', 't', String(secs * 1000 + Math.floor(micros / 1000)));
    await login(one.port, ATTACKER, 'wrong-2'); // already in the recent checksums
    expect(await r.hget(`portier:penalty:${ATTACKER}`, 'p')).toBe('1');
    await login(one.port, ATTACKER, 'brand-new-wrong');
    expect(await r.hget(`portier:penalty:${ATTACKER}`, 'p')).toBe('2');
    r.disconnect();
  });

  test('a trusted network is exempt: no delay, nothing counted', async () => {
    const [one, two] = procs;
    if (one === undefined || two === undefined) throw new Error('not started');
    for (let i = 0; i < 4; i++) expect((await login(i % 2 === 0 ? one.port : two.port, TRUSTED, `t-${i}`)).reply).toMatch(/^a NO \[AUTHENTICATIONFAILED\]/);
    expect(delays(one.proc, TRUSTED)).toEqual([]);
    expect(delays(two.proc, TRUSTED)).toEqual([]);
    const r = new Redis(redis.url);
    expect(await r.exists(`portier:penalty:${TRUSTED}`)).toBe(0);
    r.disconnect();
  });

  test('a successful login (after its delay) resets the address for both processes', async () => {
    const [one, two] = procs;
    if (one === undefined || two === undefined) throw new Error('not started');
    const ok = await login(two.port, ATTACKER, 'alice-pw');
    expect(ok.reply).toMatch(/^a OK \[CAPABILITY /);
    const r = new Redis(redis.url);
    expect(await r.exists(`portier:penalty:${ATTACKER}`)).toBe(0);
    r.disconnect();
    const before = delays(one.proc, ATTACKER).length;
    expect((await login(one.port, ATTACKER, 'after-reset')).reply).toMatch(/^a NO /);
    expect(delays(one.proc, ATTACKER).length).toBe(before); // not delayed
  });

  test('nodelay skips the failure delay but still counts for the penalty', async () => {
    const [one] = procs;
    if (one === undefined) throw new Error('not started');
    const r = new Redis(redis.url);
    const before = Number((await r.hget(`portier:penalty:${ATTACKER}`, 'p')) ?? '0');
    expect((await login(one.port, ATTACKER, 'wrong-quick', 'quick')).reply).toMatch(/^a NO \[AUTHENTICATIONFAILED\]/);
    expect(Number(await r.hget(`portier:penalty:${ATTACKER}`, 'p'))).toBe(before + 1);
    r.disconnect();
  });
});
