/**
 * One mail transaction (MAIL .. DATA): recipients grouped per backend, one connection per
 * group at its first RCPT (Dovecot relays the backend's RCPT reply as its own): the session's
 * kept connection for that route when there is one (pool.ts), else a new one. DATA goes to
 * every group as soon as the client's DATA is accepted (startData), so the backends' 354s
 * arrive while the client sends the message; once it is spooled it is fanned out to every
 * group at once, read from the spool. Replies come back in RCPT order,
 * one per accepted recipient (RFC 2033 §4.2). Nothing is retried once DATA has started: a
 * backend that fails gives 451 to exactly the recipients it had not answered.
 */
import { asFailure, failure, type ProxyFailure } from '../backend/failure.js';
import type { ClientSession } from '../login/session.js';
import { publishProxy } from '../telemetry/events.js';
import { backendFailureReply, rcptAccepted, relayReply } from './replies.js';
import type { RcptDecision } from './recipient.js';
import type { KeptConnections } from './pool.js';
import type { MessageSpool } from './spool.js';
import { BackendConnection, clientFacts, type BackendRoute, type DataResult, type Envelope, type Opening, type Recipient, type UpstreamContext } from './upstream.js';
import { printable, type SmtpReply } from './wire.js';

type Backend = Extract<RcptDecision, { kind: 'backend' }>;

interface Accepted {
  /** The address as the client gave it (for replies). */
  readonly address: string;
  readonly user: string;
  readonly group: Group;
}

/** Failures that say the backend (or the way to it) is not working, for the health record. */
const HEALTH_FAILURES: ReadonlySet<ProxyFailure['kind']> = new Set(['connect', 'timeout', 'remote']);

class Group {
  readonly route: BackendRoute;
  conn: BackendConnection | undefined;
  /** The reply every RCPT of this group gets when the backend cannot take recipients. */
  refusal: string | undefined;
  readonly accepted: Accepted[] = [];
  #opening: Promise<void> | undefined;
  /** The first recipient's RCPT reply, when it was pipelined with MAIL. */
  #first: { readonly for: Recipient; readonly reply: SmtpReply } | undefined;

  constructor(route: BackendRoute) {
    this.route = route;
  }

  /** Connect (or take the kept connection) and send MAIL FROM once; later RCPTs of the group wait for the same outcome. */
  open(session: ClientSession, ctx: UpstreamContext, envelope: Envelope, kept: KeptConnections<BackendConnection>, first: Recipient): Promise<void> {
    this.#opening ??= this.#open(session, ctx, envelope, kept, first);
    return this.#opening;
  }

  /** The RCPT reply for `r` if it was sent with MAIL (once). */
  takeFirstReply(r: Recipient): SmtpReply | undefined {
    const f = this.#first;
    if (f === undefined || f.for !== r) return undefined;
    this.#first = undefined;
    return f.reply;
  }

