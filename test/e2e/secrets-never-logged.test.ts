/**
 * R24: secrets never appear in anything portier writes. The real `portier serve` (debug
 * logging) proxies IMAP, POP3 and LMTP to Dovecot with sentinel passwords through every way
 * in: LOGIN (atoms and a literal), AUTHENTICATE PLAIN with and without SASL-IR, AUTHENTICATE
 * LOGIN, POP3 USER/PASS and AUTH PLAIN both ways, master logins (`user*master` and a PLAIN
 * authzid), a passdb `pass=` field, an sql passdb whose `connect` holds a password (one
 * working, one pointing at a closed port so its errors are logged), wrong passwords. Then
 * its stdout (the log), its stderr, `/metrics`, `check-config` and `auth test/lookup` output
 * are searched for every sentinel, its base64, and the base64 SASL PLAIN messages: no hit.
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { CLIENT_IP, greeted, pop3Lines } from '../support/clients.js';
import { passdbEntry, testConfig } from '../support/config.js';
import { startDovecot, type DovecotBackend } from '../support/dovecot.js';
import { LineClient } from '../support/lines.js';
import { lmtpDeliver } from '../support/lmtp-client.js';
import { freePort } from '../support/ports.js';
import { runPortierBin, type PortierProcess } from '../support/portier.js';
import { startPostgres, type PgServer } from '../support/postgres.js';
import { makeTempDir } from '../support/tmp.js';

const run = promisify(execFile);

/** Each secret has its own sentinel, so a hit says which one leaked. */
const S = {
  user: 'Sntl-User-Pw-7101',
  master: 'Sntl-Master-Pw-7102',
  passField: 'Sntl-Pass-Field-7103',
  dave: 'Sntl-Dave-Pw-7104',
  sql: 'Sntl-Sql-User-Pw-7105',
  dsn: 'Sntl-Dsn-Pw-7106',
  wrong: 'Sntl-Wrong-Pw-7107',
  literal: 'Sntl Literal "Pw" 7108',
} as const;

let backend: DovecotBackend;
let db: PgServer;
let dir: string;
let file: string;
let ports: { imap: number; pop3: number; lmtp: number; admin: number };
let proc: PortierProcess;

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');

/** Everything that must never be written: each sentinel, its base64, and the SASL PLAIN forms. */
function forbidden(): string[] {
  const out: string[] = [];
  for (const s of Object.values(S)) out.push(s, b64(s));
  for (const [authz, authc, pw] of [
    ['', 'alice', S.user], ['', 'alice', S.wrong], ['', 'dave', S.dave], ['', 'dave', S.passField], ['', 'erin', S.sql],
    ['alice', 'admin', S.master], ['alice', 'admin', S.wrong], ['', 'alice*admin', S.master],
  ] as const) {
    out.push(b64(`${authz}\0${authc}\0${pw}`));
  }
  return out;
}

function users(protocol: 'imap' | 'pop3' | 'lmtp'): string {
  const to = `proxy=y host=${backend.host} port=${backend.ports[protocol]}`;
  return [
    `alice:{PLAIN}${S.user}::::::${to}`,
    `dave:{PLAIN}${S.dave}::::::${to} pass=${S.passField}`,
    `carol:{PLAIN}${S.literal}::::::${to}`,
    '',
  ].join('\n');
}

async function sql(text: string, values: unknown[] = []): Promise<void> {
  const c = new pg.Client({ connectionString: db.connectionString });
  await c.connect();
  try {
    await c.query(text, values);
  } finally {
    await c.end();
  }
}

