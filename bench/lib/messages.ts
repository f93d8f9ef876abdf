/** What the main thread and the worker threads say to each other. */
import type { BenchOptions } from './options.js';

export interface WorkerInput {
  opts: BenchOptions;
  clients: number;
  /** Int32Array over a SharedArrayBuffer: [STOP, OPS_TICKETS, COUNTING]. */
  shared: SharedArrayBuffer;
}

export const STOP = 0;
export const TICKETS = 1;
/** 1 once the measured window is open (after the warm-up): only then are tickets taken. */
export const COUNTING = 2;

export interface Counters {
  ops: number;
  bytes: number;
  errors: Record<string, number>;
}

export type WorkerMessage =
  | ({ type: 'ready' } & Counters)
  | ({ type: 'progress' } & Counters)
  | ({ type: 'finished'; counts: number[]; sum: number; max: number; samples: Record<string, string> } & Counters)
  | { type: 'done' };
