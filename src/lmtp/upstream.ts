/**
 * One LMTP (or SMTP, `protocol=smtp`) connection to a backend, as Dovecot's lmtp-proxy does
 * it with lib-smtp: greeting, LHLO/EHLO, STARTTLS when asked (never a silent plaintext
 * fallback), XCLIENT with the client's facts and the hop TTL when the backend offers it
 * (unless proxy_not_trusted), then MAIL FROM, one RCPT per recipient, DATA (as soon as the
 * client's DATA is accepted: the 354 comes back while the client sends the message), the
 * message, and one reply per recipient (RFC 2033 §4.2; SMTP: one for all); to a backend that
 * offers CHUNKING, one `BDAT <size> LAST` with the message instead (RFC 3030). Every wait is
 * bounded by the route's timeout, re-armed whenever the backend makes progress. A connection whose
 * transaction ended cleanly can carry the same client session's next one (`again()`,
 * kept in pool.ts); its `phase` says whether the backend is ready for MAIL.
 */
import type { Socket } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import { connectTcp, startClientTls } from '../backend/connect.js';
import { asFailure, failure, ProxyFailureError, type ProxyFailure } from '../backend/failure.js';
import type { BackendTls } from '../passdb/fields.js';
import { encodeForward, formatXclient, xtextEncode, type XclientParams } from '../backend/xclient.js';
import { errorText } from '../errors.js';
import { DotEncoder } from './dot.js';
import { printable, SmtpReplyReader, type SmtpReply } from './wire.js';

/** Where a group of recipients is delivered; recipients with equal keys share a connection. */
export interface BackendRoute {
  readonly key: string;
  /** `host:port` for logs and health records. */
  readonly name: string;
  readonly protocol: 'lmtp' | 'smtp';
  /** As the passdb gave it: for SNI and certificate checks. */
  readonly host: string;
  readonly address: string;
  readonly port: number;
  readonly sourceIp: string | undefined;
  readonly tls: BackendTls;
  readonly anyCert: boolean;
  /** passdb `ssl_server_name`: the name to verify (and send as SNI) instead of `host`. */
  readonly sslServerName: string | undefined;
  readonly notTrusted: boolean;
  readonly timeoutMs: number;
  /** The TTL this hop sends on. */
  readonly ttl: number;
  /** The co-located backend (proxy_maybe to self, or unknown users with local_backend.lmtp). */
  readonly local: boolean;
}

export interface UpstreamContext {
  /** Our name in LHLO. */
  readonly hostname: string;
  /** What XCLIENT tells the backend about the client. */
  readonly client: XclientParams;
  /** TLS options towards this route's backend (name to verify, SNI, CA, client certificate). */
  tlsOptions(route: BackendRoute): ConnectionOptions;
}

export interface Envelope {
  /** The reverse path without brackets ('' is the null sender). */
  readonly from: string;
  readonly body: string | undefined;
  readonly size: number | undefined;
}

/** One recipient for the backend's RCPT TO. */
export interface Recipient {
  readonly address: string;
  readonly orcpt: string | undefined;
  readonly forward: ReadonlyMap<string, string>;
}

/** The backend's MAIL reply and, when it was pipelined with MAIL (RFC 2920), the first recipient's RCPT reply. */
export interface Opening {
  readonly mail: SmtpReply;
  readonly rcpt: SmtpReply | undefined;
}

/**
 * Where the backend's SMTP state is (RFC 5321 §3.3): `ready` for MAIL (after the greeting
 * dialogue or a completed DATA), `mail` with a transaction open (MAIL accepted, DATA not
 * done: RSET needed before the next MAIL), `data` after DATA was sent and before the
 * terminating dot (only destroy() ends it: the backend must drop the partial message, and
 * anything written would be message content), `spent` when it must not carry another
 * transaction (MAIL refused, DATA refused or cut, a reply nobody expected).
 */
export type BackendPhase = 'ready' | 'mail' | 'data' | 'spent';

/**
 * Everything the backend was told about the client on a connection (XCLIENT, the LHLO name,
 * the hop TTL): a kept connection only carries a transaction whose facts are the same.
 */
export function clientFacts(ctx: UpstreamContext, route: BackendRoute): string {
  const c = ctx.client;
  return [ctx.hostname, c.addr, c.port, c.helo, c.proto, c.session, route.ttl, route.notTrusted].join('\n');
}

/** What the backend said to one recipient's DATA, or why it said nothing. */
export type DataResult = { readonly reply: SmtpReply } | { readonly failure: ProxyFailure };

