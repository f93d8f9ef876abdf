/**
 * Logging in to an IMAP backend as Dovecot's proxy does (imap-proxy.c): banner `* OK`
 * (its [CAPABILITY] used, else CAPABILITY asked), STARTTLS when asked (never a silent
 * plaintext fallback), ID with the client's facts and the hop TTL, then LOGIN or AUTHENTICATE
 * PLAIN (as master user: authzid = user), pipelined unless proxy_nopipelining.
 * Untagged lines before the tagged reply are relayed, except BYE, ID and CAPABILITY.
 */
import { failure, ProxyFailureError } from '../backend/failure.js';
import type { ProtocolUpstream, UpstreamContext } from '../login/proxy.js';
import type { IdParams } from './wire/args.js';
import { encodeCommand, encodeIdParams, ImapEncodeError, type EncodeArg } from './wire/encode.js';
import { referralUrl } from './replies.js';
import { IMAP_ID_MAX_PARAMS } from './wire/limits.js';
import { capabilitiesOf, hasCapabilities, isCapabilityResponse, isIdResponse, type ImapResponse } from './wire/response.js';
import { ImapResponseReader } from './wire/response-reader.js';

export interface ImapUpstreamOptions {
  /** The client's tag for LOGIN/AUTHENTICATE: the backend's tagged reply is relayed with it. */
  readonly clientTag: string;
  /** The capability list the client was shown before login. */
  readonly advertised: string;
  /** The client's own ID parameters, sent on when imap_id_retain is set. */
  readonly clientId?: IdParams | undefined;
}

export function imapUpstream(opts: ImapUpstreamOptions): ProtocolUpstream {
  return { defaultPort: 143, defaultSslPort: 993, login: (ctx) => new UpstreamImap(ctx, opts).run() };
}

const protocolError = (detail: string): ProxyFailureError => new ProxyFailureError(failure('protocol', detail));

class UpstreamImap {
  readonly #ctx: UpstreamContext;
  readonly #opts: ImapUpstreamOptions;
  #rr = new ImapResponseReader();
  #caps: ReadonlySet<string> | undefined;
  #capsText: string | undefined;
  /** Command parts still waiting for the backend's `+` (synchronising literals, SASL). */
  #pending: Buffer[] = [];
  readonly #relay: Buffer[] = [];

  constructor(ctx: UpstreamContext, opts: ImapUpstreamOptions) {
    this.#ctx = ctx;
    this.#opts = opts;
  }

