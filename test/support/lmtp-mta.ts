/**
 * The MTA's side of the LMTP e2e tests: a greeted connection after LHLO, a pipelined
 * envelope up to the 354, the per-recipient replies, QUIT; and small readers of what the
 * scripted backends (lmtp-peers.ts) saw.
 */
import { expect } from 'vitest';
import { CLIENT_IP, greeted } from './clients.js';
import type { LineClient } from './lines.js';
import { readReply, reply, type FakeConn, type FakeLmtp } from './lmtp-peers.js';

/** A connection to `target`'s LMTP listener, greeted and past LHLO. */
export async function lhloClient(target: Parameters<typeof greeted>[0], from = CLIENT_IP): Promise<LineClient> {
  const l = await greeted(target, 'lmtp', { from, greetingTimeoutMs: 10_000 });
  expect(l.greeting).toMatch(/^220 /);
  l.write('LHLO mta.test\r\n');
  await readReply(l);
  return l;
}

/** MAIL, the RCPTs and DATA in one write (RFC 2920), up to the 354; `rcptReplies` as expected. */
export async function envelope(l: LineClient, rcpts: string[], rcptReplies = rcpts.map(() => '250 2.1.5 OK')): Promise<void> {
  l.write(`MAIL FROM:<s@example.org>\r\n${rcpts.map((r) => `RCPT TO:<${r}>\r\n`).join('')}DATA\r\n`);
  expect(await reply(l)).toBe('250 2.1.0 OK');
  for (const [i, want] of rcptReplies.entries()) expect(await reply(l), rcpts[i]).toBe(want);
  expect(await reply(l)).toBe('354 OK');
}

/** The next `n` reply lines (after the message: one per recipient). */
export async function replies(l: LineClient, n: number, timeoutMs = 10_000): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(await reply(l, timeoutMs));
  return out;
}

export async function quit(l: LineClient): Promise<void> {
  l.write('QUIT\r\n');
  expect(await reply(l)).toBe('221 2.0.0 Bye');
}

/** A small message with this subject (content as stored: not dot-stuffed, no terminator). */
export function testMessage(subject: string, body = 'Hello.\r\n'): Buffer {
  return Buffer.from(`From: sender@example.org\r\nSubject: ${subject}\r\n\r\n${body}`);
}

/** Dovecot's per-recipient success reply for `rcpt` (as relayed by portier). */
export const saved = (rcpt: string): RegExp => new RegExp(`^250 2\\.0\\.0 <${rcpt.replace('.', '\\.')}> \\S+ Saved$`);

/** The scripted backend's `i`-th connection. */
export function fakeConn(f: FakeLmtp, i: number): FakeConn {
  const c = f.conns[i];
  if (c === undefined) throw new Error(`no connection ${i}`);
  return c;
}