/**
 * The backend's reply to the DATA command itself (354 to go on), or why there was none, or
 * `bdat`: a CHUNKING backend, asked nothing, takes the message as one BDAT.
 */
export type DataStart = { readonly reply: SmtpReply } | { readonly failure: ProxyFailure } | { readonly bdat: true };

/** XCLIENT attributes portier can fill in; only those the backend lists are sent. */
const XCLIENT_ATTRS = ['ADDR', 'PORT', 'HELO', 'PROTO', 'SESSION', 'TTL'] as const;

/** Replies read ahead of portier's commands; a backend sending more is broken. */
const MAX_QUEUED_REPLIES = 1000;

/** Message bytes gathered into one write towards the backend. */
const DATA_WRITE_BATCH = 64 * 1024;

/** After QUIT, how long the backend has to close the connection before portier cuts it. */
const QUIT_WAIT = 1000;

const BDAT_GO: DataStart = { bdat: true };

/** RFC 5321 §4.5.3.1.4 and Postfix's XCLIENT: a command line of at most 512 octets. */
const MAX_XCLIENT_LINE = 510;

const fault = (kind: ProxyFailure['kind'], detail: string): ProxyFailureError => new ProxyFailureError(failure(kind, detail));

export class BackendConnection {
  #route: BackendRoute;
  #socket: Socket;
  #reader = new SmtpReplyReader();
  readonly #replies: SmtpReply[] = [];
  #waiter: (() => void) | undefined;
  #failure: ProxyFailure | undefined;
  #timer: NodeJS.Timeout | undefined;
  #caps = new Map<string, string>();
  /** The terminating dot has been written: from then on the message may have been delivered. */
  #committed = false;
  #phase: BackendPhase = 'spent';
  /** Transactions this connection has carried (1 for a new one). */
  #transactions = 0;
  /** The attributes the last XCLIENT set (undefined: none was sent, the backend knows no client). */
  #told: string | undefined;
  /** The current transaction's DATA command and its reply, once sent (startData). */
  #dataGo: Promise<DataStart> | undefined;
  /** While kept idle between transactions: called once when the connection is lost. */
  #idleWatch: (() => void) | undefined;
  #quitTimer: NodeJS.Timeout | undefined;

  private constructor(route: BackendRoute, socket: Socket) {
    this.#route = route;
    this.#socket = socket;
    this.#attach(socket);
  }

  /** Connect (and TLS for `ssl=yes`); throws ProxyFailureError. */
  static async connect(route: BackendRoute, ctx: UpstreamContext): Promise<BackendConnection> {
    const signal = AbortSignal.timeout(route.timeoutMs);
    let socket: Socket = await connectTcp({ host: route.host, address: route.address, port: route.port, sourceIp: route.sourceIp }, signal);
    if (route.tls === 'ssl' && !route.local) {
      socket = await startClientTls(socket, route.host, ctx.tlsOptions(route), signal);
    }
    return new BackendConnection(route, socket);
  }

  /** The route of the transaction it carries now (a kept connection takes the next one's). */
  get route(): BackendRoute {
    return this.#route;
  }

  get failure(): ProxyFailure | undefined {
    return this.#failure;
  }

  get committed(): boolean {
    return this.#committed;
  }

  get phase(): BackendPhase {
    return this.#phase;
  }

  /** More than one transaction on this connection: the current one reuses it. */
  get reused(): boolean {
    return this.#transactions > 1;
  }

  /** Usable for another transaction: open, nothing unread, backend in a known state. */
  get reusable(): boolean {
    return this.#failure === undefined && (this.#phase === 'ready' || this.#phase === 'mail') && this.#replies.length === 0 && this.#waiter === undefined && !this.#socket.destroyed;
  }