  async run(): Promise<{ reply: Buffer; rest: Buffer }> {
    const banner = await this.#next();
    if (banner.tag !== '*' || banner.status !== 'OK') {
      if (banner.status === 'PREAUTH') throw protocolError('backend greeted with PREAUTH; refusing an unauthenticated session');
      if (banner.status === 'BYE') throw new ProxyFailureError(failure('remote', `backend refused the connection: ${banner.text}`));
      throw protocolError('backend banner is not * OK');
    }
    this.#setCaps(banner);
    const target = this.#ctx.outcome.target;
    if (target.tls === 'starttls') await this.#starttls();
    if (this.#caps === undefined) await this.#command('C', 'CAPABILITY', []);
    const caps: ReadonlySet<string> = this.#caps ?? new Set<string>();
    if (caps.has('LOGINDISABLED')) {
      throw new ProxyFailureError(failure('config', 'backend advertises LOGINDISABLED (it wants TLS: set ssl or starttls for this user)'));
    }
    if (caps.has('ID') && !target.notTrusted) {
      const id = this.#idCommand();
      if (target.nopipelining) await this.#command('I', 'ID', [], id);
      else this.#ctx.reader.write(id);
    }
    this.#writeLogin(caps);
    const reply = await this.#awaitLogin();
    return { reply, rest: this.#rr.drain() };
  }

  /** STARTTLS to the backend; anything it sent after its OK is discarded (response injection). */
  async #starttls(): Promise<void> {
    if (this.#caps === undefined) await this.#command('C', 'CAPABILITY', []);
    if (!this.#caps?.has('STARTTLS')) throw new ProxyFailureError(failure('config', 'backend does not offer STARTTLS'));
    const reply = await this.#command('S', 'STARTTLS', []);
    if (reply.status !== 'OK') throw new ProxyFailureError(failure('config', `backend refused STARTTLS: ${reply.text}`));
    this.#rr.drain();
    this.#rr = new ImapResponseReader();
    await this.#ctx.reader.upgrade(this.#ctx.outcome.target.host, this.#ctx.tlsOptions());
    this.#caps = undefined;
    this.#capsText = undefined;
  }

  /** Send one command and wait for its tagged reply, consuming untagged data on the way. */
  async #command(tag: string, name: string, args: EncodeArg[], raw?: Buffer): Promise<ImapResponse> {
    this.#ctx.reader.write(raw ?? Buffer.concat(encodeCommand(tag, name, args, { literalPlus: false }).parts));
    for (;;) {
      const r = await this.#next();
      if (r.tag === tag) return r;
      this.#untagged(r);
    }
  }

  #idCommand(): Buffer {
    const { session, ttl, outcome } = this.#ctx;
    const p = session.peer;
    const params: [string, string][] = [];
    for (const [k, v] of this.#opts.clientId ?? []) if (v !== null) params.push([k, v]);
    params.push(
      ['x-session-id', session.id],
      ['x-originating-ip', p.remoteIp],
      ['x-originating-port', String(p.remotePort)],
      ['x-connected-ip', p.localIp],
      ['x-connected-port', String(p.localPort)],
      ['x-proxy-ttl', String(ttl)],
    );
    for (const [k, v] of outcome.target.forward) params.push([`x-forward-${k}`, v]);
    return Buffer.from(`I ID ${encodeIdParams(params.slice(-IMAP_ID_MAX_PARAMS))}\r\n`, 'utf8');
  }

  /** LOGIN when the strings are simple, else AUTHENTICATE PLAIN; master logins always PLAIN. */
  #writeLogin(caps: ReadonlySet<string>): void {
    const { destuser, outcome } = this.#ctx;
    const password = outcome.password;
    const master = outcome.masterUser;
    const user = Buffer.from(destuser, 'utf8');
    if (user.includes(0) || password.includes(0) || (master !== undefined && master.includes('\0'))) {
      throw new ProxyFailureError(failure('auth-failed', 'user name or password contains NUL; not sent to the backend'));
    }
    const plainWanted = master !== undefined || (!isSimple(user) || !isSimple(password)) && caps.has('AUTH=PLAIN') && caps.has('SASL-IR');
    let parts: Buffer[];
    if (plainWanted) {
      const authcid = master !== undefined ? Buffer.from(master, 'utf8') : user;
      const authzid = master !== undefined ? user : Buffer.alloc(0);
      const ir = Buffer.concat([authzid, Buffer.from([0]), authcid, Buffer.from([0]), password]).toString('base64');
      parts = caps.has('SASL-IR')
        ? [Buffer.from(`L AUTHENTICATE PLAIN ${ir === '' ? '=' : ir}\r\n`, 'latin1')]
        : [Buffer.from('L AUTHENTICATE PLAIN\r\n', 'latin1'), Buffer.from(`${ir}\r\n`, 'latin1')];
    } else {
      try {
        parts = [...encodeCommand('L', 'LOGIN', [user, password], { literalPlus: caps.has('LITERAL+') }).parts];
      } catch (err) {
        if (err instanceof ImapEncodeError) throw new ProxyFailureError(failure('auth-failed', `cannot encode the login: ${err.message}`));
        throw err;
      }
    }
    this.#ctx.reader.write(parts[0] as Buffer);
    this.#pending = parts.slice(1);
  }

  async #awaitLogin(): Promise<Buffer> {
    for (;;) {
      const r = await this.#next();
      if (r.tag === '+') {
        const part = this.#pending.shift();
        if (part === undefined) throw protocolError('unexpected continuation request from backend');
        this.#ctx.reader.write(part);
        continue;
      }
      if (r.tag === '*' || r.tag === 'I' || r.tag === 'C') {
        this.#untagged(r);
        continue;
      }
      if (r.tag !== 'L') throw protocolError(`unexpected tag from backend`);
      return this.#loginReply(r);
    }
  }

