/**
 * How fast the host runs a fixed piece of work right now. On a shared VM the hypervisor can
 * take a vCPU away without the guest seeing it as steal time, so CPU seconds and rates of every
 * peer swing together (seen here: 2-4× within an hour). The compare runner probes between runs,
 * when none of its load is running, and reports how much the host's speed moved, so a reader
 * knows whether one run's ratios can be trusted near their goals.
 */
import { createHash } from 'node:crypto';

const BLOCK = Buffer.alloc(1 << 20, 0x5a);
/** SHA-256 over 32 MiB: about 25 ms on one core of the 2-core EPYC VM (SHA extensions). */
const BLOCKS = 32;
const TRIES = 3;

/** Milliseconds for the probe's work, the median of three tries (one stray interrupt does not count). */
export function hostProbeMs(): number {
  const times: number[] = [];
  for (let t = 0; t < TRIES; t++) {
    const t0 = performance.now();
    const h = createHash('sha256');
    for (let i = 0; i < BLOCKS; i++) h.update(BLOCK);
    h.digest();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return Math.round((times[1] as number) * 100) / 100;
}

export interface HostSpeed {
  /** Probes taken, in milliseconds. */
  readonly count: number;
  readonly minMs: number;
  readonly medianMs: number;
  readonly maxMs: number;
  /** max / min: 1 on a steady host. */
  readonly spread: number;
}

/** Past this spread the run's figures moved with the host, not only with the code. */
export const HOST_SPREAD_WARN = 1.5;

export function hostSpeed(probesMs: readonly number[]): HostSpeed | undefined {
  const xs = probesMs.filter((x) => Number.isFinite(x) && x > 0).sort((a, b) => a - b);
  if (xs.length === 0) return undefined;
  const min = xs[0] as number;
  const max = xs[xs.length - 1] as number;
  const mid = Math.floor(xs.length / 2);
  const median = xs.length % 2 === 1 ? (xs[mid] as number) : ((xs[mid - 1] as number) + (xs[mid] as number)) / 2;
  return { count: xs.length, minMs: min, medianMs: Math.round(median * 100) / 100, maxMs: max, spread: Math.round((max / min) * 100) / 100 };
}

/** The report's line about the host; a warning when its speed moved more than HOST_SPREAD_WARN. */
export function hostSpeedLine(h: HostSpeed | undefined): string | undefined {
  if (h === undefined) return undefined;
  const base = `Host speed (SHA-256 of 32 MiB in the runner, between runs, ${h.count} probes): median ${h.medianMs} ms, ${h.minMs}-${h.maxMs} ms`;
  if (h.spread <= HOST_SPREAD_WARN) return `${base} (steady: ${h.spread}×).`;
  return `${base}: **the host's speed changed ${h.spread}× during this run**. Every peer's rates and CPU figures move with it; ratios from one round are closer to the truth than absolute figures, and a figure near its goal needs a re-run on a quieter host.`;
}
