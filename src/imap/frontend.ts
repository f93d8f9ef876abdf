/**
 * The IMAP login front-end: greeting, the pre-auth command table, limits, STARTTLS, and the
 * hand-off to the login core. One `ImapLogin` per connection; commands are pulled from the
 * framer one at a time, so nothing after LOGIN/STARTTLS is parsed before its time.
 */
import { ImapCommandReader, type ImapCommand, type ImapCommandEvent } from './wire/command-reader.js';
import type { GoodbyeReason, ProtocolFrontend } from '../listen/server.js';
import { CommandLoop } from '../login/command-loop.js';
import type { ClientSession } from '../login/session.js';
import { authPolicy, preLoginCapabilities, starttlsOffered } from './capability.js';
import { REPLY } from './replies.js';
import { COMMANDS, type CommandContext } from './commands.js';
import { offeredMechanisms } from './sasl-step.js';
import { externalUser } from '../tls/client-cert.js';

export const imapFrontend: ProtocolFrontend = {
  protocol: 'imap',
  alpn: 'imap',
  start(session) {
    new ImapLogin(session).start();
  },
  goodbye: (_session, why) => `${GOODBYE[why]}\r\n`,
};

/** Pre-login capability lists by configuration, then by ImapLogin.capabilities()'s kind of connection. */
const CAPABILITY_LISTS = new WeakMap<object, string[]>();

const GOODBYE: Readonly<Record<GoodbyeReason, string>> = {
  shutdown: REPLY.byeShutdown,
  timeout: REPLY.byeTimeout,
  'per-ip': REPLY.byeTooManyFromIp,
  full: REPLY.byeQueueFull,
};

export class ImapLogin extends CommandLoop<ImapCommandEvent> implements CommandContext {
  reader: ImapCommandReader;
  /** Capabilities the client was shown, for comparing with the backend's after login. */
  advertised = '';
  clientId: CommandContext['clientId'];
  /** AUTHENTICATE waits for the client's next raw line (a SASL response). */
  #lineHandler: ((line: Buffer) => void) | undefined;
  protected readonly internalErrorReply = '* BYE Internal error occurred. Refer to server log for more information.';

  constructor(session: ClientSession) {
    super(session);
    this.reader = this.newReader();
  }

  newReader(): ImapCommandReader {
    const c = this.session.runtime.config;
    return new ImapCommandReader({ maxLineLength: c.login_max_line_length, maxLiteralSize: c.login_max_literal_size });
  }

  start(): void {
    const s = this.session;
    s.state = 'pre-auth';
    this.advertised = this.capabilities();
    s.write(`* OK [CAPABILITY ${this.advertised}] ${s.runtime.config.login_greeting}\r\n`);
    this.listen();
  }

  protected push(chunk: Buffer): void {
    this.reader.push(chunk);
  }

  protected next(): ImapCommandEvent | null {
    return this.reader.next();
  }

  protected buffered(): number {
    return this.reader.buffered;
  }

  /**
   * The pre-login list. It depends on the configuration and on four facts of the connection
   * (STARTTLS offered, plaintext allowed, TLS required, EXTERNAL possible), so it is built once
   * per configuration and combination, not joined again for every greeting.
   */
  capabilities(): string {
    const s = this.session;
    const policy = authPolicy(s);
    const kind = (starttlsOffered(s) ? 1 : 0) | (policy.plaintextAllowed ? 2 : 0) | (policy.tlsRequired ? 4 : 0) | (externalUser(s) !== undefined ? 8 : 0);
    let lists = CAPABILITY_LISTS.get(s.runtime.config);
    if (lists === undefined) CAPABILITY_LISTS.set(s.runtime.config, (lists = []));
    return (lists[kind] ??= preLoginCapabilities(s, offeredMechanisms(s)));
  }

  get starttlsAvailable(): boolean {
    return starttlsOffered(this.session);
  }

  awaitLine(handler: (line: Buffer) => void): void {
    this.#lineHandler = handler;
    this.reader.readRawLine();
  }

  /**
   * Count a bad command; the last allowed one ends the session (Dovecot: 3) with only the
   * untagged BYE, as Dovecot's imap-login does: no tagged BAD for a command that ends it.
   */
  bad(tag: string | undefined, text: string): void {
    const s = this.session;
    s.badCommands++;
    if (s.badCommands >= s.runtime.config.login_max_bad_commands) {
      s.close('too_many_bad_commands', 'Disconnected: too many invalid commands', `${REPLY.byeTooManyBad}\r\n`);
      return;
    }
    this.reply(`${tag ?? '*'} BAD ${text}`);
  }

  protected handle(ev: ImapCommandEvent): void {
    switch (ev.kind) {
      case 'command':
        this.#command(ev);
        return;
      case 'continue-literal':
        this.reply('+ OK');
        return;
      case 'line': {
        const handler = this.#lineHandler;
        this.#lineHandler = undefined;
        if (handler) handler(ev.line);
        else this.bad(undefined, 'Unexpected continuation.');
        return;
      }
      case 'error':
        this.#readError(ev);
        return;
    }
  }

  #readError(ev: Extract<ImapCommandEvent, { kind: 'error' }>): void {
    const s = this.session;
    switch (ev.error) {
      case 'tag-invalid':
        // Untagged, and nothing of the input is echoed (an HTTP request gets no reflection).
        this.bad(undefined, 'Error in IMAP command received by server.');
        return;
      case 'syntax':
        this.bad(ev.tag, `Error in IMAP command: ${ev.detail}.`);
        return;
      case 'line-too-long':
        s.close('line_too_long', 'Disconnected: command line too long', `${REPLY.byeLineTooLong}\r\n`);
        return;
      case 'literal-too-large':
        if (ev.fatal) {
          s.close('literal_too_large', 'Disconnected: literal too large', `${REPLY.byeLiteralTooLarge}\r\n`);
          return;
        }
        this.bad(ev.tag, 'Literal too large.');
        return;
    }
  }

  #command(cmd: ImapCommand): void {
    const handler = COMMANDS.get(cmd.name);
    if (handler === undefined) {
      this.bad(cmd.tag, 'Error in IMAP command received by server.');
      return;
    }
    handler(this, cmd);
  }
}
