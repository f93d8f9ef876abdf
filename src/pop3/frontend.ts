/**
 * The POP3 login front-end: greeting, the pre-auth command table, limits, STLS, and the
 * hand-off to the login core. One `Pop3Login` per connection; lines are pulled from the framer
 * one at a time, so nothing after PASS/AUTH/STLS is parsed before its time (RFC 2449 §6.6
 * PIPELINING: replies go out in command order).
 */
import type { GoodbyeReason, ProtocolFrontend } from '../listen/server.js';
import { randomBytes } from 'node:crypto';
import { CommandLoop } from '../login/command-loop.js';
import type { ClientSession } from '../login/session.js';
import { COMMANDS, type Pop3Context } from './commands.js';
import { REPLY } from './replies.js';
import { parseCommand, POP3_MAX_AUTH_LINE_LENGTH, Pop3LineReader } from './wire.js';

export const pop3Frontend: ProtocolFrontend = {
  protocol: 'pop3',
  alpn: 'pop3',
  start(session) {
    new Pop3Login(session).start();
  },
  goodbye: (_session, why) => `${GOODBYE[why]}\r\n`,
};

const GOODBYE: Readonly<Record<GoodbyeReason, string>> = {
  shutdown: REPLY.shutdown,
  timeout: REPLY.timeout,
  'per-ip': REPLY.tooManyFromIp,
  full: REPLY.queueFull,
};

type Pop3Event = NonNullable<ReturnType<Pop3LineReader['next']>>;

export class Pop3Login extends CommandLoop<Pop3Event> implements Pop3Context {
  reader: Pop3LineReader;
  /** The name from USER, waiting for PASS (RFC 1939 §7). */
  pendingUser: Buffer | undefined;
  readonly apopTimestamp: string | undefined;
  /** AUTH waits for the client's next line (a SASL response) for this handler. */
  #lineHandler: ((line: Buffer) => void) | undefined;
  protected readonly internalErrorReply = REPLY.internalError;

  constructor(session: ClientSession) {
    super(session);
    this.reader = this.newReader();
    const offersApop = session.runtime.config.auth_mechanisms.some((m) => m.toLowerCase() === 'apop');
    // RFC 1939 §7: unique per greeting; Dovecot's form <pid.time@host> with random bits instead of the pid.
    this.apopTimestamp = offersApop ? `<${randomBytes(6).toString('hex')}.${Math.floor(Date.now() / 1000)}@${session.runtime.hostname}>` : undefined;
  }

  /** Command lines are held to login_max_line_length, AUTH lines to what an 8 KiB SASL response needs. */
  newReader(): Pop3LineReader {
    return new Pop3LineReader(Math.max(this.session.runtime.config.login_max_line_length, POP3_MAX_AUTH_LINE_LENGTH));
  }

  start(): void {
    const s = this.session;
    s.state = 'pre-auth';
    s.write(`+OK ${s.runtime.config.login_greeting}${this.apopTimestamp === undefined ? '' : ` ${this.apopTimestamp}`}\r\n`);
    this.listen();
  }

  protected push(chunk: Buffer): void {
    this.reader.push(chunk);
  }

  protected next(): Pop3Event | null {
    return this.reader.next();
  }

  protected buffered(): number {
    return this.reader.buffered;
  }

  protected handle(ev: Pop3Event): void {
    if (ev.kind === 'too-long') {
      this.session.close('line_too_long', 'Disconnected: command line too long', `${REPLY.lineTooLong}\r\n`);
      return;
    }
    this.#line(ev.line);
  }

  awaitLine(handler: (line: Buffer) => void): void {
    this.#lineHandler = handler;
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
