/**
 * Logging in to a POP3 backend as Dovecot's pop3-proxy.c does: banner `+OK` (`+OK [XCLIENT]`
 * means the backend trusts us), STLS when asked (only if CAPA lists it; never a silent
 * plaintext fallback), XCLIENT with the client's facts and the hop TTL (unless
 * proxy_not_trusted), then USER/PASS, or AUTH PLAIN for master users and for names or
 * passwords that cannot go on a USER/PASS line. The backend's `+OK` is relayed; its refusal
 * text is not (it may tell whether a user exists), except [IN-USE] and [LOGIN-DELAY].
 */
import { failure, ProxyFailureError } from '../backend/failure.js';
import { formatXclient } from '../backend/xclient.js';
import type { ProtocolUpstream, UpstreamContext } from '../login/proxy.js';
import { safeText } from '../login/flow.js';
import { POP3_MAX_CAPA_LINES, POP3_MAX_RESPONSE_LINE, Pop3LineReader } from './wire.js';

export function pop3Upstream(): ProtocolUpstream {
  return { defaultPort: 110, defaultSslPort: 995, login: (ctx) => new UpstreamPop3(ctx).run() };
}

const protocolError = (detail: string): ProxyFailureError => new ProxyFailureError(failure('protocol', detail));
const configError = (detail: string): ProxyFailureError => new ProxyFailureError(failure('config', detail));

/** A backend line for the log: printable, bounded. */
const logText = (line: string): string => line.replace(/[^\x20-\x7e]/g, '?').slice(0, 160);

class UpstreamPop3 {
  readonly #ctx: UpstreamContext;
  #lr = new Pop3LineReader(POP3_MAX_RESPONSE_LINE);

  constructor(ctx: UpstreamContext) {
    this.#ctx = ctx;
  }

