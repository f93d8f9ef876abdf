/**
 * One LMTP client connection: the read loop (commands pulled one at a time, so pipelined
 * commands are answered in order, RFC 2920 §3), the DATA phase (DATA sent to the backends at
 * once, the message decoded into a spool, then delivered), the idle limit, and the end of
 * the connection. LMTP has no login: the whole session is a series of proxied transactions
 * (see transaction.ts).
 */
import type { ClientSession } from '../login/session.js';
import { MAX_PENDING_INPUT } from '../login/command-loop.js';
import { COMMANDS, type LmtpContext } from './commands.js';
import { DotDecoder } from './dot.js';
import { REPLY } from './replies.js';
import { KeptConnections } from './pool.js';
import { MessageSpool, SPOOL_MAX_BACKLOG } from './spool.js';
import type { Transaction } from './transaction.js';
import type { BackendConnection, UpstreamContext } from './upstream.js';
import { LineReader, LMTP_MAX_COMMAND_LINE, parseCommand } from './wire.js';

/** RFC 5321 §4.5.3.2.7: a server waits at least 5 minutes for the client's next command. */
export const LMTP_CLIENT_IDLE_TIMEOUT = 5 * 60_000;

/** Protocol errors (unknown commands, bad syntax, wrong order) before the connection is closed (Dovecot: 10). */
export const LMTP_MAX_BAD_COMMANDS = 10;

type Mode = 'command' | 'data';

export class LmtpSession implements LmtpContext {
  readonly session: ClientSession;
  helo: string | undefined;
  forwardedHelo: string | undefined;
  tx: Transaction | undefined;
  readonly kept: KeptConnections<BackendConnection>;
  #lines = new LineReader(LMTP_MAX_COMMAND_LINE);
  #mode: Mode = 'command';
  #decoder: DotDecoder | undefined;
  #spool: MessageSpool | undefined;
  #busy = false;
  /** The client sent FIN: finish what was read, then close (it may still read replies). */
  #inputEnded = false;
  /** Shutdown was asked for while a transaction was in flight: close after it. */
  #closing = false;
  #idle: NodeJS.Timeout | undefined;
  readonly #idleMs: number;

  constructor(session: ClientSession, idleMs = LMTP_CLIENT_IDLE_TIMEOUT) {
    this.session = session;
    this.#idleMs = idleMs;
    this.kept = new KeptConnections({
      onDrop: (conn, why) => session.log.debug({ backend: conn.route.name, why }, 'kept backend connection closed'),
    });
    session.onEnd(() => {
      this.#stopIdle();
      this.tx?.abortUncommitted();
      // The kept backend connections that can carry another client session wait for the
      // next one (backend/idle.ts); the others get QUIT.
      const idle = session.runtime.lmtpIdle;
      const max = session.runtime.config.lmtp_proxy_idle_connections;
      this.kept.close((conn) => idle.put(conn, max));
      this.tx?.close();
      void this.#spool?.close();
    });
  }

  get hostname(): string {
    return this.session.runtime.hostname;
  }

  start(): void {
    const s = this.session;
    // LMTP has no login: the login timer gives way to the idle limit.
    s.stopLoginTimer();
    s.state = 'pre-auth';
    this.reply(`220 ${this.hostname} ${s.runtime.config.login_greeting}`);
    this.listen();
    this.#armIdle();
  }

