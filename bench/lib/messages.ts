/** What the main thread and the worker threads say to each other. */
import type { BenchOptions } from './options.js';

export interface WorkerInput {
  opts: BenchOptions;
  clients: number;
  /** Int32Array over a SharedArrayBuffer: [STOP, OPS_TICKETS]. */
  shared: SharedArrayBuffer;
}

export const STOP = 0;
export const TICKETS = 1;

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
