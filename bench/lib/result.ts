/** The JSON a run produces, and its one-screen human summary. */
import type { LatencySummary } from './histogram.js';
import type { BenchOptions, Mode } from './options.js';
import type { ProcDelta, ProcFiles } from './procstat.js';

export interface Accounting extends ProcDelta {
  /** CPU seconds of the proxy tree per 1,000 operations (logins, deliveries, FETCHes, NOOPs). */
  cpuSecondsPer1000Ops: number;
  /** CPU seconds of the proxy tree per GB (10^9 bytes) moved, throughput mode. */
  cpuSecondsPerGB?: number;
  /** idle mode: RSS per session, the slope fitted over the ramp's samples (`rssFit`). */
  rssPerSessionKiB?: number;
  /**
   * How rssPerSessionKiB was found: `fit` (the Theil–Sen slope over RSS sampled after each
   * ramp step), or `noise` when that slope was at or below 0 (no figure). Results written
   * before the fit say `marginal` (the second half's growth per session) or `total` (growth
   * from the fresh process over all sessions: an upper bound).
   */
  rssPerSessionMethod?: 'fit' | 'marginal' | 'total' | 'noise';
  /** idle mode: the samples and how well they agree (bench/lib/idle-estimate.ts). */
  rssFit?: {
    /** Interquartile range of the segment slopes; larger than the figure means noise. */
    spreadKiB: number;
    leastSquaresKiB: number;
    segmentsKiB: number[];
    /** Leading segments not counted in the figure or the spread (the first, from five points on). */
    burnIn: number;
    /** The ramp's fixed growth (warm-up, young generation), not per session. */
    fixedKiB: number;
    noisy: boolean;
    points: { sessions: number; rssKiB: number }[];
  };
}

export interface BenchResult {
  tool: 'portier-bench';
  schema: 1;
  mode: Mode;
  label?: string;
  target: { host: string; port: number; tls: string };
  params: Omit<BenchOptions, 'mode' | 'host' | 'port' | 'tls' | 'progress' | 'label' | 'pids' | 'auxPids'>;
  startedAt: string;
  /** The measured window, seconds. */
  elapsedS: number;
  ops: number;
  /** Operations per second over the window. */
  rate: number;
  bytes: number;
  /** 10^6 bytes per second (throughput). */
  mbPerS: number;
  latencyUs: LatencySummary;
  errors: Record<string, number>;
  errorCount: number;
  /** One message per error kind, for diagnosis. */
  errorSamples: Record<string, string>;
  accounting?: Accounting;
  /** The same for --aux-pids (nginx's auth_http server). */
  auxAccounting?: Accounting;
  idle?: {
    sessions: number;
    opened: number;
    processes: number;
    rampS: number;
    sessionsPerGiB?: number;
    /** Open files per process of the proxy's tree once the ramp is done, most first (with --pids). */
    files?: ProcFiles[];
    /**
     * Connections the kernel dropped during the ramp because an accept queue was full
     * (TcpExt ListenOverflows / ListenDrops of this network namespace: any listener in it).
     */
    listenOverflows?: number;
    listenDrops?: number;
  };
}

const fmt = (n: number, digits = 0): string => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

export function summarize(r: BenchResult): string {
  const lines = [
    `${r.mode}${r.label !== undefined ? ` [${r.label}]` : ''} against ${r.target.host}:${r.target.port} (tls ${r.target.tls}): ` +
      `${fmt(r.ops)} ops in ${fmt(r.elapsedS, 1)} s = ${fmt(r.rate, 1)}/s` + (r.bytes > 0 ? `, ${fmt(r.mbPerS, 1)} MB/s` : ''),
    `  latency us: p50 ${fmt(r.latencyUs.p50, 1)}  p90 ${fmt(r.latencyUs.p90, 1)}  p99 ${fmt(r.latencyUs.p99, 1)}  max ${fmt(r.latencyUs.max, 1)}`,
    `  errors: ${r.errorCount === 0 ? 'none' : Object.entries(r.errors).map(([k, v]) => `${k} ${v}`).join(', ')}`,
  ];
  for (const [k, v] of Object.entries(r.errorSamples)) lines.push(`    ${k}: ${v}`);
  const a = r.accounting;
  if (a !== undefined) {
    lines.push(`  proxy tree (${a.pids.length} processes): ${fmt(a.cpuSeconds, 2)} CPU s (${fmt(a.systemSeconds, 2)} in the kernel), ${fmt(a.cpuSecondsPer1000Ops, 3)} s per 1,000 ops` +
      (a.cpuSecondsPerGB !== undefined ? `, ${fmt(a.cpuSecondsPerGB, 2)} s per GB` : '') +
      `, RSS ${fmt(a.rssStartKiB)} -> ${fmt(a.rssEndKiB)} KiB` +
      (a.rssPerSessionKiB !== undefined ? `, ${fmt(a.rssPerSessionKiB, 1)} KiB per session` : '') +
      (a.rssFit !== undefined ? ` (spread ${fmt(a.rssFit.spreadKiB, 1)}, segments ${a.rssFit.segmentsKiB.map((x) => fmt(x, 1)).join(' ')}, fixed ${fmt(a.rssFit.fixedKiB)} KiB${a.rssFit.noisy ? ', NOISY' : ''})` : ''));
  }
  const x = r.auxAccounting;
  if (x !== undefined) lines.push(`  helper (${x.pids.length} processes): ${fmt(x.cpuSeconds, 2)} CPU s, ${fmt(x.cpuSecondsPer1000Ops, 3)} s per 1,000 ops`);
  if (r.idle !== undefined) {
    lines.push(`  idle: ${fmt(r.idle.opened)}/${fmt(r.idle.sessions)} sessions over ${r.idle.processes} processes, logged in within ${fmt(r.idle.rampS, 1)} s` +
      (r.idle.sessionsPerGiB !== undefined ? `; ${fmt(r.idle.sessionsPerGiB)} sessions per GiB` : ''));
    if ((r.idle.listenOverflows ?? 0) > 0 || (r.idle.listenDrops ?? 0) > 0) {
      lines.push(`  accept queues full during the ramp: ${fmt(r.idle.listenOverflows ?? 0)} overflows, ${fmt(r.idle.listenDrops ?? 0)} drops (any listener on this host)`);
    }
    if (r.idle.files !== undefined && r.idle.files.length > 0) {
      lines.push(`  open files: ${r.idle.files.map((f) => `${f.comm} ${f.pid} ${fmt(f.files)}${f.limit !== undefined ? `/${fmt(f.limit)}` : ''}`).join(', ')}`);
    }
  }
  return lines.join('\n');
}

export function paramsOf(o: BenchOptions): BenchResult['params'] {
  const { mode: _m, host: _h, port: _p, tls: _t, progress: _g, label: _l, pids: _d, auxPids: _a, ...rest } = o;
  return rest;
}
