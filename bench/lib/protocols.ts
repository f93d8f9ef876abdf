/**
 * The client side of each measured exchange, written against RFC 9051/3501 (IMAP), RFC 1939
 * and 2595 (POP3, STLS) and RFC 2033 (LMTP). Each function throws a BenchError whose kind is
 * what the operator sees counted; none of them retries.
 */
import { BenchError, connect, type Endpoint, startTls, Wire } from './wire.js';

/** IMAP astring: an atom when safe, else a quoted string (RFC 9051 section 4.3). */
function astring(s: string): string {
  if (/^[A-Za-z0-9._@+-]+$/.test(s)) return s;
  return `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/** Read to the tagged reply of `tag`; OK returns its text, NO/BAD throw. */
export async function imapTagged(w: Wire, tag: string, failKind: 'auth' | 'refused' = 'refused'): Promise<string> {
  const prefix = `${tag} `;
  for (;;) {
    const l = await w.line();
    if (!l.startsWith(prefix)) {
      const lit = /\{(\d+)\+?\}$/.exec(l);
      if (lit?.[1] !== undefined) await w.skip(Number(lit[1]));
      continue;
    }
    const rest = l.slice(prefix.length);
    if (/^OK\b/i.test(rest)) return rest;
    throw new BenchError(/^(NO|BAD)\b/i.test(rest) ? failKind : 'protocol', `${tag}: ${rest.slice(0, 200)}`);
  }
}

/** Connect, read the greeting, STARTTLS if asked, LOGIN. The session is ready for commands. */
export async function imapOpen(ep: Endpoint, user: string, pass: string, onWire?: (w: Wire) => void): Promise<Wire> {
  const w = new Wire(await connect(ep));
  onWire?.(w);
  const greeting = await w.line();
  if (!greeting.startsWith('* OK')) throw new BenchError('greeting', greeting.slice(0, 200));
  if (ep.tls === 'starttls') {
    w.write('S STARTTLS\r\n');
    await imapTagged(w, 'S');
    w.upgrade(await startTls(w.socket, ep));
  }
  w.write(`L LOGIN ${astring(user)} ${astring(pass)}\r\n`);
  await imapTagged(w, 'L', 'auth');
  return w;
}

/** LOGOUT and wait for the server to close first, so TIME_WAIT stays on its side. */
export async function imapLogout(w: Wire): Promise<void> {
  w.write('Q LOGOUT\r\n');
  await imapTagged(w, 'Q');
  w.socket.end();
  await w.closed();
}

/** One login cycle; returns the connect-to-tagged-OK time of LOGIN in ns. */
export async function imapLoginCycle(ep: Endpoint, user: string, pass: string, guard: Guard): Promise<number> {
  const t0 = process.hrtime.bigint();
  const w = await guard.run(() => imapOpen(ep, user, pass, (x) => guard.watch(x)));
  const ns = Number(process.hrtime.bigint() - t0);
  try {
    await imapLogout(w);
  } finally {
    w.destroy();
  }
  return ns;
}

export async function imapNoop(w: Wire): Promise<void> {
  w.write('N NOOP\r\n');
  await imapTagged(w, 'N');
}

export async function imapSelect(w: Wire, mailbox: string): Promise<void> {
  w.write(`S SELECT ${astring(mailbox)}\r\n`);
  await imapTagged(w, 'S');
}

/** FETCH one message's body; returns the literal's size (the bytes verified to arrive). */
export async function imapFetch(w: Wire, seq: number, expectSize: number | undefined): Promise<number> {
  w.write(`F FETCH ${seq} BODY.PEEK[]\r\n`);
  let size = -1;
  for (;;) {
    const l = await w.line();
    if (l.startsWith('F ')) {
      if (!/^F OK\b/i.test(l)) throw new BenchError('refused', l.slice(0, 200));
      break;
    }
    const lit = /\{(\d+)\}$/.exec(l);
    if (lit?.[1] !== undefined) {
      const n = Number(lit[1]);
      const before = w.received;
      await w.skip(n);
      if (w.received - before > n + 65_536) throw new BenchError('protocol', 'literal accounting went wrong');
      if (/BODY\[\]/i.test(l)) size = n;
    }
  }
  if (size < 0) throw new BenchError('protocol', 'FETCH returned no BODY[] literal');
  if (expectSize !== undefined && size !== expectSize) throw new BenchError('size', `BODY[] of ${size} bytes, expected ${expectSize}`);
  return size;
}

/** APPEND a message with a synchronising literal; returns its size. */
export async function imapAppend(w: Wire, mailbox: string, message: Buffer): Promise<number> {
  w.write(`A APPEND ${astring(mailbox)} {${message.length}}\r\n`);
  const cont = await w.line();
  if (!cont.startsWith('+')) throw new BenchError('refused', cont.slice(0, 200));
  w.write(message);
  w.write('\r\n');
  await imapTagged(w, 'A');
  return message.length;
}

async function pop3Ok(w: Wire, failKind: 'auth' | 'refused' = 'refused'): Promise<string> {
  const l = await w.line();
  if (l.startsWith('+OK')) return l;
  throw new BenchError(l.startsWith('-ERR') ? failKind : 'protocol', l.slice(0, 200));
}

/** One POP3 login cycle (USER/PASS, QUIT); returns connect-to-PASS-OK in ns. */
export async function pop3LoginCycle(ep: Endpoint, user: string, pass: string, guard: Guard): Promise<number> {
  const t0 = process.hrtime.bigint();
  const w = new Wire(await guard.run(() => connect(ep)));
  guard.watch(w);
  try {
    const greeting = await w.line();
    if (!greeting.startsWith('+OK')) throw new BenchError('greeting', greeting.slice(0, 200));
    if (ep.tls === 'starttls') {
      w.write('STLS\r\n');
      await pop3Ok(w);
      w.upgrade(await startTls(w.socket, ep));
    }
    w.write(`USER ${user}\r\n`);
    await pop3Ok(w, 'auth');
    w.write(`PASS ${pass}\r\n`);
    await pop3Ok(w, 'auth');
    const ns = Number(process.hrtime.bigint() - t0);
    w.write('QUIT\r\n');
    await pop3Ok(w);
    w.socket.end();
    await w.closed();
    return ns;
  } finally {
    w.destroy();
  }
}

/** An SMTP/LMTP reply: the code of its last line (RFC 5321 section 4.2). */
async function smtpReply(w: Wire): Promise<number> {
  for (;;) {
    const l = await w.line();
    if (!/^\d{3}[ -]/.test(l)) throw new BenchError('protocol', l.slice(0, 200));
    if (l[3] === ' ') return Number(l.slice(0, 3));
  }
}

async function smtpExpect(w: Wire, code: number, what: string): Promise<void> {
  const got = await smtpReply(w);
  if (got !== code) throw new BenchError(got >= 400 ? 'refused' : 'protocol', `${what}: ${got}`);
}

export async function lmtpOpen(ep: Endpoint, onWire?: (w: Wire) => void): Promise<Wire> {
  const w = new Wire(await connect(ep));
  onWire?.(w);
  if ((await smtpReply(w)) !== 220) throw new BenchError('greeting', 'no 220 greeting');
  w.write('LHLO bench.invalid\r\n');
  await smtpExpect(w, 250, 'LHLO');
  return w;
}

/** One LMTP transaction: MAIL, RCPT per recipient, DATA; one 250 per recipient (RFC 2033 4.2). */
export async function lmtpDeliver(w: Wire, rcpts: readonly string[], data: Buffer): Promise<void> {
  w.write('MAIL FROM:<bench@bench.invalid>\r\n');
  await smtpExpect(w, 250, 'MAIL');
  for (const r of rcpts) {
    w.write(`RCPT TO:<${r}>\r\n`);
    await smtpExpect(w, 250, 'RCPT');
  }
  w.write('DATA\r\n');
  await smtpExpect(w, 354, 'DATA');
  w.write(data);
  for (let i = 0; i < rcpts.length; i++) await smtpExpect(w, 250, 'DATA reply');
}

export async function lmtpQuit(w: Wire): Promise<void> {
  w.write('QUIT\r\n');
  await smtpReply(w);
  w.socket.end();
  await w.closed();
}

/** A message of `size` bytes, dot-terminated for DATA (no line starts with '.'). */
export function lmtpMessage(size: number): Buffer {
  return Buffer.concat([rfc822Message(size), Buffer.from('.\r\n', 'latin1')]);
}

/** A fixed message of `size` bytes (at least the header) for FETCH/APPEND/DATA: CRLF lines. */
export function rfc822Message(size: number): Buffer {
  const head = 'From: bench@bench.invalid\r\nTo: user@bench.invalid\r\nSubject: portier bench payload\r\n\r\n';
  const line = `${'abcdefghijklmnopqrstuvwxyz0123456789'.repeat(2)}ABCD\r\n`;
  const parts = [head];
  let at = head.length;
  while (size - at > line.length + 2) {
    parts.push(line);
    at += line.length;
  }
  const rest = size - at;
  if (rest >= 2) parts.push(`${'z'.repeat(rest - 2)}\r\n`);
  else if (rest === 1 && parts.length > 1) parts[parts.length - 1] = `y${line}`;
  return Buffer.from(parts.join(''), 'latin1');
}

/**
 * A per-operation deadline: the wires it watches are destroyed with a `timeout` error when
 * it expires, so no await in a cycle can hang.
 */
export class Guard {
  #timer: NodeJS.Timeout | undefined;
  #wires: Wire[] = [];
  #expired = false;
  readonly #ms: number;

  constructor(ms: number) {
    this.#ms = ms;
  }

  start(): void {
    this.#wires = [];
    this.#expired = false;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#expired = true;
      for (const w of this.#wires) w.destroy(new BenchError('timeout', `no answer within ${this.#ms} ms`));
    }, this.#ms);
  }

  watch(w: Wire): void {
    if (this.#expired) w.destroy(new BenchError('timeout', `no answer within ${this.#ms} ms`));
    else this.#wires.push(w);
  }

  /** Race a step that has no wire yet (connect, TLS) against the deadline; a late winner is closed. */
  async run<T extends { destroy(): void }>(fn: () => Promise<T>): Promise<T> {
    const step = fn();
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new BenchError('timeout', `no connection within ${this.#ms} ms`)), this.#ms);
    });
    try {
      return await Promise.race([step, late]);
    } catch (err) {
      step.then((x) => x.destroy(), () => undefined);
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#wires = [];
  }
}
