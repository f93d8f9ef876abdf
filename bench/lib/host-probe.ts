/**
 * How fast the host runs fixed pieces of work right now. On a shared VM the hypervisor can
 * take a vCPU away without the guest seeing it as steal time, and neighbours can fill the
 * shared cache and memory bus, so the rates and CPU seconds of every peer swing (seen here:
 * 2-4× within an hour). The compare runner probes between runs, when none of its load is
 * running, and reports how much the host moved, so a reader knows whether a run's figures can
 * be trusted near their goals.
 *
 * Two probes, because they fail differently: SHA-256 over 32 MiB is compute in a few cache
 * lines (it slows when the vCPU is taken away), a random walk over 16 MiB is one cache and TLB
 * miss per step (it slows when neighbours load the memory system). A Node proxy's JIT code and
 * heap feel the second more than nginx's or Dovecot's compact C does.
 */
import { createHash } from 'node:crypto';

const BLOCK = Buffer.alloc(1 << 20, 0x5a);
/** SHA-256 over 32 MiB: about 25 ms on one core of the 2-core EPYC VM (SHA extensions). */
const BLOCKS = 32;
/** 4 Mi entries of 4 bytes: 16 MiB, past the last-level cache a VM slice usually gets. */
const WALK_ENTRIES = 1 << 22;
const WALK_STEPS = 200_000;
const TRIES = 3;

let walk: Int32Array | undefined;

/** One random cycle through every entry (Sattolo's shuffle, fixed seed): each step a cache miss. */
function walkTable(): Int32Array {
  if (walk !== undefined) return walk;
  const t = new Int32Array(WALK_ENTRIES);
  for (let i = 0; i < t.length; i++) t[i] = i;
  let seed = 12345;
  for (let i = t.length - 1; i > 0; i--) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    const j = seed % i;
    const x = t[i] as number;
    t[i] = t[j] as number;
    t[j] = x;
  }
  walk = t;
  return t;
}

export interface HostProbe {
  /** Milliseconds for SHA-256 over 32 MiB. */
  readonly cpuMs: number;
  /** Nanoseconds per step of the random walk. */
  readonly memNs: number;
}

function median3(f: () => number): number {
  const xs: number[] = [];
  for (let t = 0; t < TRIES; t++) xs.push(f());
  xs.sort((a, b) => a - b);
  return xs[1] as number;
}

/** Both probes, each the median of three tries (one stray interrupt does not count). */
export function hostProbe(): HostProbe {
  const cpuMs = median3(() => {
    const t0 = performance.now();
    const h = createHash('sha256');
    for (let i = 0; i < BLOCKS; i++) h.update(BLOCK);
    h.digest();
    return performance.now() - t0;
  });
  const table = walkTable();
  let p = 0;
  const memNs = median3(() => {
    const t0 = performance.now();
    for (let i = 0; i < WALK_STEPS; i++) p = table[p] as number;
    return ((performance.now() - t0) * 1e6) / WALK_STEPS;
  });
  if (p < 0) throw new Error('unreachable'); // keeps the walk from being optimised away
  return { cpuMs: Math.round(cpuMs * 100) / 100, memNs: Math.round(memNs * 10) / 10 };
}

export interface HostSpeed {
  readonly count: number;
  readonly min: number;
  readonly median: number;
  readonly max: number;
  /** max / min: 1 on a steady host. */
  readonly spread: number;
}

/** Past this spread the run's figures moved with the host, not only with the code. */
export const HOST_SPREAD_WARN = 1.5;

export function hostSpeed(samples: readonly number[]): HostSpeed | undefined {
  const xs = samples.filter((x) => Number.isFinite(x) && x > 0).sort((a, b) => a - b);
  if (xs.length === 0) return undefined;
  const min = xs[0] as number;
  const max = xs[xs.length - 1] as number;
  const mid = Math.floor(xs.length / 2);
  const median = xs.length % 2 === 1 ? (xs[mid] as number) : ((xs[mid - 1] as number) + (xs[mid] as number)) / 2;
  return { count: xs.length, min, median: Math.round(median * 100) / 100, max, spread: Math.round((max / min) * 100) / 100 };
}

/** The report's line about the host; a warning when either probe moved more than HOST_SPREAD_WARN. */
export function hostSpeedLine(cpu: HostSpeed | undefined, mem: HostSpeed | undefined): string | undefined {
  const parts: string[] = [];
  if (cpu !== undefined) parts.push(`SHA-256 of 32 MiB median ${cpu.median} ms (${cpu.min}-${cpu.max}, ${cpu.spread}×)`);
  if (mem !== undefined) parts.push(`random memory walk median ${mem.median} ns per step (${mem.min}-${mem.max}, ${mem.spread}×)`);
  if (parts.length === 0) return undefined;
  const count = cpu?.count ?? mem?.count ?? 0;
  const base = `Host speed, probed by the runner before each of ${count} runs: ${parts.join('; ')}`;
  const worst = Math.max(cpu?.spread ?? 1, mem?.spread ?? 1);
  if (worst <= HOST_SPREAD_WARN) return `${base}. Steady.`;
  return `${base}: **the host's speed changed ${worst}× during this run**. Every peer's rates and CPU figures move with it; ratios from one round are closer to the truth than absolute figures, and a figure near its goal needs a re-run on a quieter host.`;
}