  /** Greeting, LHLO, STARTTLS, XCLIENT, MAIL FROM (and the first RCPT, pipelined when offered). */
  async begin(ctx: UpstreamContext, envelope: Envelope, first?: Recipient): Promise<Opening> {
    const greeting = await this.#reply();
    if (greeting.code !== 220) throw fault('remote', `backend refused the connection: ${greeting.code} ${printable(greeting.lines.join(' '))}`);
    await this.#hello(ctx);
    if (this.route.tls === 'starttls' && !this.route.local) {
      if (!this.#caps.has('STARTTLS')) throw fault('config', 'backend does not offer STARTTLS');
      const r = await this.#command('STARTTLS');
      if (r.code !== 220) throw fault('config', `backend refused STARTTLS: ${r.code} ${printable(r.lines.join(' '))}`);
      await this.#upgrade(ctx);
      await this.#hello(ctx);
    }
    const attrs = this.#caps.get('XCLIENT');
    if (attrs !== undefined && !this.route.notTrusted) {
      const x = this.#xclient(ctx, attrs);
      const r = await this.#command(x.line);
      // Postfix and Dovecot answer with a new greeting; the session starts over (LHLO again).
      if (r.code !== 220 && (r.code < 200 || r.code > 299)) {
        throw fault('config', `backend refused XCLIENT: ${r.code} ${printable(r.lines.join(' '))}`);
      }
      this.#told = x.attrs;
      await this.#hello(ctx);
    }
    return this.#mail(false, envelope, first);
  }

  /**
   * Can carry another client session (pool.ts, IdleBackends): reusable, no transaction open,
   * and the backend was told its client by XCLIENT, so a new XCLIENT can tell it the next one.
   */
  get shareable(): boolean {
    return this.reusable && this.#phase === 'ready' && this.#told !== undefined;
  }

  /**
   * Another client session's first transaction on this connection, left idle by an earlier
   * session: XCLIENT with this client's facts (the backend starts the session over: a new
   * greeting), LHLO, then MAIL FROM (and the first RCPT). Not used, and nothing sent, when the
   * new XCLIENT cannot carry every attribute the last one set (`'unfit'`: a HELO name too long
   * for the line is left out, and the backend would keep the earlier client's); `'refused'`
   * when the backend refuses the second XCLIENT. Either way the caller QUITs it and opens a
   * new one. Throws when the connection is not usable: closed, a bad reply, a timeout.
   */
  async adopt(ctx: UpstreamContext, route: BackendRoute, envelope: Envelope, first?: Recipient): Promise<Opening | 'refused' | 'unfit'> {
    if (!this.shareable) throw new ProxyFailureError(this.#failure ?? failure('remote', `backend ${this.route.name}: connection not reusable`));
    const x = this.#xclient(ctx, this.#caps.get('XCLIENT') ?? '');
    if (x.attrs !== this.#told) return 'unfit';
    this.#idleWatch = undefined;
    this.#route = route;
    this.#phase = 'spent';
    const r = await this.#command(x.line);
    if (r.code !== 220 && (r.code < 200 || r.code > 299)) {
      // The backend still has the earlier client's facts: this connection carries nothing more.
      this.#told = undefined;
      return 'refused';
    }
    await this.#hello(ctx);
    return this.#mail(false, envelope, first);
  }

  /**
   * The next transaction on a kept connection: RSET first when the last one was left open
   * (its reply must be 250), then MAIL FROM (and the first RCPT, pipelined when offered).
   * Throws when the connection turns out to be unusable (closed by the backend, RSET
   * refused, 421: RFC 5321 §3.8 "closing"); the caller then opens a new one. A 421 is a
   * failure, not a refusal to relay.
   */
  async again(route: BackendRoute, envelope: Envelope, first?: Recipient): Promise<Opening> {
    if (!this.reusable) throw new ProxyFailureError(this.#failure ?? failure('remote', `backend ${this.route.name}: connection not reusable`));
    this.#idleWatch = undefined;
    // Same key, so same place and TLS; the timeout is this transaction's recipient's.
    this.#route = route;
    const opened = await this.#mail(this.#phase === 'mail', envelope, first);
    if (opened.mail.code === 421) {
      throw fault('remote', `backend ${this.route.name} is closing the kept connection: ${printable(opened.mail.lines.join(' '))}`);
    }
    return opened;
  }

  /**
   * Kept idle between transactions: the backend closing it (idle timeout, restart) or
   * saying anything at all (a 421 before it closes) ends it, and `onLost` is told once.
   */
  keepIdle(onLost: () => void): void {
    this.#idleWatch = onLost;
  }

  /**
   * [RSET,] MAIL FROM and the first RCPT: one write, replies read in order, when the backend
   * offers PIPELINING (RFC 2920 §3.1: RSET, MAIL and RCPT may be pipelined); else one at a time
   * and the RCPT is left to rcpt(). RSET must get 250, or the connection is not usable.
   */
  async #mail(rset: boolean, envelope: Envelope, first: Recipient | undefined): Promise<Opening> {
    let mail = `MAIL FROM:<${envelope.from}>`;
    if (envelope.body !== undefined && this.#caps.has('8BITMIME')) mail += ` BODY=${envelope.body}`;
    if (envelope.size !== undefined && this.#caps.has('SIZE')) mail += ` SIZE=${envelope.size}`;
    this.#transactions++;
    this.#committed = false;
    this.#dataGo = undefined;
    this.#phase = 'spent';
    const pipelining = this.#caps.has('PIPELINING');
    const rcpt = first !== undefined && pipelining ? this.#rcptLine(first) : undefined;
    if (pipelining) this.#socket.write(`${rset ? 'RSET\r\n' : ''}${mail}\r\n${rcpt !== undefined ? `${rcpt}\r\n` : ''}`);
    if (rset) {
      const r = pipelining ? await this.#reply() : await this.#command('RSET');
      if (r.code !== 250) throw fault('remote', `backend ${this.route.name} refused RSET on a kept connection: ${r.code} ${printable(r.lines.join(' '))}`);
    }
    const m = pipelining ? await this.#reply() : await this.#command(mail);
    if (m.code < 200 || m.code > 299) {
      // A refused MAIL leaves no transaction; the connection that saw it is not kept. The
      // pipelined RCPT's reply (503) is read if it comes, and means nothing.
      if (rcpt !== undefined) await this.#reply().catch(() => undefined);
      return { mail: m, rcpt: undefined };
    }
    this.#phase = 'mail';
    return { mail: m, rcpt: rcpt !== undefined ? await this.#reply() : undefined };
  }

  /** RCPT TO for one recipient (after MAIL's reply, or pipelined with it by begin/again). */
  rcpt(r: Recipient): Promise<SmtpReply> {
    return this.#command(this.#rcptLine(r));
  }

  /**
   * `orcpt` is sent when the backend is Dovecot-like LMTP (which takes it without DSN, as
   * Dovecot's proxy sends it) or advertises DSN.
   */
  #rcptLine(r: Recipient): string {
    let line = `RCPT TO:<${r.address}>`;
    if (r.orcpt !== undefined && (this.route.protocol === 'lmtp' || this.#caps.has('DSN'))) line += ` ORCPT=${r.orcpt}`;
    if (r.forward.size > 0 && this.#caps.has('XRCPTFORWARD') && !this.route.notTrusted) line += ` XRCPTFORWARD=${xtextEncode(encodeForward(r.forward))}`;
    return line;
  }

  /**
   * The backend takes BDAT (RFC 3030 CHUNKING): the message goes as one `BDAT <size> LAST`
   * with its bytes, unstuffed, in the same write, and no 354 is waited for (Dovecot's
   * smtp-client does the same when CHUNKING is offered).
   */
  get chunking(): boolean {
    return this.#caps.has('CHUNKING');
  }

  /**
   * DATA, sent as soon as the client's DATA is accepted, so that the backend's 354 comes back
   * while the client is still sending the message (one round trip less per delivery). Sent
   * once per transaction; the promise never rejects: a failure before the 354 is a value.
   * Nothing is sent to a backend that takes BDAT: its message needs no go-ahead.
   */
  startData(): Promise<DataStart> {
    this.#dataGo ??= this.chunking ? Promise.resolve(BDAT_GO) : this.#startData();
    return this.#dataGo;
  }

  async #startData(): Promise<DataStart> {
    this.#phase = 'data';
    try {
      const go = await this.#command('DATA');
      // Refused: the backend's transaction is still open; the connection is not kept (QUIT).
      if (go.code !== 354) this.#phase = 'spent';
      return { reply: go };
    } catch (err) {
      return { failure: asFailure(err) };
    }
  }

  /**
   * The message (`size` bytes, as stored) after DATA's 354 (startData, sent now if it was
   * not yet), or as one BDAT chunk to a CHUNKING backend, then the replies:
   * one per recipient for LMTP, one for all for SMTP. A failure before the terminating dot
   * means nothing was delivered; after it, the recipients still waiting for a reply are
   * unknown, and get the failure (a temporary reply).
   */
  async data(message: AsyncIterable<Buffer>, size: number, recipients: number): Promise<DataResult[]> {
    const go = await this.startData();
    if ('failure' in go) return Array.from({ length: recipients }, () => ({ failure: go.failure }));
    if ('reply' in go && go.reply.code !== 354) return Array.from({ length: recipients }, () => ({ reply: go.reply }));
    const results: DataResult[] = [];
    try {
      const bdat = 'bdat' in go;
      const enc = bdat ? undefined : new DotEncoder();
      // Writes of up to DATA_WRITE_BATCH, the last one with the end of the message: a small message is one write.
      let batch: Buffer[] = [];
      let batched = 0;
      let sent = 0;
      if (bdat) {
        // From its first byte the chunk is message content: only destroy() ends it early.
        this.#phase = 'data';
        batch.push(Buffer.from(`BDAT ${size} LAST\r\n`, 'latin1'));
      }
      for await (const chunk of message) {
        sent += chunk.length;
        for (const b of enc === undefined ? [chunk] : enc.push(chunk)) {
          batch.push(b);
          batched += b.length;
        }
        if (batched >= DATA_WRITE_BATCH) {
          await this.#write(Buffer.concat(batch));
          batch = [];
          batched = 0;
        }
      }
      // A chunk shorter or longer than announced would swallow or inject bytes: never finished.
      if (bdat && sent !== size) {
        this.destroy();
        throw fault('protocol', `message is ${sent} bytes, BDAT announced ${size}`);
      }
      this.#committed = true;
      // Only a DATA answered to its end leaves the backend ready for the next MAIL.
      this.#phase = 'spent';
      if (enc !== undefined) batch.push(enc.end());
      await this.#write(Buffer.concat(batch));
      const expected = this.route.protocol === 'lmtp' ? recipients : 1;
      for (let i = 0; i < expected; i++) results.push({ reply: await this.#reply() });
      if (this.route.protocol === 'smtp') {
        const only = results[0];
        while (only !== undefined && results.length < recipients) results.push(only);
      }
      if (!results.some((r) => 'reply' in r && r.reply.code === 421)) this.#phase = 'ready';
      return results;
    } catch (err) {
      const f = asFailure(err);
      while (results.length < recipients) results.push({ failure: f });
      return results;
    }
  }

  /** Polite end: QUIT, then close without waiting long for the reply. */
  quit(): void {
    // In the middle of DATA a QUIT would be message content: cut instead, the backend drops it.
    if (this.#phase === 'data') return this.destroy();
    this.#idleWatch = undefined;
    this.#phase = 'spent';
    if (this.#failure !== undefined) {
      this.#socket.destroy();
      return;
    }
    this.#fail(failure('remote', 'closed by portier'));
    const s = this.#socket;
    // RFC 5321 §4.1.1.10: the server closes after its 221. Closing only then leaves the
    // TIME-WAIT on the backend's side, not on one of portier's ports (a FIN sent with the
    // QUIT did: thousands of them slow every later connect() to that backend).
    s.write('QUIT\r\n');
    s.once('end', () => s.destroy());
    this.#quitTimer = setTimeout(() => s.destroy(), QUIT_WAIT);
    this.#quitTimer.unref();
    s.once('close', () => clearTimeout(this.#quitTimer));
  }

  /** Abort now (before the terminating dot this cancels the message on the backend). */
  destroy(): void {
    this.#idleWatch = undefined;
    this.#phase = 'spent';
    this.#fail(failure('remote', 'aborted by portier'));
    this.#socket.destroy();
  }

  async #hello(ctx: UpstreamContext): Promise<void> {
    const verb = this.route.protocol === 'lmtp' ? 'LHLO' : 'EHLO';
    const r = await this.#command(`${verb} ${ctx.hostname}`);
    if (r.code !== 250) throw fault('protocol', `backend refused ${verb}: ${r.code} ${printable(r.lines.join(' '))}`);
    this.#caps = new Map();
    for (const line of r.lines.slice(1)) {
      const [word = '', ...rest] = line.trim().split(/\s+/);
      this.#caps.set(word.toUpperCase(), rest.join(' ').toUpperCase());
    }
  }

  /** The XCLIENT line for this client, and the names of the attributes it sets. */
  #xclient(ctx: UpstreamContext, offered: string): { line: string; attrs: string } {
    const allowed = new Set(offered.split(/\s+/));
    const c = ctx.client;
    const pick = <K extends (typeof XCLIENT_ATTRS)[number]>(attr: K, v: XclientParams[Lowercase<K>]): XclientParams[Lowercase<K>] | undefined =>
      allowed.has(attr) ? v : undefined;
    let params: XclientParams = {
      addr: pick('ADDR', c.addr),
      port: pick('PORT', c.port),
      helo: pick('HELO', c.helo),
      proto: pick('PROTO', c.proto),
      session: pick('SESSION', c.session),
      ttl: pick('TTL', this.route.ttl),
    };
    let line = formatXclient(params);
    // A long HELO name is the only attribute that can push the line over the limit: drop it.
    if (line.length > MAX_XCLIENT_LINE) {
      params = { ...params, helo: undefined };
      line = formatXclient(params);
    }
    const attrs = Object.entries(params)
      .filter(([, v]) => v !== undefined)
      .map(([k]) => k)
      .join(' ');
    return { line, attrs };
  }

  async #upgrade(ctx: UpstreamContext): Promise<void> {
    this.#detach(this.#socket);
    // Anything the backend sent after its 220 would be a response injection: dropped.
    this.#reader = new SmtpReplyReader();
    this.#replies.length = 0;
    const signal = AbortSignal.timeout(this.route.timeoutMs);
    const tls = await startClientTls(this.#socket, this.route.host, ctx.tlsOptions(this.route), signal);
    this.#socket = tls;
    this.#attach(tls);
  }

  #command(line: string): Promise<SmtpReply> {
    this.#socket.write(`${line}\r\n`);
    return this.#reply();
  }

  /** The next reply; throws the connection's failure (closed, bad reply, timeout). */
  async #reply(): Promise<SmtpReply> {
    for (;;) {
      const r = this.#replies.shift();
      if (r !== undefined) return r;
      if (this.#failure !== undefined) throw new ProxyFailureError(this.#failure);
      await this.#wait();
    }
  }

  async #write(data: Buffer): Promise<void> {
    if (this.#failure !== undefined) throw new ProxyFailureError(this.#failure);
    if (this.#socket.write(data)) return;
    await new Promise<void>((resolve) => {
      const done = (): void => {
        this.#socket.off('drain', done);
        this.#waiter = undefined;
        resolve();
      };
      this.#socket.once('drain', done);
      this.#waiter = done;
      this.#arm();
    });
    this.#disarm();
    if (this.#failure !== undefined) throw new ProxyFailureError(this.#failure);
  }

  #wait(): Promise<void> {
    return new Promise((resolve) => {
      this.#waiter = () => {
        this.#waiter = undefined;
        this.#disarm();
        resolve();
      };
      this.#arm();
    });
  }

  /** The timeout runs while portier waits for the backend, and restarts when it makes progress. */
  #arm(): void {
    this.#disarm();
    this.#timer = setTimeout(() => {
      this.#fail(failure('timeout', `backend ${this.route.name} did not answer within ${this.route.timeoutMs} ms`));
      this.#socket.destroy();
    }, this.route.timeoutMs);
  }

  #disarm(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #attach(socket: Socket): void {
    socket.on('data', this.#onData);
    socket.on('error', this.#onError);
    socket.on('close', this.#onClose);
    socket.on('end', this.#onClose);
  }

  #detach(socket: Socket): void {
    socket.off('data', this.#onData);
    socket.off('error', this.#onError);
    socket.off('close', this.#onClose);
    socket.off('end', this.#onClose);
  }

  readonly #onData = (chunk: Buffer): void => {
    if (this.#idleWatch !== undefined) {
      // Nothing was asked: a backend talking now is closing (421) or broken.
      this.#fail(failure('remote', `backend ${this.route.name} spoke on an idle connection: ${printable(chunk.toString('latin1'))}`));
      this.#socket.destroy();
      return;
    }
    if (this.#timer !== undefined) this.#arm();
    this.#reader.push(chunk);
    for (let ev = this.#reader.next(); ev !== null; ev = this.#reader.next()) {
      if (ev.kind === 'error') {
        this.#fail(failure('protocol', `backend ${this.route.name}: ${ev.detail}`));
        this.#socket.destroy();
        return;
      }
      this.#replies.push(ev.reply);
      if (this.#replies.length > MAX_QUEUED_REPLIES) {
        this.#fail(failure('protocol', `backend ${this.route.name} sent replies nobody asked for`));
        this.#socket.destroy();
        return;
      }
    }
    this.#wake();
  };

  readonly #onError = (err: Error): void => this.#fail(failure('remote', `backend ${this.route.name} connection error: ${errorText(err)}`));

  readonly #onClose = (): void => this.#fail(failure('remote', `backend ${this.route.name} closed the connection`));

  #fail(f: ProxyFailure): void {
    this.#failure ??= f;
    this.#phase = 'spent';
    this.#disarm();
    this.#wake();
    const lost = this.#idleWatch;
    this.#idleWatch = undefined;
    lost?.();
  }

  #wake(): void {
    const w = this.#waiter;
    this.#waiter = undefined;
    w?.();
  }
}
