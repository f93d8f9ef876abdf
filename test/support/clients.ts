/**
 * Raw protocol clients of a front-end (portier's, or a backend's directly) for e2e tests: a
 * connection from CLIENT_IP with its greeting read, one IMAP command to its tagged reply, POP3
 * lines with one reply each. They assert nothing themselves: tests keep their expectations.
 */
import type { ConnectionOptions } from 'node:tls';
import { LineClient } from './lines.js';

/** Test clients connect from here: not the server's own address, so not "local" (secured) to it. */
export const CLIENT_IP = '127.0.0.5';

export type GreetingProtocol = 'imap' | 'pop3' | 'lmtp';

/** Something with listeners by name (a RunningPortier), or a port number. */
export type Target = number | { port(listener: string): number };

export interface ConnectOptions {
  /** Source address; default CLIENT_IP. */
  readonly from?: string;
  /** Server address; default 127.0.0.1. */
  readonly host?: string;
  /** Implicit TLS with these options. */
  readonly tls?: ConnectionOptions;
  /** How long each greeting line may take; default 5 s. */
  readonly greetingTimeoutMs?: number;
}

/** A connected client whose greeting has been read. */
export type Greeted = LineClient & { readonly greeting: string };

/**
 * Connect to `target` (a RunningPortier's `protocol` listener, or a port) and read the
 * greeting: one line for IMAP and POP3; for LMTP the whole reply, `greeting` being its last line.
 */
export async function greeted(target: Target, protocol: GreetingProtocol = 'imap', opts: ConnectOptions = {}): Promise<Greeted> {
  const port = typeof target === 'number' ? target : target.port(protocol);
  const c = await LineClient.connect(port, {
    localAddress: opts.from ?? CLIENT_IP,
    ...(opts.host !== undefined ? { host: opts.host } : {}),
    ...(opts.tls !== undefined ? { tls: opts.tls } : {}),
  });
  try {
    let greeting = await c.line(opts.greetingTimeoutMs);
    if (protocol === 'lmtp') while (/^\d{3}-/.test(greeting)) greeting = await c.line(opts.greetingTimeoutMs);
    return Object.assign(c, { greeting });
  } catch (err) {
    c.close();
    throw err;
  }
}

export interface ImapExchange {
  readonly c: Greeted;
  /** Everything up to and including the tagged reply. */
  readonly lines: string[];
  /** The tagged reply. */
  readonly reply: string;
  /** From sending the command to its tagged reply. */
  readonly ms: number;
}

/**
 * On a new greeted IMAP connection, send `line` as written (its first word is the tag) and
 * read up to the tagged reply (default wait 5 s). The caller closes `c` (closed here on failure).
 */
export async function imapCommand(target: Target, line: string, opts: ConnectOptions & { timeoutMs?: number } = {}): Promise<ImapExchange> {
  const c = await greeted(target, 'imap', opts);
  try {
    return await imapCommandOn(c, line, opts.timeoutMs);
  } catch (err) {
    c.close();
    throw err;
  }
}

/** The same on a connection the caller already has. */
export async function imapCommandOn(c: Greeted, line: string, timeoutMs?: number): Promise<ImapExchange> {
  const tag = line.split(' ')[0] ?? '';
  const t0 = performance.now();
  c.write(`${line}\r\n`);
  const lines = await c.until(tag, timeoutMs);
  return { c, lines, reply: lines.at(-1) ?? '', ms: performance.now() - t0 };
}

/**
 * On a new greeted POP3 connection, send each line as written and read one reply line to it
 * (each wait `timeoutMs`, default 5 s). The caller closes `c` (closed here on failure).
 */
export async function pop3Lines(target: Target, lines: readonly string[], opts: ConnectOptions & { timeoutMs?: number } = {}): Promise<{ c: Greeted; replies: string[] }> {
  const c = await greeted(target, 'pop3', opts);
  const replies: string[] = [];
  try {
    for (const l of lines) {
      c.write(`${l}\r\n`);
      replies.push(await c.line(opts.timeoutMs));
    }
  } catch (err) {
    c.close();
    throw err;
  }
  return { c, replies };
}
