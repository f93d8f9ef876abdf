/**
 * The pre-auth IMAP command table (RFC 9051 §6.1–6.2, RFC 2971 ID): each command is one small
 * function over the connection's context. Login itself (LOGIN / AUTHENTICATE) ends in
 * `login()`, which asks the login core and either hands over to the splice or replies.
 */
import { isIP } from 'node:net';
import type { LoginCredentials } from '../login/auth.js';
import { runLogin, type LoginWords } from '../login/flow.js';
import type { ClientSession } from '../login/session.js';
import { authPolicy } from './capability.js';
import { authOutcomeReply, proxyFailureReply, REPLY } from './replies.js';
import { authenticateCommand } from './sasl-step.js';
import { imapUpstream } from './upstream.js';
import { asAString, readIdParams, type IdParams } from './wire/args.js';
import type { ImapCommand, ImapCommandReader } from './wire/command-reader.js';
import { quoteIdValue } from './wire/encode.js';
import { normalizeAddress } from '../listen/netmatch.js';
import { GOODBYE_WINDOW, type Goodbye } from '../splice/splice.js';

export interface CommandContext {
  readonly session: ClientSession;
  reader: ImapCommandReader;
  advertised: string;
  /** ID parameters the client sent (kept for imap_id_retain). */
  clientId?: IdParams | undefined;
  readonly starttlsAvailable: boolean;
  reply(line: string): void;
  /** The next input line is a raw SASL response for this handler. */
  awaitLine(handler: (line: Buffer) => void): void;
  bad(tag: string | undefined, text: string): void;
  run(task: Promise<'continue' | 'stop'>): void;
  capabilities(): string;
  listen(): void;
  newReader(): ImapCommandReader;
}

type Handler = (ctx: CommandContext, cmd: ImapCommand) => void;

export const COMMANDS: ReadonlyMap<string, Handler> = new Map<string, Handler>([
  ['CAPABILITY', capability],
  ['NOOP', noop],
  ['LOGOUT', logout],
  ['ID', id],
  ['STARTTLS', starttls],
  ['LOGIN', loginCommand],
  ['AUTHENTICATE', authenticateCommand],
]);

function capability(ctx: CommandContext, cmd: ImapCommand): void {
  if (cmd.args.length > 0) return ctx.bad(cmd.tag, 'CAPABILITY takes no arguments.');
  ctx.advertised = ctx.capabilities();
  ctx.reply(`* CAPABILITY ${ctx.advertised}`);
  ctx.reply(`${cmd.tag} OK Pre-login capabilities listed, post-login capabilities have more.`);
}

function noop(ctx: CommandContext, cmd: ImapCommand): void {
  ctx.reply(`${cmd.tag} OK NOOP completed.`);
}

function logout(ctx: CommandContext, cmd: ImapCommand): void {
  ctx.session.close('logout', 'Disconnected: logged out', `${REPLY.byeLogout}\r\n${cmd.tag} OK Logout completed.\r\n`);
}

/** RFC 2971. From login_trusted_networks, the x-* fields update what portier knows of the client. */
function id(ctx: CommandContext, cmd: ImapCommand): void {
  const parsed = readIdParams(cmd.args);
  if (!parsed.ok) return ctx.bad(cmd.tag, `Invalid ID parameters (${parsed.reason}).`);
  const s = ctx.session;
  if (s.trusted) applyForwardedFacts(s, parsed.params);
  ctx.clientId = parsed.params.filter(([k]) => !k.toLowerCase().startsWith('x-'));
  ctx.reply(`* ID (${quoteIdValue('name')} ${quoteIdValue('portier')})`);
  ctx.reply(`${cmd.tag} OK ID completed.`);
}

/**
 * Dovecot's trusted ID fields: the real client behind another proxy. Addresses must parse
 * as IP addresses (Dovecot: net_addr2ip), else they are ignored: the value ends up in logs,
 * passdb variables, penalties, allow_nets and what is forwarded to the backend (R22).
 */
