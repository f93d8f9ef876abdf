/**
 * One set of users, written into every kind of store (passwd-file, PostgreSQL, Redis,
 * checkpassword), and the IMAP replies each login must get. Driver tests load the same
 * users and run the same table, so "the same proxy decisions from every driver" is one
 * assertion, not five similar ones.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { doveadmHash } from '../unit/passdb/schemes/doveadm.js';
import { CLIENT_IP, greeted, imapCommandOn } from '../support/clients.js';
import type { DovecotBackend } from '../support/dovecot.js';
import type { LineClient } from '../support/lines.js';

export { CLIENT_IP };

export interface StoredUser {
  readonly user: string;
  /** Cleartext (what the client types); undefined for nopassword users. */
  readonly password?: string;
  /** The scheme the store keeps it in (doveadm makes the value). */
  readonly scheme?: string;
  readonly fields: Readonly<Record<string, string>>;
}

/** The Dovecot backend's own users: portier forwards the typed password, so they match. */
export const BACKEND_USERS = [
  { user: 'alice', password: 'alice-pw' },
  { user: 'robert', password: 'bob-pw' },
  { user: 'fwd', password: 'fwd-pw' },
  { user: 'eve', password: 'Grüße-密码' },
];

export function storedUsers(b: DovecotBackend, schemes: readonly string[]): StoredUser[] {
  const to = { proxy: 'y', host: b.host, port: String(b.ports.imap) };
  const pick = (i: number): string => schemes[i % schemes.length] ?? 'PLAIN';
  return [
    { user: 'alice', password: 'alice-pw', scheme: pick(0), fields: to },
    { user: 'bob', password: 'bob-pw', scheme: pick(1), fields: { ...to, destuser: 'robert' } },
    { user: 'dave', password: 'dave-pw', scheme: pick(2), fields: { nologin: 'y', reason: 'Moved' } },
    { user: 'fwd', fields: { ...to, nopassword: 'y' } },
    { user: 'eve', password: 'Grüße-密码', scheme: pick(3), fields: to },
  ];
}

/** `{SCHEME}value` from doveadm pw, or '' for nopassword users. */
export function storedPassword(u: StoredUser): string {
  if (u.password === undefined) return '';
  return doveadmHash(u.scheme ?? 'PLAIN', Buffer.from(u.password, 'utf8'), { user: u.user });
}

export function passwdFile(users: readonly StoredUser[]): string {
  return users
    .map((u) => `${u.user}:${storedPassword(u)}::::::${Object.entries(u.fields).map(([k, v]) => `${k}=${v}`).join(' ')}\n`)
    .join('');
}

/** A checkpassword program (bash) holding the same users in cleartext, as sites' scripts do. */
export function writeCheckpasswordScript(dir: string, users: readonly StoredUser[]): string {
  const cases = users.map((u) => {
    const check = u.password === undefined ? 'true' : `check ${shellQuote(u.password)}`;
    const exports = Object.entries(u.fields).map(([k, v]) => `export ${k.toUpperCase()}=${shellQuote(v)}`).join('; ');
    const extra = Object.keys(u.fields).map((k) => k.toUpperCase()).join(' ');
    return `  ${shellQuote(u.user)}) ${check} || exit 1; ${exports}; export EXTRA=${shellQuote(extra)} ;;`;
  });
  const script = [
    '#!/bin/bash',
    '# checkpassword interface: user NUL password NUL timestamp NUL on fd 3; the reply program is $1.',
    "IFS= read -r -d '' user <&3",
    "IFS= read -r -d '' pass <&3",
    'check() { [ -n "$AUTHORIZED" ] || [ "$pass" = "$1" ]; }',
    'case "$user" in',
    ...cases,
    '  *) if [ -n "$AUTHORIZED" ]; then exit 3; fi; exit 1 ;;',
    'esac',
    'if [ -n "$AUTHORIZED" ]; then export AUTHORIZED=2; fi',
    'exec "$1"',
    '',
  ].join('\n');
  const path = join(dir, 'checkpassword.sh');
  writeFileSync(path, script, { mode: 0o755 });
  return path;
}

function shellQuote(s: string): string {
  return `'${s.replaceAll("'", "'\\''")}'`;
}

