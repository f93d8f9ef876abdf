/**
 * The LMTP command table (RFC 2033, RFC 5321 §4.1, RFC 3207 STARTTLS, Postfix XCLIENT), each
 * command one small function over the session's context. Protocol errors go through `bad()`
 * (counted); refusals that are normal mail traffic (unknown recipient, size) do not.
 */
import { isIP } from 'node:net';
import { starttlsOffered } from '../imap/capability.js';
import type { ClientSession } from '../login/session.js';
import { mailboxText, parsePathArgs, xtextDecode } from './address.js';
import { REPLY } from './replies.js';
import { routeRecipient } from './recipient.js';
import type { KeptConnections } from './pool.js';
import { Transaction } from './transaction.js';
import type { BackendConnection, UpstreamContext } from './upstream.js';

/** Recipients per transaction (RFC 5321 §4.5.3.1.8 asks for at least 100). */
export const LMTP_MAX_RECIPIENTS = 1000;

/** XCLIENT attributes a trusted peer may send (Dovecot's list); LOGIN, PROTO and TIMEOUT are accepted and ignored. */
export const XCLIENT_ACCEPTED = ['ADDR', 'PORT', 'PROTO', 'HELO', 'LOGIN', 'SESSION', 'TTL', 'TIMEOUT'];

export interface LmtpContext {
  readonly session: ClientSession;
  readonly hostname: string;
  /** The name from LHLO; undefined until then (and after STARTTLS / XCLIENT). */
  helo: string | undefined;
  /** The original client's HELO name, from a trusted peer's XCLIENT. */
  forwardedHelo: string | undefined;
  tx: Transaction | undefined;
  /** Backend connections kept between this session's transactions. */
  readonly kept: KeptConnections<BackendConnection>;
  reply(line: string): void;
  bad(line: string): void;
  run(task: Promise<'continue' | 'stop'>): void;
  beginData(): void;
  startTls(): void;
  resetClient(): void;
  endTransaction(): void;
  upstreamContext(): UpstreamContext;
}

type Handler = (ctx: LmtpContext, args: string) => void;

export const COMMANDS: ReadonlyMap<string, Handler> = new Map<string, Handler>([
  ['LHLO', lhlo],
  ['MAIL', mail],
  ['RCPT', rcpt],
  ['DATA', data],
  ['RSET', rset],
  ['NOOP', (ctx) => ctx.reply(REPLY.ok)],
  ['VRFY', (ctx) => ctx.reply(REPLY.vrfy)],
  ['QUIT', (ctx) => ctx.session.close('logout', 'Disconnected: logged out', `${REPLY.bye}\r\n`)],
  ['STARTTLS', starttls],
  ['XCLIENT', xclient],
]);

/** RFC 2033 §4.1 (and RFC 5321 §4.1.4: it resets the transaction). */
function lhlo(ctx: LmtpContext, args: string): void {
  const name = args.trim();
  if (name === '' || name.length > 255 || !/^[\x21-\x7e]+$/.test(name)) return ctx.bad(REPLY.lhloSyntax);
  ctx.endTransaction();
  ctx.helo = name;
  const s = ctx.session;
  const max = s.runtime.config.lmtp_max_mail_size;
  const caps = ['8BITMIME', 'ENHANCEDSTATUSCODES', 'PIPELINING'];
  if (max > 0) caps.push(`SIZE ${max}`);
  if (starttlsOffered(s)) caps.push('STARTTLS');
  if (s.trusted) caps.push(`XCLIENT ${XCLIENT_ACCEPTED.join(' ')}`);
  const lines = [ctx.hostname, ...caps];
  ctx.reply(lines.map((l, i) => `250${i === lines.length - 1 ? ' ' : '-'}${l}`).join('\r\n'));
}

function mail(ctx: LmtpContext, args: string): void {
  const s = ctx.session;
  if (ctx.helo === undefined) return ctx.bad(REPLY.lhloFirst);
  if (ctx.tx !== undefined) return ctx.bad(REPLY.mailGiven);
  if (s.runtime.config.ssl === 'required' && !s.secured) return ctx.reply('530 5.7.0 Must issue a STARTTLS command first');
  const p = parsePathArgs(args, 'FROM');
  if (!p.ok) return ctx.bad(`501 5.5.4 Invalid FROM: ${p.error}`);
  let body: string | undefined;
  let size: number | undefined;
  for (const [key, value] of p.params) {
    if (key === 'SIZE' && value !== undefined && /^\d{1,15}$/.test(value)) size = Number(value);
    else if (key === 'BODY' && value !== undefined) {
      body = value.toUpperCase();
      if (body !== '7BIT' && body !== '8BITMIME') return ctx.bad(REPLY.unsupportedBody);
    } else return ctx.bad(REPLY.unsupportedParams);
  }
  const max = s.runtime.config.lmtp_max_mail_size;
  // RFC 1870 §6.1: a declared size over the limit is refused at once, permanently.
  if (size !== undefined && max > 0 && size > max) return ctx.reply(REPLY.sizeExceeded);
  const from = p.mailbox === null ? '' : mailboxText(p.mailbox);
  ctx.tx = new Transaction(s, ctx.upstreamContext(), { from, body, size }, ctx.kept);
  ctx.reply(REPLY.mailOk);
}