function applyForwardedFacts(s: ClientSession, params: IdParams): void {
  const peer = s.peer;
  for (const [key, value] of params) {
    if (value === null) continue;
    switch (key.toLowerCase()) {
      case 'x-originating-ip':
        if (isIP(value) !== 0) peer.remoteIp = normalizeAddress(value);
        else s.log.info({ key }, 'ID: forwarded address is not an IP address; ignored');
        break;
      case 'x-originating-port':
        if (/^\d{1,5}$/.test(value)) peer.remotePort = Number(value);
        break;
      case 'x-connected-ip':
        if (isIP(value) !== 0) peer.localIp = normalizeAddress(value);
        else s.log.info({ key }, 'ID: forwarded address is not an IP address; ignored');
        break;
      case 'x-connected-port':
        if (/^\d{1,5}$/.test(value)) peer.localPort = Number(value);
        break;
      case 'x-proxy-ttl':
        if (/^\d{1,3}$/.test(value)) s.proxyTtl = Math.min(s.proxyTtl, Number(value));
        break;
    }
  }
}

/** RFC 9051 §6.2.1. Anything pipelined after STARTTLS is discarded, never run after TLS. */
function starttls(ctx: CommandContext, cmd: ImapCommand): void {
  const s = ctx.session;
  if (s.tls) return ctx.bad(cmd.tag, 'TLS is already active.');
  if (!ctx.starttlsAvailable) return ctx.bad(cmd.tag, 'TLS support is not enabled.');
  ctx.reply(`${cmd.tag} ${REPLY.beginTls}`);
  const injected = ctx.reader.drain();
  if (injected.length > 0) s.log.warn({ bytes: injected.length }, 'discarded input pipelined after STARTTLS (possible injection)');
  ctx.run(
    // ALPACA (USENIX Security 2021): as on imaps, a client offering another protocol's ALPN id is refused.
    s.startTls(['imap']).then((ok) => {
      if (!ok) return 'stop';
      ctx.reader = ctx.newReader();
      ctx.listen();
      return 'continue';
    }),
  );
}

function loginCommand(ctx: CommandContext, cmd: ImapCommand): void {
  const [userArg, passArg, ...extra] = cmd.args;
  const user = asAString(userArg);
  const pass = asAString(passArg);
  if (user === undefined || pass === undefined || extra.length > 0) return ctx.bad(cmd.tag, 'Invalid arguments.');
  const policy = authPolicy(ctx.session);
  if (policy.tlsRequired) return ctx.reply(`${cmd.tag} ${REPLY.tlsRequired}`);
  if (!policy.plaintextAllowed) return ctx.reply(`${cmd.tag} ${REPLY.privacyRequired}`);
  const name = user.toString('utf8');
  if (!Buffer.from(name, 'utf8').equals(user)) return ctx.reply(`${cmd.tag} ${REPLY.authFailed}`);
  login(ctx, cmd.tag, { mech: 'LOGIN', authcid: name, password: pass });
}

/** Ask the login core; on success proxy, splice and stop; otherwise reply and carry on. */
export function login(ctx: CommandContext, tag: string, creds: LoginCredentials): void {
  const s = ctx.session;
  const upstream = imapUpstream({ clientTag: tag, advertised: ctx.advertised, clientId: s.runtime.config.imap_id_retain ? ctx.clientId : undefined });
  const words: LoginWords = {
    upstream,
    outcomeReply: (outcome, sessionId) => `${tag} ${authOutcomeReply(outcome, sessionId)}`,
    failureReply: (failure) => `${tag} ${proxyFailureReply(failure)}`,
    goodbye: IMAP_BACKEND_GONE,
  };
  ctx.run(runLogin(s, creds, words, { reply: (line) => ctx.reply(line), drain: () => ctx.reader.drain() }));
}

/**
 * A backend that vanished without its own `* BYE` still gets the client a polite one. Kept
 * between reads: a BYE line begun in the last GOODBYE_WINDOW bytes, else the last 6 bytes
 * (a `\n* BYE ` split across reads).
 */
export const IMAP_BACKEND_GONE: Goodbye = {
  text: Buffer.from('* BYE [UNAVAILABLE] Server disconnected.\r\n'),
  keep(kept, recent) {
    const s = kept + recent;
    const at = s.lastIndexOf('\n* BYE ');
    return at >= 0 && s.length - at <= GOODBYE_WINDOW ? s.slice(at) : s.slice(-6);
  },
  said: (kept) => kept.startsWith('\n* BYE '),
};