  #loginReply(r: ImapResponse): Buffer {
    if (r.status === 'OK') {
      const out = [...this.#relay];
      const referral = this.#ctx.outcome.referral;
      if (referral !== undefined) {
        // RFC 2221: logged in, but this user belongs elsewhere. The OK carries the referral code.
        if (this.#capsText !== undefined) out.push(Buffer.from(`* CAPABILITY ${this.#capsText}\r\n`, 'utf8'));
        const url = referralUrl({ user: this.#ctx.outcome.user, host: referral.host, port: referral.port, destuser: this.#ctx.outcome.target.destuser });
        out.push(Buffer.from(`${this.#opts.clientTag} OK [REFERRAL ${url}] Logged in, but you should use this server instead.\r\n`, 'utf8'));
        return Buffer.concat(out);
      }
      if (!hasCapabilities(r) && this.#capsText !== undefined && this.#capsText !== this.#opts.advertised) {
        out.push(Buffer.from(`* CAPABILITY ${this.#capsText}\r\n`, 'utf8'));
      }
      out.push(underClientTag(this.#opts.clientTag, r.raw));
      return out.length === 1 ? (out[0] as Buffer) : Buffer.concat(out);
    }
    const rest = r.raw.subarray(2).toString('utf8').replace(/\r?\n$/, '');
    if (r.status === 'NO') {
      const code = r.code?.name;
      if (code === undefined || code === 'AUTHENTICATIONFAILED') {
        throw new ProxyFailureError(failure('auth-failed', `backend refused the login: ${r.text}`));
      }
      if (code === 'UNAVAILABLE') throw new ProxyFailureError(failure('remote-tempfail', `backend temporarily unavailable: ${r.text}`, rest));
      throw new ProxyFailureError(failure('auth-replied', `backend refused the login with [${code}]: ${r.text}`, rest));
    }
    throw protocolError(`backend answered the login with ${r.status ?? 'no status'}: ${r.text}`);
  }

  /** Untagged data while logging in: capabilities are kept, BYE fails, others relayed. */
  #untagged(r: ImapResponse): void {
    if (r.tag !== '*') return;
    if (r.status === 'BYE') throw new ProxyFailureError(failure('remote', `backend said BYE: ${r.text}`));
    if (isCapabilityResponse(r)) {
      this.#setCaps(r);
      return;
    }
    if (isIdResponse(r)) return;
    this.#relay.push(r.raw);
  }

  #setCaps(r: ImapResponse): void {
    const caps = capabilitiesOf(r);
    if (caps === undefined) return;
    this.#caps = caps;
    this.#capsText = r.code?.name === 'CAPABILITY' ? r.code.args : r.text.replace(/^CAPABILITY\s+/i, '');
  }

  async #next(): Promise<ImapResponse> {
    for (;;) {
      const ev = this.#rr.next();
      if (ev !== null) {
        if (ev.kind === 'error') throw protocolError(`backend response: ${ev.detail}`);
        return ev;
      }
      this.#rr.push(await this.#ctx.reader.read());
    }
  }
}

/**
 * The backend's tagged line (`L OK ...`) under the client's tag, ending in CRLF. The line (with
 * its capability list, often 600 bytes) is copied once, not decoded, trimmed and encoded again.
 */
export function underClientTag(tag: string, raw: Buffer): Buffer {
  const lf = raw.length - 1;
  const end = raw[lf] === 0x0a ? (lf > 0 && raw[lf - 1] === 0x0d ? lf - 1 : lf) : raw.length;
  const head = Buffer.byteLength(tag, 'utf8') + 1;
  const body = end - 2;
  const out = Buffer.allocUnsafe(head + body + 2);
  out.write(tag, 0, 'utf8');
  out[head - 1] = 0x20;
  raw.copy(out, head, 2, end);
  out[head + body] = 0x0d;
  out[head + body + 1] = 0x0a;
  return out;
}

/** Printable 7-bit without quote/backslash problems: fine in a quoted string. */
function isSimple(b: Buffer): boolean {
  for (const c of b) if (c < 0x20 || c > 0x7e) return false;
  return true;
}
