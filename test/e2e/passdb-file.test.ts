/**
 * passwd-file as operators run it: per-domain files through `%d`, picked up and reloaded while
 * portier runs (a deploy's rename and an in-place edit alike), logins through portier to a
 * real Dovecot; a domain value that would climb out of the directory finds nobody.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { passdbEntry, testConfig } from '../support/config.js';
import { startDovecot, type DovecotBackend } from '../support/dovecot.js';
import { startPortier, type RunningPortier } from '../support/portier.js';
import { doveadmHash } from '../unit/passdb/schemes/doveadm.js';
import { imapLoginReply, retry } from './passdb-fixtures.js';

let backend: DovecotBackend;
let px: RunningPortier;

const config = testConfig(['imap'], {
  settings: { log_level: 'debug' },
  passdb: passdbEntry('passwd-file', { args: 'username_format=%n {{dir}}/domains/%d/passwd' }),
});

const line = (user: string, pw: string): string =>
  `${user}:${doveadmHash('SHA256-CRYPT', Buffer.from(pw))}::::::proxy=y host=${backend.host} port=${backend.ports.imap} destuser=%n@%d uid=1000 frobnicate=1\n`;

function domainFile(domain: string, text: string): void {
  mkdirSync(join(px.dir, 'domains', domain), { recursive: true });
  writeFileSync(join(px.dir, 'domains', domain, 'passwd.new'), text);
  renameSync(join(px.dir, 'domains', domain, 'passwd.new'), join(px.dir, 'domains', domain, 'passwd'));
}

const reply = (user: string, password: string): Promise<string> => imapLoginReply(px.port('imap'), user, password);

/** The reply once it matches `want` (a file re-read takes up to a second), or the last one after 5 s. */
function eventually(user: string, password: string, want: RegExp): Promise<string> {
  return retry(() => reply(user, password), (r) => want.test(r), 5000, 200);
}

beforeAll(async () => {
  backend = await startDovecot({
    address: '127.0.0.2',
    protocols: ['imap'],
    users: ['alice@a.test', 'bob@b.test', 'carol@a.test'].map((user) => ({ user, password: `${user.split('@')[0]}-pw` })),
  });
  px = await startPortier(config);
  domainFile('a.test', line('alice', 'alice-pw'));
  domainFile('b.test', line('bob', 'bob-pw'));
});

afterAll(async () => {
  await px?.stop();
  await backend?.stop();
});

describe('passwd-file', () => {
  test('%d picks the domain file, %n is the key inside it, extra fields expand variables (destuser=%n@%d)', async () => {
    const from = await backend.logSize();
    expect(await reply('alice@a.test', 'alice-pw')).toMatch(/^a OK \[CAPABILITY /);
    await backend.waitForLog(/Login: user=<alice@a\.test>/, 5000, from);
    expect(await reply('bob@b.test', 'bob-pw')).toMatch(/^a OK /);
    // Fields portier does not use are kept and reported at debug level, userdb ones silently.
    const unknown = await px.waitForLog((l) => l.msg === 'passdb returned fields portier does not use');
    expect(unknown['fields']).toEqual(['frobnicate']);
    expect(await reply('alice@b.test', 'alice-pw')).toMatch(/^a NO \[AUTHENTICATIONFAILED\]/);
    expect(await reply('alice@c.test', 'alice-pw')).toMatch(/^a NO \[AUTHENTICATIONFAILED\]/);
    expect(await reply('alice@..', 'alice-pw')).toMatch(/^a NO \[AUTHENTICATIONFAILED\]/);
  });

  test('a replaced file is re-read while running: a new user, a changed password', async () => {
    domainFile('a.test', line('alice', 'alice-new') + line('carol', 'carol-pw'));
    expect(await eventually('carol@a.test', 'carol-pw', /^a OK /)).toMatch(/^a OK \[CAPABILITY /);
    expect(await reply('alice@a.test', 'alice-pw')).toMatch(/^a NO \[AUTHENTICATIONFAILED\]/);
    // An edit in place (same inode, new size and mtime) is seen too.
    writeFileSync(join(px.dir, 'domains', 'a.test', 'passwd'), line('alice', 'alice-pw'));
    expect(await eventually('alice@a.test', 'alice-pw', /^a OK /)).toMatch(/^a OK /);
    expect(await reply('carol@a.test', 'carol-pw')).toMatch(/^a NO \[AUTHENTICATIONFAILED\]/);
  });

  test('a domain created while running is found', async () => {
    expect(await reply('dan@new.test', 'x')).toMatch(/^a NO /);
    domainFile('new.test', line('bob', 'bob-pw').replace('destuser=%n@%d', 'destuser=%n@b.test'));
    expect(await eventually('bob@new.test', 'bob-pw', /^a OK /)).toMatch(/^a OK /);
  });
});