  async run(): Promise<{ reply: Buffer; rest: Buffer }> {
    const banner = (await this.#line()).toString('latin1');
    if (!banner.startsWith('+OK')) {
      if (banner.startsWith('-ERR')) throw new ProxyFailureError(failure('remote', `backend refused the connection: ${logText(banner)}`));
      throw protocolError(`invalid banner: ${logText(banner)}`);
    }
    // Dovecot's test: the banner begins exactly `+OK [XCLIENT]`.
    const xclient = banner.startsWith('+OK [XCLIENT]');
    const target = this.#ctx.outcome.target;
    if (target.tls === 'starttls') await this.#stls();
    const login = this.#loginCommand();
    if (xclient && !target.notTrusted) {
      const line = Buffer.from(`${this.#xclient()}\r\n`, 'latin1');
      if (target.nopipelining) {
        this.#write(line);
        await this.#xclientReply();
        this.#write(login.first);
      } else {
        this.#write(Buffer.concat([line, login.first]));
        await this.#xclientReply();
      }
    } else {
      this.#write(login.first);
    }
    let reply = await this.#line();
    if (login.second !== undefined) {
      // USER answered: +OK lets PASS follow; a refusal ends it here.
      if (!reply.toString('latin1').startsWith('+OK')) throw this.#refusal(reply.toString('latin1'));
      this.#write(login.second);
      reply = await this.#line();
    }
    const text = reply.toString('latin1');
    if (text.startsWith('+OK')) return { reply: Buffer.concat([reply, Buffer.from('\r\n')]), rest: this.#lr.drain() };
    if (text.startsWith('+ ')) throw protocolError('backend asked for more SASL data after a complete PLAIN response');
    throw this.#refusal(text);
  }

  /** RFC 2595 §4 towards the backend. Whatever it sent after its +OK is discarded (response injection). */
  async #stls(): Promise<void> {
    this.#write(Buffer.from('CAPA\r\n'));
    const first = (await this.#line()).toString('latin1');
    if (!first.startsWith('+OK')) throw configError(`backend does not answer CAPA (needed to find STLS): ${logText(first)}`);
    let stls = false;
    for (let n = 0; ; n++) {
      if (n > POP3_MAX_CAPA_LINES) throw protocolError('backend CAPA list too long');
      const cap = (await this.#line()).toString('latin1');
      if (cap === '.') break;
      if (cap.trim().toUpperCase() === 'STLS') stls = true;
    }
    if (!stls) throw configError('backend does not offer STLS');
    this.#write(Buffer.from('STLS\r\n'));
    const reply = (await this.#line()).toString('latin1');
    if (!reply.startsWith('+OK')) throw configError(`backend refused STLS: ${logText(reply)}`);
    this.#lr.drain();
    this.#lr = new Pop3LineReader(POP3_MAX_RESPONSE_LINE);
    await this.#ctx.reader.upgrade(this.#ctx.outcome.target.host, this.#ctx.tlsOptions());
  }

  #xclient(): string {
    const { session, ttl, outcome } = this.#ctx;
    const p = session.peer;
    // Dovecot's POP3 XCLIENT takes values as they are (no xtext) and a bare IPv6 address.
    return formatXclient(
      { addr: p.remoteIp, port: p.remotePort, session: session.id, ttl, forward: outcome.target.forward },
      { encoding: 'raw' },
    );
  }

  async #xclientReply(): Promise<void> {
    const reply = (await this.#line()).toString('latin1');
    if (!reply.startsWith('+OK')) throw configError(`backend refused XCLIENT: ${logText(reply)}`);
  }

  /**
   * USER then PASS; AUTH PLAIN with an initial response for a master login (authzid = the
   * user, authcid = the master) and when a CR or LF would break the USER/PASS lines.
   * NUL cannot be carried by either: such a login is refused before anything is sent.
   */
  #loginCommand(): { first: Buffer; second?: Buffer } {
    const { destuser, outcome } = this.#ctx;
    const user = Buffer.from(destuser, 'utf8');
    const password = outcome.password;
    const master = outcome.masterUser === undefined ? undefined : Buffer.from(outcome.masterUser, 'utf8');
    if (user.includes(0) || password.includes(0) || master?.includes(0) === true) {
      throw new ProxyFailureError(failure('auth-failed', 'user name or password contains NUL; not sent to the backend'));
    }
    if (master === undefined && !hasLineBreak(user) && !hasLineBreak(password)) {
      return {
        first: Buffer.concat([Buffer.from('USER '), user, Buffer.from('\r\n')]),
        second: Buffer.concat([Buffer.from('PASS '), password, Buffer.from('\r\n')]),
      };
    }
    const authzid = master === undefined ? Buffer.alloc(0) : user;
    const authcid = master ?? user;
    const ir = Buffer.concat([authzid, Buffer.from([0]), authcid, Buffer.from([0]), password]).toString('base64');
    return { first: Buffer.from(`AUTH PLAIN ${ir}\r\n`, 'latin1') };
  }

  /** A backend `-ERR` to the login, by its RFC 3206 / RFC 2449 response code. */
  #refusal(line: string): ProxyFailureError {
    if (!line.startsWith('-ERR')) return protocolError(`unexpected reply to the login: ${logText(line)}`);
    const m = /^-ERR \[([A-Za-z0-9/-]+)\]\s*(.*)$/.exec(line);
    const code = m?.[1]?.toUpperCase();
    const detail = `backend refused the login: ${logText(line)}`;
    switch (code) {
      case 'SYS/TEMP':
        return new ProxyFailureError(failure('remote-tempfail', detail));
      // Both follow a correct password (RFC 3206 §4, RFC 2449 §8.1.1): nothing to enumerate.
      case 'IN-USE':
      case 'LOGIN-DELAY':
        return new ProxyFailureError(failure('auth-replied', detail, `-ERR [${code}] ${safeText(m?.[2] ?? '', 'Account is temporarily in use.')}`));
      case 'SYS/PERM':
        return new ProxyFailureError(failure('auth-replied', detail, '-ERR [SYS/PERM] Account is not available.'));
      default:
        return new ProxyFailureError(failure('auth-failed', detail));
    }
  }

  #write(data: Buffer): void {
    this.#ctx.reader.write(data);
  }

  async #line(): Promise<Buffer> {
    for (;;) {
      const ev = this.#lr.next();
      if (ev !== null) {
        if (ev.kind === 'too-long') throw protocolError('backend reply line too long');
        return Buffer.from(ev.line);
      }
      this.#lr.push(await this.#ctx.reader.read());
    }
  }
}

function hasLineBreak(b: Buffer): boolean {
  return b.includes(0x0d) || b.includes(0x0a);
}
