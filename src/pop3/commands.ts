/**
 * The pre-auth POP3 command table (RFC 1939 §4–7, RFC 2449 CAPA, RFC 2595 STLS, RFC 5034
 * AUTH): each command is one small function over the connection's context. Login (PASS or
 * AUTH) ends in `login()`, which asks the login core and either hands over to the splice or
 * replies. NOOP and the transaction commands are not valid before login (RFC 1939 §5).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { LoginCredentials } from '../login/auth.js';
import { runLogin, type LoginWords } from '../login/flow.js';
import { credentialsFor } from '../passdb/schemes/index.js';
import type { ClientSession } from '../login/session.js';
import { authPolicy, preLoginCapabilities, starttlsOffered } from './capability.js';
import { authOutcomeReply, proxyFailureReply, REPLY } from './replies.js';
import { authCommand, offeredMechanisms } from './sasl-step.js';
import { pop3Upstream } from './upstream.js';
import type { Goodbye } from '../splice/splice.js';
import type { Pop3Command, Pop3LineReader } from './wire.js';

export interface Pop3Context {
  readonly session: ClientSession;
  reader: Pop3LineReader;
  pendingUser: Buffer | undefined;
  /** The greeting's `<...>` timestamp when APOP is offered (auth_mechanisms has `apop`). */
  readonly apopTimestamp: string | undefined;
  reply(line: string): void;
  /** The next input line is a raw SASL response for this handler. */
  awaitLine(handler: (line: Buffer) => void): void;
  bad(text: string): void;
  run(task: Promise<'continue' | 'stop'>): void;
  listen(): void;
  newReader(): Pop3LineReader;
}

type Handler = (ctx: Pop3Context, cmd: Pop3Command) => void;

export const COMMANDS: ReadonlyMap<string, Handler> = new Map<string, Handler>([
  ['CAPA', capa],
  ['USER', user],
  ['PASS', pass],
  ['AUTH', authCommand],
  ['STLS', stls],
  ['QUIT', quit],
  ['APOP', apop],
]);

/** RFC 2449 §5: a multi-line list, ended by a line with a single dot. */
function capa(ctx: Pop3Context): void {
  const lines = preLoginCapabilities(ctx.session, offeredMechanisms(ctx.session));
  ctx.session.write(`${REPLY.capa}\r\n${lines.join('\r\n')}\r\n.\r\n`);
}

function user(ctx: Pop3Context, cmd: Pop3Command): void {
  if (cmd.args === undefined || cmd.args.length === 0) return ctx.bad(REPLY.missingArgs);
  const policy = authPolicy(ctx.session);
  if (policy.tlsRequired) return ctx.reply(REPLY.tlsRequired);
  if (!policy.plaintextAllowed) return ctx.reply(REPLY.plaintextDisallowed);
  ctx.pendingUser = Buffer.from(cmd.args);
  ctx.reply(REPLY.userOk);
}

/** RFC 1939 §7: the password is the rest of the line (it may contain spaces). */
function pass(ctx: Pop3Context, cmd: Pop3Command): void {
  const name = ctx.pendingUser;
  // A PASS, whatever its outcome, uses up the USER before it.
  ctx.pendingUser = undefined;
  if (name === undefined) return ctx.bad(REPLY.noUser);
  const policy = authPolicy(ctx.session);
  if (policy.tlsRequired) return ctx.reply(REPLY.tlsRequired);
  if (!policy.plaintextAllowed) return ctx.reply(REPLY.plaintextDisallowed);
  const text = name.toString('utf8');
  if (!Buffer.from(text, 'utf8').equals(name)) return ctx.reply(REPLY.authFailed);
  login(ctx, { mech: 'USER', authcid: text, password: Buffer.from(cmd.args ?? Buffer.alloc(0)) });
}