  #opened(o: Opening, first: Recipient): void {
    if (o.rcpt !== undefined) this.#first = { for: first, reply: o.rcpt };
  }

  async #open(session: ClientSession, ctx: UpstreamContext, envelope: Envelope, kept: KeptConnections<BackendConnection>, first: Recipient): Promise<void> {
    const started = Date.now();
    const reuse = kept.take(this.route.key, clientFacts(ctx, this.route));
    // A kept connection the backend has given up on: once, a new one, before the client hears anything.
    if (reuse !== undefined && (await this.#again(session, reuse, () => reuse.again(this.route, envelope, first), first, started))) return;
    // An earlier session's connection to this backend, told this client's facts by a new XCLIENT.
    const idle = reuse === undefined ? session.runtime.lmtpIdle.take(this.route.key) : undefined;
    if (idle !== undefined && (await this.#again(session, idle, () => this.#adopt(session, idle, ctx, envelope, first), first, started))) return;
    const { health } = session.runtime;
    const admission = health.admit(this.route.key);
    if (!admission.go) {
      this.#refuse(session, failure('host-down', `host is down: ${this.route.name} has failed for ${Math.round(admission.failingForMs / 1000)}s without a success`), started);
      return;
    }
    let conn: BackendConnection | undefined;
    try {
      conn = await BackendConnection.connect(this.route, ctx);
      const opened = await conn.begin(ctx, envelope, first);
      const mail = opened.mail;
      health.succeeded(this.route.key);
      publishProxy({ protocol: 'lmtp', backend: this.route.name, ok: true, seconds: (Date.now() - started) / 1000 });
      if (mail.code < 200 || mail.code > 299) {
        session.log.info({ backend: this.route.name, reply: replyLog(mail) }, 'backend refused MAIL FROM');
        this.refusal = relayReply(mail);
        conn.quit();
        return;
      }
      this.#opened(opened, first);
      this.conn = conn;
    } catch (err) {
      const f = asFailure(err);
      conn?.destroy();
      if (HEALTH_FAILURES.has(f.kind)) health.failed(this.route.key, admission.probe);
      else health.released(this.route.key, admission.probe);
      this.#refuse(session, f, started);
    }
  }

  /**
   * XCLIENT, LHLO and MAIL on an idle connection; undefined when it cannot carry this client
   * (QUIT, and a new connection is opened). A backend that refuses the XCLIENT gets no more
   * of its connections kept between sessions.
   */
  async #adopt(session: ClientSession, conn: BackendConnection, ctx: UpstreamContext, envelope: Envelope, first: Recipient): Promise<Opening | undefined> {
    const opened = await conn.adopt(ctx, this.route, envelope, first);
    if (opened === 'unfit') {
      if (session.log.enabled('debug')) session.log.debug({ backend: this.route.name }, 'idle backend connection cannot be told every fact of this client; opening a new one');
    } else if (opened === 'refused') {
      session.runtime.lmtpIdle.refusedBy(this.route.key);
      session.log.info({ backend: this.route.name }, 'backend refused a second XCLIENT on a connection an earlier session used; its connections are no longer kept between sessions');
    } else {
      return opened;
    }
    conn.quit();
    return undefined;
  }

  /** MAIL FROM on a kept (or idle) connection; false when it was not used or unusable, and a new one is needed. */
  async #again(session: ClientSession, conn: BackendConnection, open: () => Promise<Opening | undefined>, first: Recipient, started: number): Promise<boolean> {
    const { health } = session.runtime;
    let opened: Opening;
    try {
      const o = await open();
      if (o === undefined) return false;
      opened = o;
    } catch (err) {
      const f = asFailure(err);
      conn.destroy();
      // A backend that stopped answering would only make the client wait twice as long.
      if (f.kind === 'timeout') {
        health.failed(this.route.key, false);
        this.#refuse(session, f, started);
        return true;
      }
      session.log.info({ backend: this.route.name, failure: f.kind, reused: true }, `kept backend connection not usable, opening a new one: ${f.detail}`);
      return false;
    }
    const mail = opened.mail;
    health.succeeded(this.route.key);
    publishProxy({ protocol: 'lmtp', backend: this.route.name, ok: true, seconds: (Date.now() - started) / 1000 });
    if (mail.code < 200 || mail.code > 299) {
      session.log.info({ backend: this.route.name, reply: replyLog(mail), reused: true }, 'backend refused MAIL FROM');
      this.refusal = relayReply(mail);
      conn.quit();
      return true;
    }
    if (session.log.enabled('debug')) session.log.debug({ backend: this.route.name, reused: true }, 'reusing a kept backend connection');
    this.#opened(opened, first);
    this.conn = conn;
    return true;
  }

  #refuse(session: ClientSession, f: ProxyFailure, started: number): void {
    session.log.warn({ backend: this.route.name, failure: f.kind }, `backend not usable: ${f.detail}`);
    publishProxy({ protocol: 'lmtp', backend: this.route.name, ok: false, failure: f.kind, seconds: (Date.now() - started) / 1000 });
    this.refusal = backendFailureReply(f);
  }
}

export class Transaction {
  readonly envelope: Envelope;
  /** Recipients the client got 250 for, in RCPT order. */
  readonly accepted: Accepted[] = [];
  /** Every RCPT command of the transaction (accepted or not), for the recipient limit. */
  rcptCommands = 0;
  readonly #groups = new Map<string, Group>();
  readonly #session: ClientSession;
  readonly #ctx: UpstreamContext;
  readonly #kept: KeptConnections<BackendConnection>;
  #closed = false;

  constructor(session: ClientSession, ctx: UpstreamContext, envelope: Envelope, kept: KeptConnections<BackendConnection>) {
    this.#session = session;
    this.#ctx = ctx;
    this.envelope = envelope;
    this.#kept = kept;
  }