  /** (Re)attach input handlers to the current socket (after STARTTLS it is a new one). */
  listen(): void {
    const socket = this.session.socket;
    socket.on('data', (chunk: Buffer) => {
      if (this.session.ended) return;
      this.#armIdle();
      if (this.#mode === 'data') this.#feed(chunk);
      else {
        this.#lines.push(chunk);
        if (this.#lines.buffered > MAX_PENDING_INPUT) socket.pause();
        this.pump();
      }
    });
    socket.on('end', () => {
      // After STARTTLS the plaintext socket is not ours to read any more.
      if (socket !== this.session.socket) return;
      this.#inputEnded = true;
      // A message cut off before its end is not delivered anywhere.
      if (this.#mode === 'data') this.session.close('client_disconnected', 'Disconnected: client closed the connection during DATA');
      else this.pump();
    });
    socket.on('close', () => this.session.close('client_disconnected', 'Disconnected: connection closed'));
  }

  reply(line: string): void {
    this.session.write(`${line}\r\n`);
  }

  /** A protocol error: counted; the last one allowed closes the connection. */
  bad(line: string): void {
    const s = this.session;
    s.badCommands++;
    if (s.badCommands >= LMTP_MAX_BAD_COMMANDS) {
      s.close('too_many_bad_commands', 'Disconnected: too many invalid commands', `421 4.7.0 ${this.hostname} Too many invalid commands.\r\n`);
      return;
    }
    this.reply(line);
  }

  /** Run an async command; commands after it wait (their bytes stay buffered) until it is done. */
  run(task: Promise<'continue' | 'stop'>): void {
    this.#busy = true;
    this.#stopIdle();
    task.then(
      (next) => {
        this.#busy = false;
        if (next === 'stop' || this.session.ended) return;
        if (this.#closing) return this.shutdown();
        this.#armIdle();
        this.session.socket.resume();
        this.pump();
      },
      (err: unknown) => {
        this.session.log.error({ err: err instanceof Error ? err.stack : String(err) }, 'internal error in LMTP session');
        this.session.close('internal_error', 'Disconnected: internal error', `421 4.3.0 ${this.hostname} Internal error occurred. Refer to server log for more information.\r\n`);
      },
    );
  }

  /** Parse and run every complete command line, unless one is in flight. */
  pump(): void {
    const s = this.session;
    while (!this.#busy && !s.ended && this.#mode === 'command') {
      const ev = this.#lines.next();
      if (ev === null) break;
      if (ev.kind === 'too-long') {
        s.close('line_too_long', 'Disconnected: command line too long', `421 4.7.0 ${this.hostname} Command line too long, closing connection\r\n`);
        return;
      }
      const cmd = parseCommand(ev.line);
      const handler = COMMANDS.get(cmd.verb);
      if (handler === undefined) this.bad(REPLY.unknownCommand);
      else handler(this, cmd.args);
    }
    if (s.ended || this.#busy) return;
    if (this.#inputEnded && this.#mode === 'command') {
      s.close('client_disconnected', 'Disconnected: client closed the connection');
      return;
    }
    if (this.#lines.buffered <= MAX_PENDING_INPUT) s.socket.resume();
  }

  /** After `354`: the rest of the input is message content until CRLF "." CRLF. */
  beginData(): void {
    const c = this.session.runtime.config;
    this.#mode = 'data';
    this.#decoder = new DotDecoder();
    this.#spool = new MessageSpool({ maxSize: c.lmtp_max_mail_size, dir: c.mail_temp_dir });
    // The backends' 354s travel while the message arrives (one round trip less per delivery).
    this.tx?.startData();
    const rest = this.#lines.drain();
    if (rest.length > 0) this.#feed(rest);
  }

  /** STARTTLS (RFC 3207 §4.2): input pipelined after the command is discarded, never run. */
  startTls(): void {
    const s = this.session;
    const injected = this.#lines.drain();
    if (injected.length > 0) s.log.warn({ bytes: injected.length }, 'discarded input pipelined after STARTTLS (possible injection)');
    this.resetClient();
    this.run(
      s.startTls(undefined).then((ok) => {
        if (!ok) return 'stop';
        this.#lines = new LineReader(LMTP_MAX_COMMAND_LINE);
        this.listen();
        return 'continue';
      }),
    );
  }

  /**
   * Forget LHLO and the transaction (after STARTTLS and XCLIENT the session starts over),
   * and the kept backend connections: they were told the client's old facts.
   */
  resetClient(): void {
    this.helo = undefined;
    this.endTransaction();
    this.kept.clear('client session started over');
  }

  endTransaction(): void {
    this.tx?.close();
    this.tx = undefined;
  }

  upstreamContext(): UpstreamContext {
    const s = this.session;
    return {
      hostname: this.hostname,
      client: { addr: s.peer.remoteIp, port: s.peer.remotePort, helo: this.forwardedHelo ?? this.helo, proto: 'LMTP', session: s.id },
      tlsOptions: (route) => s.runtime.tls.upstreamOptions(route),
    };
  }

  /** Portier is stopping: an idle session gets 421 now, a transaction in flight finishes first. */
  shutdown(): void {
    if (this.#busy || this.#mode === 'data') {
      this.#closing = true;
      return;
    }
    this.session.close('shutdown', 'Disconnected: server shutting down', `421 4.3.2 ${this.hostname} Shutting down\r\n`);
  }

  #feed(chunk: Buffer): void {
    const decoder = this.#decoder;
    const spool = this.#spool;
    if (decoder === undefined || spool === undefined) return;
    const r = decoder.push(chunk);
    spool.write(r.data);
    if (!r.done) {
      if (spool.backlog > SPOOL_MAX_BACKLOG) {
        const socket = this.session.socket;
        socket.pause();
        void spool.flushed().then(() => {
          if (this.#mode === 'data' && !this.session.ended) socket.resume();
        });
      }
      return;
    }
    this.#mode = 'command';
    this.#decoder = undefined;
    this.#spool = undefined;
    this.#lines.push(r.rest);
    if (decoder.bareLf > 0) this.session.log.info({ bare_lf: decoder.bareLf }, 'message had bare LF line ends; stored as CRLF');
    this.run(this.#deliver(spool));
  }

  async #deliver(spool: MessageSpool): Promise<'continue'> {
    const tx = this.tx;
    const s = this.session;
    try {
      if (tx === undefined) return 'continue';
      let replies: string[];
      if (spool.tooBig) {
        s.log.info({ size: spool.size, max: s.runtime.config.lmtp_max_mail_size }, 'message refused: larger than lmtp_max_mail_size');
        replies = tx.accepted.map(() => REPLY.tooBig);
      } else {
        let stored = true;
        try {
          await spool.finish();
        } catch (err) {
          stored = false;
          s.log.error({ err: err instanceof Error ? err.message : String(err), dir: s.runtime.config.mail_temp_dir }, 'cannot store the message in mail_temp_dir');
        }
        replies = stored ? await tx.deliver(spool) : tx.accepted.map(() => REPLY.internal);
      }
      if (!s.ended) s.write(replies.map((l) => `${l}\r\n`).join(''));
      return 'continue';
    } finally {
      this.endTransaction();
      await spool.close();
    }
  }

  #armIdle(): void {
    this.#stopIdle();
    this.#idle = setTimeout(() => {
      this.session.close('idle_timeout', 'Disconnected: inactivity', `421 4.4.2 ${this.hostname} Disconnected for inactivity\r\n`);
    }, this.#idleMs);
    this.#idle.unref();
  }

  #stopIdle(): void {
    if (this.#idle !== undefined) clearTimeout(this.#idle);
    this.#idle = undefined;
  }
}