/** RFC 2595 §4. Anything pipelined after STLS is discarded, never run after TLS. */
function stls(ctx: Pop3Context, cmd: Pop3Command): void {
  const s = ctx.session;
  if (cmd.args !== undefined) return ctx.bad(REPLY.noArgs);
  if (s.tls) return ctx.bad(REPLY.alreadyTls);
  if (!starttlsOffered(s)) return ctx.bad(REPLY.noTls);
  ctx.reply(REPLY.beginTls);
  const injected = ctx.reader.drain();
  if (injected.length > 0) s.log.warn({ bytes: injected.length }, 'discarded input pipelined after STLS (possible injection)');
  // The USER state does not survive the upgrade (RFC 2595 §4: forget what was said before).
  ctx.pendingUser = undefined;
  ctx.run(
    // ALPACA (USENIX Security 2021): as on pop3s, a client offering another protocol's ALPN id is refused.
    s.startTls(['pop3']).then((ok) => {
      if (!ok) return 'stop';
      ctx.reader = ctx.newReader();
      ctx.listen();
      return 'continue';
    }),
  );
}

function quit(ctx: Pop3Context): void {
  ctx.session.close('logout', 'Disconnected: logged out', `${REPLY.logout}\r\n`);
}

/**
 * APOP (RFC 1939 §7): `APOP name digest`, digest = MD5(greeting timestamp + password). Offered,
 * as in Dovecot, only when auth_mechanisms lists `apop`; it needs the passdb's cleartext
 * password (PLAIN scheme), which is then also the backend password.
 */
function apop(ctx: Pop3Context, cmd: Pop3Command): void {
  const timestamp = ctx.apopTimestamp;
  if (timestamp === undefined) return ctx.reply(REPLY.apopDisabled);
  if (authPolicy(ctx.session).tlsRequired) return ctx.reply(REPLY.tlsRequired);
  const m = /^(\S+) ([0-9a-fA-F]{32})$/.exec(cmd.args?.toString('latin1') ?? '');
  if (m === null) return ctx.bad(REPLY.apopInvalid);
  const nameBytes = Buffer.from(m[1] ?? '', 'latin1');
  const name = nameBytes.toString('utf8');
  if (!Buffer.from(name, 'utf8').equals(nameBytes)) return ctx.reply(REPLY.authFailed);
  const digest = Buffer.from(m[2] ?? '', 'hex');
  ctx.pendingUser = undefined;
  login(ctx, {
    mech: 'APOP',
    authcid: name,
    password: Buffer.alloc(0),
    challenge: {
      verify(stored) {
        const clear = credentialsFor(stored.stored, stored.scheme, 'PLAIN');
        if (clear === null) return false;
        const expected = createHash('md5').update(timestamp, 'latin1').update(clear).digest();
        return timingSafeEqual(expected, digest);
      },
    },
  });
}

/** Ask the login core; on success proxy, splice and stop; otherwise reply and carry on. */
export function login(ctx: Pop3Context, creds: LoginCredentials): void {
  const words: LoginWords = { upstream: pop3Upstream(), outcomeReply: authOutcomeReply, failureReply: proxyFailureReply, goodbye: POP3_BACKEND_GONE };
  ctx.run(runLogin(ctx.session, creds, words, { reply: (line) => ctx.reply(line), drain: () => ctx.reader.drain() }));
}

/**
 * A backend that vanished gets the client a last `-ERR`, unless the backend's last line was
 * already a status line (its QUIT answer, or its own `-ERR` on autologout): POP3 has no
 * unsolicited replies, so the client reads it as the answer to its next command.
 */
export const POP3_BACKEND_GONE: Goodbye = {
  text: Buffer.from('-ERR [SYS/TEMP] Server disconnected.\r\n'),
  // Kept between reads: '\n', the first 4 bytes of the last line, and '\n' when that line is
  // complete; '' when its start was not seen.
  keep(kept, recent) {
    const s = kept + recent;
    const end = s.endsWith('\n') ? s.length - 1 : s.length;
    const start = end === 0 ? -1 : s.lastIndexOf('\n', end - 1);
    if (start < 0) return '';
    return s.slice(start, Math.min(end, start + 5)) + (end < s.length ? '\n' : '');
  },
  said: (kept) => kept.startsWith('\n+OK') || kept.startsWith('\n-ERR'),
};