  /** RCPT towards the recipient's backend; the reply line for the client. */
  async addRecipient(d: Backend, clientAddress: string): Promise<string> {
    let group = this.#groups.get(d.route.key);
    if (group === undefined) {
      group = new Group(d.route);
      this.#groups.set(d.route.key, group);
    }
    await group.open(this.#session, this.#ctx, this.envelope, this.#kept, d);
    if (this.#closed) {
      // The transaction ended (client gone, RSET by shutdown) while the backend was being reached.
      group.conn?.quit();
      return backendFailureReply(failure('remote', 'transaction ended'));
    }
    const log = this.#session.log;
    // The lines' common fields; the line of every accepted recipient builds them only when it is written.
    const fields = (): Record<string, unknown> => ({ rcpt: clientAddress, user: d.user, backend: group.route.name, reused: group.conn?.reused === true || undefined });
    if (group.refusal !== undefined || group.conn === undefined) {
      log.info({ ...fields(), reply: group.refusal }, 'recipient refused: backend not usable');
      return group.refusal ?? backendFailureReply(failure('remote', 'no connection'));
    }
    let reply: SmtpReply;
    try {
      reply = group.takeFirstReply(d) ?? (await group.conn.rcpt(d));
    } catch (err) {
      const f = asFailure(err);
      log.warn({ ...fields(), failure: f.kind }, `backend failed during RCPT: ${f.detail}`);
      return backendFailureReply(f);
    }
    if (reply.code >= 200 && reply.code <= 299) {
      this.accepted.push({ address: clientAddress, user: d.user, group });
      group.accepted.push(this.accepted[this.accepted.length - 1] as Accepted);
      if (log.enabled('info')) log.info({ ...fields(), address: d.address === clientAddress ? undefined : d.address }, 'recipient accepted');
      return rcptAccepted(reply);
    }
    log.info({ ...fields(), reply: replyLog(reply) }, 'recipient refused by the backend');
    return relayReply(reply);
  }

  /**
   * The client's DATA was accepted (354): DATA to every group with accepted recipients now,
   * their replies awaited while the client sends the message. Never rejects (see
   * BackendConnection.startData); deliver() takes the replies.
   */
  startData(): void {
    for (const g of this.#groups.values()) if (g.accepted.length > 0) void g.conn?.startData();
  }

  /** Send the spooled message to every group at once (after its 354); one reply line per accepted recipient, in order. */
  async deliver(spool: MessageSpool): Promise<string[]> {
    const started = Date.now();
    const results = new Map<Accepted, DataResult>();
    const groups = [...this.#groups.values()].filter((g) => g.accepted.length > 0);
    await Promise.all(
      groups.map(async (g) => {
        const conn = g.conn;
        const out: DataResult[] =
          conn === undefined ? g.accepted.map(() => ({ failure: failure('remote', 'no connection') })) : await conn.data(spool.chunks(), spool.size, g.accepted.length);
        g.accepted.forEach((a, i) => results.set(a, out[i] ?? { failure: failure('protocol', 'missing reply') }));
      }),
    );
    const total = this.accepted.length;
    return this.accepted.map((a, i) => {
      const r = results.get(a) ?? { failure: failure('protocol', 'missing reply') };
      const log = this.#session.log;
      // The lines' fields and text; the line of every delivery builds them only when it is written.
      const where = (): string => `<${a.address}> at ${a.group.route.name}`;
      const fields = (): Record<string, unknown> => ({ rcpt: a.address, user: a.user, backend: a.group.route.name, reused: a.group.conn?.reused === true || undefined, n: `${i + 1}/${total}`, ms: Date.now() - started, size: spool.size });
      if ('failure' in r) {
        log.warn({ ...fields(), failure: r.failure.kind }, `Failed to send message to ${where()}: ${r.failure.detail}`);
        return backendFailureReply(r.failure);
      }
      if (r.reply.code >= 200 && r.reply.code <= 299) {
        if (log.enabled('info')) log.info({ ...fields(), reply: replyLog(r.reply) }, `Sent message to ${where()}`);
        return `250 ${r.reply.enhanced ?? '2.0.0'} <${a.address}> ${this.#session.id} Saved`;
      }
      log.info({ ...fields(), reply: replyLog(r.reply) }, `Failed to send message to ${where()}`);
      return relayReply(r.reply);
    });
  }

  /**
   * The client went away: connections that have not sent the terminating dot (DATA sent or
   * not) are cut, so the backend drops the message the client will send again.
   */
  abortUncommitted(): void {
    for (const g of this.#groups.values()) if (g.conn !== undefined && !g.conn.committed) g.conn.destroy();
  }

  /**
   * End of the transaction: clean backend connections are kept for the session's next one
   * (ready for MAIL after DATA, or needing RSET when the transaction was left open); the
   * rest get QUIT, except those in the middle of DATA (message refused or not stored after
   * DATA was sent): they are cut, so no backend ever gets a partial message with a dot.
   */
  close(): void {
    this.#closed = true;
    for (const g of this.#groups.values()) if (g.conn !== undefined) this.#kept.put(g.conn, clientFacts(this.#ctx, g.conn.route));
    this.#groups.clear();
  }
}

function replyLog(r: SmtpReply): string {
  return printable(`${r.code} ${r.enhanced ?? ''} ${r.lines.join(' / ')}`.replace(/ {2,}/g, ' '), 300);
}
