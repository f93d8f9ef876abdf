/**
 * Drives the wire readers the way a front-end does: push a chunk, pull events until null.
 * Every table case runs whole, byte by byte and at random split points (node-redis decoder
 * tests, undici split fuzzing).
 */
import { expect } from 'vitest';
import { ImapCommandReader } from '../../../../src/imap/wire/command-reader.js';
import type { ImapCommandEvent, ImapCommandReaderOptions } from '../../../../src/imap/wire/command-reader.js';
import { ImapResponseReader } from '../../../../src/imap/wire/response-reader.js';
import type { ImapResponseEvent } from '../../../../src/imap/wire/response-reader.js';

export type Chunking = 'whole' | 'bytes' | readonly number[];

/** Cuts `input` at the given offsets (or into single bytes, or not at all). */
export function split(input: Buffer, chunking: Chunking): Buffer[] {
  if (chunking === 'whole') return [input];
  if (chunking === 'bytes') return [...input].map((b) => Buffer.from([b]));
  const cuts = [...new Set(chunking.map((c) => Math.max(0, Math.min(input.length, c))))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const c of [...cuts, input.length]) {
    out.push(input.subarray(prev, c));
    prev = c;
  }
  return out;
}

/** A few deterministic pseudo-random cut sets for `len` bytes. */
export function randomCuts(len: number, seed: number, count = 6): number[] {
  let x = seed * 2654435761 + 1;
  const cuts: number[] = [];
  for (let i = 0; i < count; i++) {
    x = (x * 1103515245 + 12345) % 2147483648;
    cuts.push(len === 0 ? 0 : x % len);
  }
  return cuts;
}

export interface CommandDriver {
  /** Called for every event; may call reader.readRawLine() (AUTHENTICATE). */
  readonly onEvent?: (event: ImapCommandEvent, reader: ImapCommandReader) => void;
  /** Stop pulling after this event (the consumer waits for a backend). */
  readonly stopAfter?: (event: ImapCommandEvent) => boolean;
}

export function readCommands(
  input: Buffer | string,
  chunking: Chunking = 'whole',
  options: ImapCommandReaderOptions = {},
  driver: CommandDriver = {},
): { events: ImapCommandEvent[]; reader: ImapCommandReader; maxBuffered: number } {
  const bytes = typeof input === 'string' ? Buffer.from(input, 'latin1') : input;
  const reader = new ImapCommandReader(options);
  const events: ImapCommandEvent[] = [];
  let maxBuffered = 0;
  let stopped = false;
  for (const chunk of split(bytes, chunking)) {
    reader.push(chunk);
    while (!stopped) {
      const ev = reader.next();
      if (ev === null) break;
      events.push(ev);
      driver.onEvent?.(ev, reader);
      if (driver.stopAfter?.(ev) === true) stopped = true;
    }
    if (!stopped) maxBuffered = Math.max(maxBuffered, reader.buffered);
  }
  return { events, reader, maxBuffered };
}

/** Asserts the same events for whole input, byte-by-byte input and random splits. */
export function expectCommands(
  input: Buffer | string,
  expected: readonly unknown[],
  options: ImapCommandReaderOptions = {},
  driver: CommandDriver = {},
): void {
  const bytes = typeof input === 'string' ? Buffer.from(input, 'latin1') : input;
  const chunkings: Chunking[] = ['whole', 'bytes', ...[1, 2, 3].map((s) => randomCuts(bytes.length, s))];
  for (const chunking of chunkings) {
    const { events } = readCommands(bytes, chunking, options, driver);
    expect(events, `chunking ${JSON.stringify(chunking)}`).toEqual(expected);
  }
}

export function readResponses(input: Buffer | string, chunking: Chunking = 'whole', maxResponseSize?: number): ImapResponseEvent[] {
  const bytes = typeof input === 'string' ? Buffer.from(input, 'utf8') : input;
  const reader = new ImapResponseReader(maxResponseSize === undefined ? {} : { maxResponseSize });
  const events: ImapResponseEvent[] = [];
  for (const chunk of split(bytes, chunking)) {
    reader.push(chunk);
    for (let ev = reader.next(); ev !== null; ev = reader.next()) events.push(ev);
  }
  return events;
}

export const b = (s: string): Buffer => Buffer.from(s, 'latin1');
export const str = (s: string): { type: 'string'; value: Buffer } => ({ type: 'string', value: Buffer.from(s, 'latin1') });
export const atom = (value: string): { type: 'atom'; value: string } => ({ type: 'atom', value });

export function command(tag: string, name: string, args: readonly unknown[], lineBytes?: number, literalBytes = 0): unknown {
  return {
    kind: 'command',
    tag,
    name,
    args,
    raw: lineBytes === undefined ? expect.any(Object) : { lineBytes, literalBytes },
  };
}