export interface Decision {
  readonly label: string;
  readonly user: string;
  readonly password: string;
  /** The tagged reply must match; OK logins also SELECT INBOX at the backend. */
  readonly reply: RegExp;
  /** Backend log user=<...> for OK logins. */
  readonly backendUser?: string;
  /** Send as AUTHENTICATE PLAIN (non-ASCII passwords) instead of LOGIN. */
  readonly sasl?: boolean;
}

export const DECISIONS: readonly Decision[] = [
  { label: 'right password → proxied', user: 'alice', password: 'alice-pw', reply: /^a OK \[CAPABILITY /, backendUser: 'alice' },
  { label: 'wrong password', user: 'alice', password: 'nope', reply: /^a NO \[AUTHENTICATIONFAILED\] Authentication failed\.$/ },
  { label: 'destuser', user: 'bob', password: 'bob-pw', reply: /^a OK \[CAPABILITY /, backendUser: 'robert' },
  { label: 'nologin with reason', user: 'dave', password: 'dave-pw', reply: /^a NO \[CONTACTADMIN\] Moved$/ },
  { label: 'nopassword: the backend checks (right)', user: 'fwd', password: 'fwd-pw', reply: /^a OK \[CAPABILITY /, backendUser: 'fwd' },
  { label: 'nopassword: the backend checks (wrong)', user: 'fwd', password: 'wrong', reply: /^a NO \[AUTHENTICATIONFAILED\] / },
  { label: 'unknown user', user: 'nobody', password: 'x', reply: /^a NO \[AUTHENTICATIONFAILED\] Authentication failed\.$/ },
  { label: 'non-ASCII password over AUTHENTICATE PLAIN', user: 'eve', password: 'Grüße-密码', reply: /^a OK \[CAPABILITY /, backendUser: 'eve', sasl: true },
];

/** The subset a static passdb (same fields for all: proxy + nopassword) decides the same way. */
export const STATIC_DECISIONS = DECISIONS.filter((d) => ['alice', 'nobody', 'eve', 'fwd'].includes(d.user));

/** One login from 127.0.0.5 (LOGIN with quoted strings, or AUTHENTICATE PLAIN); returns the tagged reply line. */
export async function imapLogin(port: number, user: string, password: string, sasl = false): Promise<{ reply: string; client: LineClient }> {
  const c = await greeted(port);
  const line = sasl ? `a AUTHENTICATE PLAIN ${Buffer.from(`\0${user}\0${password}`, 'utf8').toString('base64')}` : `a LOGIN ${quote(user)} ${quote(password)}`;
  const { reply } = await imapCommandOn(c, line, 15_000);
  return { reply, client: c };
}

/** imapLogin's reply, the connection closed. */
export async function imapLoginReply(port: number, user: string, password: string, sasl = false): Promise<string> {
  const { reply, client } = await imapLogin(port, user, password, sasl);
  client.close();
  return reply;
}

/**
 * `attempt` again every `intervalMs` until `done` takes its result or `timeoutMs` has passed
 * (for a passdb that comes back, or a file re-read); the last result, for the test to judge.
 */
export async function retry<T>(attempt: () => Promise<T>, done: (v: T) => boolean, timeoutMs: number, intervalMs: number): Promise<T> {
  const until = Date.now() + timeoutMs;
  let v = await attempt();
  while (!done(v)) {
    await new Promise((r) => setTimeout(r, intervalMs));
    if (Date.now() >= until) break;
    v = await attempt();
  }
  return v;
}

function quote(s: string): string {
  return `"${s.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`;
}

/** Run the decision table against one portier listener; OK logins must reach the right mailbox. */
export async function checkDecisions(port: number, backend: DovecotBackend, decisions: readonly Decision[] = DECISIONS): Promise<void> {
  for (const d of decisions) {
    const from = await backend.logSize();
    const { reply, client } = await imapLogin(port, d.user, d.password, d.sasl);
    try {
      expect(reply, d.label).toMatch(d.reply);
      if (d.backendUser !== undefined) {
        client.write('b SELECT INBOX\r\n');
        expect((await client.until('b')).at(-1), d.label).toMatch(/^b OK \[READ-WRITE\]/);
        const line = await backend.waitForLog(new RegExp(`imap-login: Info: Login: user=<${d.backendUser}>`), 5000, from);
        expect(line, d.label).toMatch(/rip=127\.0\.0\.5/);
      }
    } finally {
      client.close();
    }
  }
}