function rcpt(ctx: LmtpContext, args: string): void {
  const tx = ctx.tx;
  if (tx === undefined) return ctx.bad(REPLY.mailFirst);
  const p = parsePathArgs(args, 'TO');
  if (!p.ok) return ctx.bad(`501 5.5.4 Invalid TO: ${p.error}`);
  if (p.mailbox === null) return ctx.bad('501 5.5.4 Invalid TO: empty path');
  let orcpt: string | undefined;
  for (const [key, value] of p.params) {
    // ORCPT (RFC 3461 §4.2) is passed on; Dovecot's LMTP takes it without DSN.
    if (key === 'ORCPT' && value !== undefined && /^[A-Za-z0-9-]+;/.test(value) && xtextDecode(value.slice(value.indexOf(';') + 1)) !== null) orcpt = value;
    else return ctx.bad(REPLY.unsupportedParams);
  }
  if (tx.rcptCommands >= LMTP_MAX_RECIPIENTS) return ctx.reply(REPLY.tooManyRecipients);
  tx.rcptCommands++;
  const mailbox = p.mailbox;
  const address = mailboxText(mailbox);
  const s = ctx.session;
  ctx.run(
    (async () => {
      const decision = await routeRecipient(s, mailbox, orcpt);
      if (s.ended) return 'stop';
      if (decision.kind === 'reply') {
        s.log[decision.warn ? 'warn' : 'info']({ rcpt: address, why: decision.why }, `recipient refused: ${decision.reply}`);
        ctx.reply(decision.reply);
        return 'continue';
      }
      const line = await tx.addRecipient(decision, address);
      if (s.ended) return 'stop';
      ctx.reply(line);
      return 'continue';
    })(),
  );
}

/** RFC 2033 §4.2: no accepted recipient, no DATA (503); otherwise 354 and the message follows. */
function data(ctx: LmtpContext, args: string): void {
  if (args.trim() !== '') return ctx.bad(REPLY.noArgs);
  const tx = ctx.tx;
  if (tx === undefined) return ctx.bad(REPLY.mailFirst);
  // With PIPELINING the client sends DATA before it knows the RCPT replies: not a bad command.
  if (tx.accepted.length === 0) return ctx.reply(REPLY.noRecipients);
  ctx.reply(REPLY.dataGo);
  ctx.beginData();
}

function rset(ctx: LmtpContext): void {
  ctx.endTransaction();
  ctx.reply(REPLY.ok);
}

/** RFC 3207 §4: anything pipelined after STARTTLS is discarded, never run after the handshake. */
function starttls(ctx: LmtpContext, args: string): void {
  const s = ctx.session;
  if (args.trim() !== '') return ctx.bad(REPLY.noArgs);
  if (s.tls) return ctx.bad(REPLY.alreadyTls);
  if (!starttlsOffered(s)) return ctx.bad(REPLY.noTls);
  ctx.reply(REPLY.beginTls);
  ctx.startTls();
}

/**
 * Postfix XCLIENT from login_trusted_networks: the real client's address, port, session and
 * hop TTL for logs, passdb variables and loop detection, and its HELO name to pass on; the
 * session starts over with a
 * new greeting (the client sends LHLO again).
 */
function xclient(ctx: LmtpContext, args: string): void {
  const s = ctx.session;
  if (!s.trusted) return ctx.bad(REPLY.notTrusted);
  if (ctx.tx !== undefined) return ctx.bad(REPLY.inTransaction);
  const words = args.trim().split(/ +/).filter((w) => w !== '');
  if (words.length === 0) return ctx.bad(REPLY.xclientSyntax);
  const set: { addr?: string; port?: number; ttl?: number; session?: string; helo?: string } = {};
  for (const word of words) {
    const eq = word.indexOf('=');
    const name = word.slice(0, eq).toUpperCase();
    const value = eq > 0 ? xtextDecode(word.slice(eq + 1)) : null;
    if (value === null || !XCLIENT_ACCEPTED.includes(name)) return ctx.bad(REPLY.xclientSyntax);
    // [UNAVAILABLE] / [TEMPUNAVAIL]: the proxy does not know; keep what we have.
    if (value.startsWith('[')) continue;
    if (name === 'ADDR') {
      const ip = value.replace(/^IPV6:/i, '');
      if (isIP(ip) === 0) return ctx.bad(REPLY.xclientSyntax);
      set.addr = ip;
    } else if (name === 'PORT' || name === 'TTL') {
      const n = Number(value);
      if (!/^\d{1,5}$/.test(value) || (name === 'PORT' && n > 65535)) return ctx.bad(REPLY.xclientSyntax);
      if (name === 'PORT') set.port = n;
      else set.ttl = n;
    } else if (name === 'SESSION') {
      set.session = value.slice(0, 64);
    } else if (name === 'HELO') {
      if (!/^[\x21-\x7e]{1,255}$/.test(value)) return ctx.bad(REPLY.xclientSyntax);
      set.helo = value;
    }
  }
  if (set.addr !== undefined) s.peer.remoteIp = set.addr;
  if (set.port !== undefined) s.peer.remotePort = set.port;
  if (set.ttl !== undefined) s.proxyTtl = set.ttl;
  s.log.info({ rip: s.peer.remoteIp, rport: s.peer.remotePort, ttl: set.ttl, forwarded_session: set.session }, 'XCLIENT from a trusted peer');
  ctx.resetClient();
  if (set.helo !== undefined) ctx.forwardedHelo = set.helo;
  ctx.reply(`220 ${ctx.hostname} ${s.runtime.config.login_greeting}`);
}
