/**
 * The passdb chain's decisions with Dovecot's result actions, over real drivers (static and
 * passwd-file on temp files): deny lists, the deciding passdb's name, tempfail precedence.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { parseConfig } from '../../../src/config/load.js';
import { PassdbChain } from '../../../src/passdb/chain.js';
import { closeHashPool } from '../../../src/passdb/schemes/index.js';
import type { AuthRequest } from '../../../src/passdb/types.js';
import { silentLogger } from '../../../src/telemetry/log.js';

afterAll(closeHashPool);

const req = (user: string, password?: string): AuthRequest => ({
  protocol: 'imap', user, origUser: user, mech: 'PLAIN', sessionId: 's', remoteIp: '192.0.2.1', remotePort: 1,
  localIp: '192.0.2.2', localPort: 143, realRemoteIp: '192.0.2.1', realLocalIp: '192.0.2.2', secured: true,
  password: password === undefined ? undefined : Buffer.from(password),
});

function chain(passdbYaml: string, files: Record<string, string>): PassdbChain {
  const dir = mkdtempSync(join(tmpdir(), 'chain-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  const loaded = parseConfig(`protocols: imap\nssl: no\npassdb:\n${passdbYaml.replaceAll('{{dir}}', dir)}`, join(dir, 'portier.yaml'));
  return new PassdbChain(loaded.config, silentLogger());
}

describe('passdb chain', () => {
  test('a deny passdb refuses listed users by name alone (no password in the deny file)', async () => {
    const c = chain(
      `  - driver: passwd-file\n    deny: yes\n    args: {{dir}}/deny\n  - driver: passwd-file\n    args: scheme=PLAIN {{dir}}/users\n`,
      { deny: 'mallory\n', users: 'mallory:pw::::::proxy=y host=192.0.2.9\nalice:pw::::::proxy=y host=192.0.2.9\n' },
    );
    expect((await c.authenticate(req('mallory', 'pw'))).kind).toBe('mismatch');
    expect((await c.authenticate(req('mallory'))).kind).toBe('mismatch');
    expect(await c.authenticate(req('alice', 'pw'))).toMatchObject({ kind: 'ok', user: 'alice', passdb: 'passwd-file#1' });
    await c.close();
  });

  test('continue-ok then a static tier with skip unauthenticated: fields added, wrong passwords still fail', async () => {
    const c = chain(
      `  - driver: passwd-file\n    name: users\n    args: scheme=PLAIN {{dir}}/users\n    result_success: continue-ok\n  - driver: static\n    name: tier\n    skip: unauthenticated\n    args: proxy=y host=192.0.2.7 nopassword=y\n`,
      { users: 'alice:pw\n' },
    );
    const r = await c.authenticate(req('alice', 'pw'));
    expect(r).toMatchObject({ kind: 'ok', passdb: 'tier' });
    expect(r.kind === 'ok' && r.fields.get('host')).toBe('192.0.2.7');
    expect((await c.authenticate(req('alice', 'nope'))).kind).toBe('mismatch');
    expect((await c.authenticate(req('bob', 'pw'))).kind).toBe('unknown');
    await c.close();
  });

  test('nopassword: any password without a stored one; with a stored one it is still checked (as Dovecot does)', async () => {
    const c = chain(`  - driver: passwd-file\n    args: scheme=PLAIN {{dir}}/users\n`, {
      users: 'free:::::::nopassword=y proxy=y host=192.0.2.9\nboth:pw::::::nopassword=y proxy=y host=192.0.2.9\n',
    });
    expect((await c.authenticate(req('free', 'anything'))).kind).toBe('ok');
    expect((await c.authenticate(req('both', 'pw'))).kind).toBe('ok');
    expect((await c.authenticate(req('both', 'nope'))).kind).toBe('mismatch');
    await c.close();
  });
});
