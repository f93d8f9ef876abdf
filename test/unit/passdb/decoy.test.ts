/**
 * R15, user enumeration by timing: a failed login that verified no password (unknown user,
 * empty stored password, deny list) pays one decoy verification, so it costs what a wrong
 * password costs. Shown by counting hash jobs, not by timing, so it cannot flake.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as argon2 from '@node-rs/argon2';
import { afterAll, describe, expect, test } from 'vitest';
import { parseConfig } from '../../../src/config/load.js';
import { PassdbChain } from '../../../src/passdb/chain.js';
import { closeHashPool, configureHashPool, hashPassword, hashWorkStarted } from '../../../src/passdb/schemes/index.js';
import type { AuthRequest, PassdbResult } from '../../../src/passdb/types.js';
import { silentLogger } from '../../../src/telemetry/log.js';

afterAll(closeHashPool);

const req = (user: string, password?: string): AuthRequest => ({
  protocol: 'imap', user, origUser: user, mech: 'PLAIN', sessionId: 's', remoteIp: '192.0.2.1', remotePort: 1,
  localIp: '192.0.2.2', localPort: 143, realRemoteIp: '192.0.2.1', realLocalIp: '192.0.2.2', secured: true,
  password: password === undefined ? undefined : Buffer.from(password),
});

function chain(passdbYaml: string, files: Record<string, string>, extra = ''): PassdbChain {
  const dir = mkdtempSync(join(tmpdir(), 'decoy-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  const yaml = `protocols: imap\nssl: no\n${extra}passdb:\n${passdbYaml.replaceAll('{{dir}}', dir)}`;
  return new PassdbChain(parseConfig(yaml, join(dir, 'portier.yaml')).config, silentLogger());
}

/** The result and the hash jobs (worker pool + argon2) it started. */
async function costed(c: PassdbChain, r: AuthRequest): Promise<{ kind: PassdbResult['kind']; pool: number; native: number }> {
  const before = hashWorkStarted();
  const result = await c.authenticate(r);
  const after = hashWorkStarted();
  return { kind: result.kind, pool: after.pool - before.pool, native: after.native - before.native };
}

describe('unknown users cost one verification (R15)', () => {
  test('SHA512-CRYPT: unknown user, wrong password, right password, empty and denied all cost exactly one pool job', async () => {
    const alice = await hashPassword('SHA512-CRYPT', Buffer.from('alice-pw'));
    const c = chain(
      `  - driver: passwd-file\n    deny: yes\n    args: {{dir}}/deny\n  - driver: passwd-file\n    args: scheme=SHA512-CRYPT {{dir}}/users\n`,
      { deny: 'mallory\n', users: `alice:${alice}::::::proxy=y host=192.0.2.9\nempty:::::::proxy=y host=192.0.2.9\n` },
    );
    // Before any real verification, the first decoy is made (one job) and then verified (one job).
    expect(await costed(c, req('nobody', 'guess'))).toEqual({ kind: 'unknown', pool: 2, native: 0 });
    expect(await costed(c, req('alice', 'wrong'))).toEqual({ kind: 'mismatch', pool: 1, native: 0 });
    expect(await costed(c, req('nobody', 'guess'))).toEqual({ kind: 'unknown', pool: 1, native: 0 });
    expect(await costed(c, req('somebody-else', 'x'.repeat(200)))).toEqual({ kind: 'unknown', pool: 1, native: 0 });
    expect(await costed(c, req('alice', 'alice-pw'))).toEqual({ kind: 'ok', pool: 1, native: 0 });
    expect(await costed(c, req('empty', 'anything'))).toEqual({ kind: 'mismatch', pool: 1, native: 0 });
    expect(await costed(c, req('mallory', 'anything'))).toEqual({ kind: 'mismatch', pool: 1, native: 0 });
    // Lookups without a password (LMTP RCPT, a master login's target) verify nothing.
    expect(await costed(c, req('nobody'))).toEqual({ kind: 'unknown', pool: 0, native: 0 });
    expect(await costed(c, req('alice'))).toEqual({ kind: 'ok', pool: 0, native: 0 });
    await c.close();
  });

  test('the decoy copies the cost of the stored passwords actually in use (argon2id, not the default scheme)', async () => {
    const stored = await argon2.hash('bob-pw', { algorithm: 2, memoryCost: 1024, timeCost: 1, parallelism: 1 });
    const c = chain(`  - driver: passwd-file\n    args: {{dir}}/users\n`, { users: `bob:{ARGON2ID}${stored}::::::proxy=y host=192.0.2.9\n` });
    // (The first request also makes a default-scheme decoy in the background, in case it is needed.)
    expect(await costed(c, req('bob', 'wrong'))).toMatchObject({ kind: 'mismatch', native: 1 });
    expect(await costed(c, req('nobody', 'guess'))).toEqual({ kind: 'unknown', pool: 0, native: 1 });
    await c.close();
  });

  test('master passdbs too: an unknown master user costs what a wrong master password costs', async () => {
    const admin = await hashPassword('SHA256-CRYPT', Buffer.from('admin-pw'));
    const c = chain(
      `  - driver: passwd-file\n    master: yes\n    args: {{dir}}/masters\n  - driver: passwd-file\n    args: scheme=PLAIN {{dir}}/users\n`,
      { masters: `admin:${admin}\n`, users: 'alice:{PLAIN}pw::::::proxy=y host=192.0.2.9\n' },
    );
    const before = hashWorkStarted().pool;
    expect((await c.authenticateMaster(req('admin', 'wrong'))).kind).toBe('mismatch');
    expect(hashWorkStarted().pool - before).toBe(1);
    expect((await c.authenticateMaster(req('nobody', 'wrong'))).kind).toBe('unknown');
    expect(hashWorkStarted().pool - before).toBe(2);
    await c.close();
  });

  test('a full hash queue makes an unknown user fail temporarily, as it would a known one', async () => {
    const alice = await hashPassword('SHA512-CRYPT', Buffer.from('alice-pw'), { rounds: 20_000 });
    const c = chain(`  - driver: passwd-file\n    args: {{dir}}/users\n`, { users: `alice:${alice}::::::proxy=y host=192.0.2.9\n` });
    expect((await c.authenticate(req('alice', 'wrong'))).kind).toBe('mismatch');
    configureHashPool({ maxThreads: 1, maxQueue: 1 });
    const kinds = await Promise.all(Array.from({ length: 12 }, (_, i) => c.authenticate(req(`ghost${i}`, 'guess')).then((r) => r.kind)));
    expect(kinds).toContain('tempfail');
    expect(kinds).toContain('unknown');
    expect(kinds.filter((k) => k !== 'tempfail' && k !== 'unknown')).toEqual([]);
    await c.close();
  });
});
