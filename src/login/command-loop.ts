/**
 * The pre-login read loop every command front-end shares: bytes go into the protocol's framer,
 * commands are pulled one at a time, and while one runs asynchronously (auth, backend login,
 * TLS handshake) input waits, paused, so nothing after LOGIN/PASS/STARTTLS is parsed before
 * its time and replies go out in command order (pipelining).
 */
import type { ClientSession } from './session.js';

/** Stop reading the socket while this much input waits unparsed (a command is in flight). */
export const MAX_PENDING_INPUT = 64 * 1024;

export abstract class CommandLoop<Event> {
  readonly session: ClientSession;
  /** A command is running asynchronously. */
  #busy = false;
  /** Removes the input handlers of every listen(), once the session is handed to the splice. */
  readonly #detach: (() => void)[] = [];

  constructor(session: ClientSession) {
    this.session = session;
  }

  /** Feed bytes to the framer. */
  protected abstract push(chunk: Buffer): void;
  /** The next complete event from the framer, or null when it needs more bytes. */
  protected abstract next(): Event | null;
  /** Bytes the framer holds unparsed. */
  protected abstract buffered(): number;
  protected abstract handle(event: Event): void;
  /** The protocol's last words after a bug (a fixed text, never the error). */
  protected abstract readonly internalErrorReply: string;

  /** Whether commands are still read here (false once spliced, closed, ...). */
  protected accepting(): boolean {
    return this.session.state === 'pre-auth' || this.session.state === 'authenticating';
  }

  /** (Re)attach input handlers to the current socket (after STARTTLS it is a new one). */
  listen(): void {
    const socket = this.session.socket;
    const onData = (chunk: Buffer): void => {
      this.push(chunk);
      if (this.buffered() > MAX_PENDING_INPUT) socket.pause();
      this.pump();
    };
    const onEnd = (): void => this.session.close('client_disconnected', 'Disconnected: client closed the connection before login');
    const onClose = (): void => this.session.close('client_disconnected', 'Disconnected: connection closed before login');
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('close', onClose);
    this.#detach.push(() => {
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onClose);
    });
  }

  /**
   * Spliced: the handlers above would only keep this front-end (its framer and buffers)
   * alive for the session's whole life, and close() ignores spliced sessions anyway.
   */
  #release(): void {
    for (const detach of this.#detach.splice(0)) detach();
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
        } else if (this.session.state === 'spliced') this.#release();
      },
      (err: unknown) => {
        this.session.log.error({ err: err instanceof Error ? err.stack : String(err) }, `internal error in ${this.session.listener.protocol} login`);
        this.session.close('internal_error', 'Disconnected: internal error', `${this.internalErrorReply}\r\n`);
      },
    );
  }

  /** Parse and run every complete command, unless one is in flight. */
  pump(): void {
    while (!this.#busy && !this.session.ended && this.accepting()) {
      const ev = this.next();
      if (ev === null) break;
      this.handle(ev);
    }
    if (!this.#busy && !this.session.ended && this.buffered() <= MAX_PENDING_INPUT) this.session.socket.resume();
  }

  reply(line: string): void {
    this.session.write(`${line}\r\n`);
  }
}
