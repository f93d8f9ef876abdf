/**
 * The POP3 login front-end: greeting, the pre-auth command table, limits, STLS, and the
 * hand-off to the login core. One `Pop3Login` per connection; lines are pulled from the framer
 * one at a time, so nothing after PASS/AUTH/STLS is parsed before its time (RFC 2449 §6.6
 * PIPELINING: replies go out in command order).
 */
import type { ProtocolFrontend } from '../listen/server.js';
import type { ClientSession } from '../login/session.js';
import { COMMANDS, type Pop3Context } from './commands.js';
import { REPLY } from './replies.js';
import { parseCommand, POP3_MAX_AUTH_LINE_LENGTH, Pop3LineReader } from './wire.js';

/** Stop reading the socket while this much input waits unparsed (a command is in flight). */
const MAX_PENDING_INPUT = 64 * 1024;

export const pop3Frontend: ProtocolFrontend = {
  protocol: 'pop3',
  alpn: 'pop3',
  start(session) {
    new Pop3Login(session).start();
  },
  goodbye: (_session, why) => `${why === 'timeout' ? REPLY.timeout : REPLY.shutdown}\r\n`,
};

export class Pop3Login implements Pop3Context {
  readonly session: ClientSession;
  reader: Pop3LineReader;
  /** The name from USER, waiting for PASS (RFC 1939 §7). */
  pendingUser: Buffer | undefined;
  /** A command is running asynchronously (auth, backend login, TLS handshake). */
  #busy = false;
  /** AUTH waits for the client's next line (a SASL response) for this handler. */
  #lineHandler: ((line: Buffer) => void) | undefined;

  constructor(session: ClientSession) {
    this.session = session;
    this.reader = this.newReader();
  }

  /** Command lines are held to login_max_line_length, AUTH lines to what an 8 KiB SASL response needs. */
  newReader(): Pop3LineReader {
    return new Pop3LineReader(Math.max(this.session.runtime.config.login_max_line_length, POP3_MAX_AUTH_LINE_LENGTH));
  }

  start(): void {
    const s = this.session;
    s.state = 'pre-auth';
    s.write(`+OK ${s.runtime.config.login_greeting}\r\n`);
    this.listen();
  }

  /** (Re)attach input handlers to the current socket (after STLS it is a new one). */
  listen(): void {
    const socket = this.session.socket;
    socket.on('data', (chunk: Buffer) => {
      this.reader.push(chunk);
      if (this.reader.buffered > MAX_PENDING_INPUT) socket.pause();
      this.pump();
    });
    socket.on('end', () => this.session.close('client_disconnected', 'Disconnected: client closed the connection before login'));
    socket.on('close', () => this.session.close('client_disconnected', 'Disconnected: connection closed before login'));
  }

  reply(line: string): void {
    this.session.write(`${line}\r\n`);
  }

  awaitLine(handler: (line: Buffer) => void): void {
    this.#lineHandler = handler;
  }

  /** Run an async command: input waits (paused) until it finishes, then parsing continues. */
  run(task: Promise<'continue' | 'stop'>): void {
    this.#busy = true;
    this.session.socket.pause();
    task.then(
      (next) => {
        this.#busy = false;
        if (next === 'continue' && !this.session.ended) {
          this.session.socket.resume();
          this.pump();
        }
      },
      (err: unknown) => {
        this.session.log.error({ err: err instanceof Error ? err.stack : String(err) }, 'internal error in POP3 login');
        this.session.close('internal_error', 'Disconnected: internal error', `${REPLY.internalError}\r\n`);
      },
    );
  }

  /** Parse and run every complete line, unless a command is in flight. */
  pump(): void {
    while (!this.#busy && !this.session.ended && (this.session.state === 'pre-auth' || this.session.state === 'authenticating')) {
      const ev = this.reader.next();
      if (ev === null) break;
      if (ev.kind === 'too-long') {
        this.session.close('line_too_long', 'Disconnected: command line too long', `${REPLY.lineTooLong}\r\n`);
        return;
      }
      this.#line(ev.line);
    }
    if (!this.#busy && !this.session.ended && this.reader.buffered <= MAX_PENDING_INPUT) this.session.socket.resume();
  }

  /** Count a bad command; the last allowed one ends the session (login_max_bad_commands). */
  bad(text: string): void {
    const s = this.session;
    s.badCommands++;
    if (s.badCommands >= s.runtime.config.login_max_bad_commands) {
      s.close('too_many_bad_commands', 'Disconnected: too many invalid commands', `${REPLY.tooManyBad}\r\n`);
      return;
    }
    this.reply(text);
  }

  #line(line: Buffer): void {
    const handler = this.#lineHandler;
    if (handler !== undefined) {
      this.#lineHandler = undefined;
      handler(line);
      return;
    }
    const cmd = parseCommand(line);
    // RFC 5034 §4: only AUTH lines may be longer than an ordinary command.
    if (cmd.name !== 'AUTH' && line.length > this.session.runtime.config.login_max_line_length) {
      this.session.close('line_too_long', 'Disconnected: command line too long', `${REPLY.lineTooLong}\r\n`);
      return;
    }
    const run = COMMANDS.get(cmd.name);
    if (run === undefined) {
      this.bad(REPLY.unknownCommand);
      return;
    }
    run(this, cmd);
  }
}
