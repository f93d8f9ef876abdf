/**
 * The pre-auth POP3 command table (RFC 1939 §4–7, RFC 2449 CAPA, RFC 2595 STLS, RFC 5034
 * AUTH): each command is one small function over the connection's context. Login (PASS or
 * AUTH) ends in `login()`, which asks the login core and either hands over to the splice or
 * replies. NOOP and the transaction commands are not valid before login (RFC 1939 §5).
 */
import type { LoginCredentials } from '../login/auth.js';
import { runLogin, type LoginWords } from '../login/flow.js';
import type { ClientSession } from '../login/session.js';
import { authPolicy, preLoginCapabilities, starttlsOffered } from './capability.js';
import { authOutcomeReply, proxyFailureReply, REPLY } from './replies.js';
import { authCommand, offeredMechanisms } from './sasl-step.js';
import { pop3Upstream } from './upstream.js';
import type { Pop3Command, Pop3LineReader } from './wire.js';

export interface Pop3Context {
  readonly session: ClientSession;
  reader: Pop3LineReader;
  pendingUser: Buffer | undefined;
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
    s.startTls(undefined).then((ok) => {
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

/** APOP (RFC 1939 §7) would need the cleartext password from the passdb; not offered. */
function apop(ctx: Pop3Context): void {
  ctx.reply(REPLY.apopDisabled);
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
const POP3_BACKEND_GONE = {
  text: Buffer.from('-ERR [SYS/TEMP] Server disconnected.\r\n'),
  said: (tail: Buffer) => /(^|\n)(\+OK|-ERR)[^\n]*\n?$/.test(tail.toString('latin1')),
};