beforeAll(async () => {
  [backend, db] = await Promise.all([
    startDovecot({
      address: '127.0.0.2',
      users: [
        { user: 'alice', password: S.user },
        { user: 'dave', password: S.passField },
        { user: 'erin', password: S.sql },
        { user: 'carol', password: S.literal },
      ],
      masterUsers: [{ user: 'admin', password: S.master }],
      trustedNetworks: ['127.0.0.0/8'],
    }),
    startPostgres(),
  ]);
  await sql('CREATE TABLE users (userid text PRIMARY KEY, password text, host text, imap int, pop3 int, lmtp int)');
  await sql('INSERT INTO users VALUES ($1, $2, $3, $4, $5, $6)', ['erin', `{PLAIN}${S.sql}`, backend.host, backend.ports.imap, backend.ports.pop3, backend.ports.lmtp]);
  dir = await makeTempDir('portier-secrets-');
  for (const p of ['imap', 'pop3', 'lmtp'] as const) writeFileSync(join(dir, `users-${p}`), users(p));
  writeFileSync(join(dir, 'masters'), `admin:{PLAIN}${S.master}\n`);
  ports = { imap: await freePort('127.0.0.1'), pop3: await freePort('127.0.0.1'), lmtp: await freePort('127.0.0.1'), admin: await freePort('127.0.0.1') };
  const closed = await freePort('127.0.0.1');
  const query = "SELECT userid AS user, password, 'Y' AS proxy, host, CASE WHEN '%s' = 'pop3' THEN pop3 WHEN '%s' = 'lmtp' THEN lmtp ELSE imap END AS port FROM users WHERE userid = '%u'";
  file = join(dir, 'portier.yaml');
  writeFileSync(
    file,
    testConfig(['imap', 'pop3', 'lmtp'], {
      settings: {
        workers: 1,
        log_level: 'debug',
        auth_penalty_max_delay: 0,
        auth_master_user_separator: "'*'",
        auth_username_chars: "''",
        admin_listen: `127.0.0.1:${ports.admin}`,
        admin_socket: `${dir}/admin.sock`,
      },
      ports: { imap: ports.imap, pop3: ports.pop3, lmtp: ports.lmtp },
      passdb: [
        passdbEntry('passwd-file', { master: 'yes', args: `${dir}/masters` }),
        passdbEntry('sql', {
          connect: `host=${db.host} port=${db.port} dbname=${db.database} user=${db.user} password=${S.dsn} connect_timeout=2`,
          password_query: `"${query}"`,
        }),
        passdbEntry('passwd-file', { args: `${dir}/users-%s` }),
        passdbEntry('sql', {
          name: 'broken-db',
          connect: `host=127.0.0.1 port=${closed} dbname=nowhere user=nobody password=${S.dsn} connect_timeout=1`,
          query_timeout: '1s',
          password_query: `"SELECT password FROM users WHERE userid = '%u'"`,
        }),
      ].join(''),
    }),
  );
  proc = runPortierBin(['serve', '-c', file]);
  for (let i = 0; i < 200; i++) {
    const c = await LineClient.connect(ports.imap).catch(() => undefined);
    if (c !== undefined) {
      c.close();
      break;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
});

afterAll(async () => {
  if (proc !== undefined && proc.child.exitCode === null) {
    proc.child.kill('SIGTERM');
    await proc.exited;
  }
  await Promise.all([backend?.stop(), db?.stop()]);
});

async function imap(): Promise<LineClient> {
  const c = await greeted(ports.imap);
  expect(c.greeting).toMatch(/^\* OK /);
  return c;
}

/** Send the lines one at a time (a `+` continuation before each later one); the tagged reply. */
async function imapSteps(lines: string[], tag = 'a'): Promise<string> {
  const c = await imap();
  try {
    c.write(`${lines[0]}\r\n`);
    for (const next of lines.slice(1)) {
      expect(await c.line()).toMatch(/^\+/);
      c.write(`${next}\r\n`);
    }
    const reply = (await c.until(tag, 10_000)).at(-1) ?? '';
    if (reply.startsWith(`${tag} OK`)) {
      c.write('z LOGOUT\r\n');
      await c.until('z', 10_000);
    }
    return reply;
  } finally {
    c.close();
  }
}

/** Each line and its reply; the last reply. */
async function pop3Steps(lines: string[]): Promise<string> {
  const { c, replies } = await pop3Lines(ports.pop3, lines, { timeoutMs: 10_000 });
  try {
    expect(c.greeting).toMatch(/^\+OK/);
    const reply = replies.at(-1) ?? '';
    if (reply.startsWith('+OK')) {
      c.write('QUIT\r\n');
      await c.line(10_000);
    }
    return reply;
  } finally {
    c.close();
  }
}

async function cli(args: string[]): Promise<string> {
  const p = runPortierBin(args);
  await p.exited;
  return `${p.stdout()}\n${p.stderr()}`;
}

test('no sentinel, base64 or SASL blob in the log, stderr, /metrics, check-config or auth test', async () => {
  const ok = /^a OK /;
  // IMAP
  expect(await imapSteps([`a LOGIN alice ${S.user}`])).toMatch(ok);
  expect(await imapSteps([`a AUTHENTICATE PLAIN ${b64(`\0alice\0${S.user}`)}`])).toMatch(ok);
  expect(await imapSteps(['a AUTHENTICATE PLAIN', b64(`\0alice\0${S.user}`)])).toMatch(ok);
  expect(await imapSteps(['a AUTHENTICATE LOGIN', b64('alice'), b64(S.user)])).toMatch(ok);
  expect(await imapSteps([`a LOGIN alice*admin ${S.master}`])).toMatch(ok);
  expect(await imapSteps([`a AUTHENTICATE PLAIN ${b64(`alice\0admin\0${S.master}`)}`])).toMatch(ok);
  expect(await imapSteps([`a LOGIN dave ${S.dave}`])).toMatch(ok);
  expect(await imapSteps([`a LOGIN erin ${S.sql}`])).toMatch(ok);
  expect(await imapSteps([`a LOGIN carol {${Buffer.byteLength(S.literal)}}`, S.literal])).toMatch(ok);
  // Failures go on to the broken sql passdb, so they end as temporary failures (its error logged).
  expect(await imapSteps([`a LOGIN alice ${S.wrong}`])).toMatch(/^a NO \[UNAVAILABLE\]/);
  expect(await imapSteps([`a LOGIN alice*admin ${S.wrong}`])).toMatch(/^a NO /);
  expect(await imapSteps([`a AUTHENTICATE PLAIN ${b64(`\0alice\0${S.wrong}`)}`])).toMatch(/^a NO /);
  expect(await imapSteps([`a LOGIN nobody ${S.wrong}`])).toMatch(/^a NO \[UNAVAILABLE\]/);
  // POP3
  expect(await pop3Steps(['USER alice', `PASS ${S.user}`])).toMatch(/^\+OK/);
  expect(await pop3Steps([`AUTH PLAIN ${b64(`\0alice\0${S.user}`)}`])).toMatch(/^\+OK/);
  expect(await pop3Steps(['AUTH PLAIN', b64(`\0alice\0${S.user}`)])).toMatch(/^\+OK/);
  expect(await pop3Steps(['USER alice*admin', `PASS ${S.master}`])).toMatch(/^\+OK/);
  expect(await pop3Steps(['USER dave', `PASS ${S.dave}`])).toMatch(/^\+OK/);
  expect(await pop3Steps(['USER alice', `PASS ${S.wrong}`])).toMatch(/^-ERR \[SYS\/TEMP\]/);
  // LMTP: lookups without passwords, whose results carry pass= and come from the sql passdb.
  await lmtpDeliver({ host: '127.0.0.1', port: ports.lmtp, from: '', to: ['alice', 'dave', 'erin'], data: 'Subject: s\r\n\r\nhello\r\n', localAddress: CLIENT_IP });

  const metrics = await run('curl', ['-s', `http://127.0.0.1:${ports.admin}/metrics`]).then((r) => r.stdout);
  expect(metrics).toMatch(/portier_logins_total\{protocol="imap",result="proxy"\} 9/);
  proc.child.kill('SIGTERM');
  expect(await proc.exited).toBe(0);

  const outputs: Record<string, string> = {
    'serve stdout (log)': proc.stdout(),
    'serve stderr': proc.stderr(),
    '/metrics': metrics,
    'check-config': await cli(['check-config', '-c', file]),
    'check-config -n': await cli(['check-config', '-n', '-c', file]),
    'auth test': await cli(['auth', 'test', '-c', file, 'alice', S.user]),
    'auth test (master)': await cli(['auth', 'test', '-c', file, 'alice*admin', S.master]),
    'auth test (wrong)': await cli(['auth', 'test', '-c', file, 'erin', S.wrong]),
    'auth lookup': await cli(['auth', 'lookup', '-c', file, 'dave']),
    'auth lookup (sql)': await cli(['auth', 'lookup', '-c', file, 'erin']),
  };
  // The flows really ran: every login above that should work was proxied (log), and the
  // broken database's failure and the LMTP deliveries were logged.
  const log = proc.stdout();
  expect(log.match(/Started proxying/g)?.length ?? 0).toBe(14);
  expect(log).toMatch(/broken-db/);
  expect(log.match(/"msg":"recipient accepted"/g)?.length ?? 0).toBe(3);
  expect(log).toMatch(/"user":"erin"/);
  expect(outputs['auth test (wrong)']).toMatch(/erin/);
  expect(outputs['check-config']).toMatch(/connect: "\*{8}"/);
  expect(outputs['auth lookup']).toMatch(/pass/);

  const hits: string[] = [];
  for (const [where, text] of Object.entries(outputs)) {
    for (const secret of forbidden()) if (text.includes(secret)) hits.push(`${where}: ${JSON.stringify(secret)}`);
  }
  expect(hits).toEqual([]);
}, 120_000);
