import { describe, expect, test } from 'vitest';
import { IMAP_BACKEND_GONE } from '../../../src/imap/commands.js';
import { POP3_BACKEND_GONE } from '../../../src/pop3/commands.js';
import { GOODBYE_START, GOODBYE_WINDOW, keepTail, type Goodbye } from '../../../src/splice/splice.js';

/** What the splice keeps after the backend sent `chunks` (one read each). */
function fold(g: Goodbye, chunks: readonly string[]): string {
  let kept = GOODBYE_START;
  for (const c of chunks) kept = keepTail(g, kept, Buffer.from(c, 'latin1'));
  return kept;
}

/** Whether `g` sees a goodbye in `stream`, read whole, in two reads split at every offset, and byte by byte. */
function saidEveryWay(g: Goodbye, stream: string): boolean[] {
  const answers = [g.said(fold(g, [stream]))];
  for (let i = 1; i < stream.length; i++) answers.push(g.said(fold(g, [stream.slice(0, i), stream.slice(i)])));
  answers.push(g.said(fold(g, [...stream])));
  return [...new Set(answers)];
}

describe('IMAP: did the backend say BYE', () => {
  test('a BYE line, at the start or after other lines, split across reads at any point', () => {
    expect(saidEveryWay(IMAP_BACKEND_GONE, '* BYE Disconnected for inactivity.\r\n')).toEqual([true]);
    expect(saidEveryWay(IMAP_BACKEND_GONE, '* OK still here\r\n* BYE Logging out\r\nA1 OK Logout completed.\r\n')).toEqual([true]);
  });

  test('no BYE line: BYE inside a line, or an ordinary reply', () => {
    expect(saidEveryWay(IMAP_BACKEND_GONE, '* 3 EXISTS\r\nA1 OK NOOP completed.\r\n')).toEqual([false]);
    expect(saidEveryWay(IMAP_BACKEND_GONE, 'A1 NO say * BYE here\r\n')).toEqual([false]);
    expect(saidEveryWay(IMAP_BACKEND_GONE, '')).toEqual([false]);
  });

  test('a BYE more than the window back no longer counts; what is kept stays a few bytes', () => {
    const filler = `* 1 FETCH (BODY[] {${GOODBYE_WINDOW}}\r\n${'x'.repeat(GOODBYE_WINDOW)})\r\n`;
    expect(saidEveryWay(IMAP_BACKEND_GONE, `* BYE early\r\n${filler}`)).toEqual([false]);
    const kept = fold(IMAP_BACKEND_GONE, ['* OK [CAPABILITY IMAP4rev1] ready\r\n', filler, 'A2 OK done\r\n']);
    expect(kept.length).toBeLessThanOrEqual(6);
  });

  test('a read larger than the window: only its newest bytes are looked at', () => {
    const big = `${'y'.repeat(3 * GOODBYE_WINDOW)}\r\n* BYE going\r\n`;
    expect(IMAP_BACKEND_GONE.said(fold(IMAP_BACKEND_GONE, [big]))).toBe(true);
    expect(IMAP_BACKEND_GONE.said(fold(IMAP_BACKEND_GONE, [`\r\n* BYE going\r\n${'y'.repeat(3 * GOODBYE_WINDOW)}`]))).toBe(false);
  });
});

describe('POP3: was the backend\'s last line a status line', () => {
  test('a last +OK or -ERR line, complete or not, split at any point', () => {
    expect(saidEveryWay(POP3_BACKEND_GONE, '+OK 2 messages\r\n+OK Logging out.\r\n')).toEqual([true]);
    expect(saidEveryWay(POP3_BACKEND_GONE, '.\r\n-ERR Disconnected for inactivity.\r\n')).toEqual([true]);
    expect(saidEveryWay(POP3_BACKEND_GONE, '+OK')).toEqual([true]);
  });

  test('the last line is message data or the end of a listing', () => {
    expect(saidEveryWay(POP3_BACKEND_GONE, '+OK 120 octets\r\nSubject: +OK\r\n')).toEqual([false]);
    expect(saidEveryWay(POP3_BACKEND_GONE, '+OK listing\r\n1 120\r\n.\r\n')).toEqual([false]);
    expect(saidEveryWay(POP3_BACKEND_GONE, '+OK Logged in.\r\n\r\n')).toEqual([false]);
    expect(saidEveryWay(POP3_BACKEND_GONE, '')).toEqual([false]);
  });

  test('what is kept is at most 6 bytes however long the lines', () => {
    // RFC 1939 §3: a status line is at most 512 bytes.
    const kept = fold(POP3_BACKEND_GONE, ['+OK 1 messages\r\n', `+OK ${'z'.repeat(500)}`, 'z\r\n']);
    expect(kept).toBe('\n+OK \n');
    expect(fold(POP3_BACKEND_GONE, ['1 120\r\n', `${'z'.repeat(300)}`, 'z'])).toBe('\nzzzz');
    // A read over the window whose newest bytes hold no line start: the last line's start is unknown.
    expect(fold(POP3_BACKEND_GONE, [`+OK ${'z'.repeat(4000)}`, 'z\r\n'])).toBe('');
  });
});
