import { mkdirSync, mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, test } from 'vitest';
import { PasswdFilePassdb, parsePasswdFile } from '../../../src/passdb/passwd-file.js';
import type { AuthRequest } from '../../../src/passdb/types.js';
import { silentLogger } from '../../../src/telemetry/log.js';

const req = (user: string): AuthRequest => ({
  protocol: 'imap', user, origUser: user, mech: 'PLAIN', sessionId: 's', remoteIp: '192.0.2.1', remotePort: 1,
  localIp: '192.0.2.2', localPort: 143, realRemoteIp: '192.0.2.1', realLocalIp: '192.0.2.2', secured: true,
});

describe('passwd-file', () => {
  test('parses Dovecot lines: password, uid/gid/home, extra fields with colons', () => {
    const m = parsePasswdFile('# comment\n\nalice:{PLAIN}pw:1000:1000::/home/alice::proxy=y host=::1 port=143\nbob:{SHA}x\n');
    expect(m.get('alice')?.password).toBe('{PLAIN}pw');
    expect(Object.fromEntries(m.get('alice')?.fields ?? [])).toEqual({ uid: '1000', gid: '1000', home: '/home/alice', proxy: 'y', host: '::1', port: '143', password: '{PLAIN}pw' });
    expect(m.get('alice')?.expand).toBe(false);
    expect(Object.fromEntries(m.get('bob')?.fields ?? [])).toEqual({ password: '{SHA}x' });
  });

  test('duplicate users: the first wins and a warning names the line', () => {
    const warnings: string[] = [];
    const m = parsePasswdFile('a:1\na:2\n', (line, p) => warnings.push(`${line}: ${p}`));
    expect(m.get('a')?.password).toBe('1');
    expect(warnings).toEqual(['2: duplicate user a; the first entry wins']);
  });

  test('per-domain files through %d and reload on change', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pwfile-'));
    writeFileSync(join(dir, 'example.org'), 'alice@example.org:{PLAIN}one\n');
    const db = new PasswdFilePassdb({ name: 't', path: join(dir, '%d'), log: silentLogger() });
    expect(await db.lookup(req('alice@example.org'))).toMatchObject({ kind: 'found' });
    expect(await db.lookup(req('alice@other.org'))).toEqual({ kind: 'unknown' });
    expect(await db.lookup(req('bob@example.org'))).toEqual({ kind: 'unknown' });
    // Replace the file the way a ConfigMap update does (new inode).
    writeFileSync(join(dir, 'new'), 'alice@example.org:{PLAIN}two\nbob@example.org:{PLAIN}b\n');
    renameSync(join(dir, 'new'), join(dir, 'example.org'));
    await sleep(1100);
    const found = await db.lookup(req('bob@example.org'));
    expect(found.kind).toBe('found');
    const alice = await db.lookup(req('alice@example.org'));
    expect(alice.kind === 'found' && alice.fields.get('password')).toBe('{PLAIN}two');
  });

  test('a static path and %u key: the fields are the answer, shared; fields with variables are expanded per lookup, the password never', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pwfile-'));
    const path = join(dir, 'users');
    writeFileSync(path, 'alice:{PLAIN}pw::::::proxy=y host=10.0.0.1\nbob@example.org:::::::proxy=y host=10.0.0.2 destuser=%n@backend.%d nopassword=y\ncarol:{PLAIN}50%uoff::::::proxy=y host=10.0.0.3 destuser=%u.b\n');
    const db = new PasswdFilePassdb({ name: 't', path, log: silentLogger() });
    const a1 = await db.lookup(req('alice'));
    const a2 = await db.lookup(req('alice'));
    expect(a1.kind === 'found' && Object.fromEntries(a1.fields)).toEqual({ proxy: 'y', host: '10.0.0.1', password: '{PLAIN}pw' });
    // One read-only map shared by every lookup of this user: nothing allocated per login.
    expect(a1.kind === 'found' && a2.kind === 'found' && a1.fields === a2.fields).toBe(true);
    const b = await db.lookup(req('bob@example.org'));
    const b2 = await db.lookup(req('bob@example.org'));
    expect(b.kind === 'found' && b2.kind === 'found' && b.fields !== b2.fields).toBe(true);
    expect(b.kind === 'found' && b.fields.get('destuser')).toBe('bob@backend.example.org');
    expect(b.kind === 'found' && b.fields.has('password')).toBe(false);
    const c = await db.lookup(req('carol'));
    expect(c.kind === 'found' && [c.fields.get('destuser'), c.fields.get('password')]).toEqual(['carol.b', '{PLAIN}50%uoff']);
    // A username_format other than %u still goes through the template.
    const lower = new PasswdFilePassdb({ name: 't', path, usernameFormat: '%Lu', log: silentLogger() });
    expect((await lower.lookup(req('ALICE'))).kind).toBe('found');
  });

  test('a %d value is one path component: slashes and dot-dot find nobody', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pwfile-'));
    mkdirSync(join(dir, 'sub'));
    writeFileSync(join(dir, 'sub', 'users'), 'x@sub:{PLAIN}pw\n');
    writeFileSync(join(dir, 'users'), 'x@..:{PLAIN}pw\nx@.:{PLAIN}pw\n');
    const db = new PasswdFilePassdb({ name: 't', path: join(dir, 'd', '%d', 'users'), log: silentLogger() });
    mkdirSync(join(dir, 'd'));
    for (const user of ['x@..', 'x@.', 'x@../sub', 'x@a/../../sub']) expect(await db.lookup(req(user)), user).toEqual({ kind: 'unknown' });
  });

  test('an unreadable file is a temporary failure (thrown), a missing one an unknown user', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pwfile-'));
    mkdirSync(join(dir, 'users')); // reading a directory fails with EISDIR
    const db = new PasswdFilePassdb({ name: 't', path: join(dir, 'users'), log: silentLogger() });
    await expect(db.lookup(req('alice'))).rejects.toThrow(/EISDIR/);
    const missing = new PasswdFilePassdb({ name: 't', path: join(dir, 'nope'), log: silentLogger() });
    expect(await missing.lookup(req('alice'))).toEqual({ kind: 'unknown' });
  });
});
