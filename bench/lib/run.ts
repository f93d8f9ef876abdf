/**
 * Runs one load-generator mode (all but idle) over worker threads: sessions are set up
 * first, then the clock starts; the run ends at --duration or after --max-ops operations,
 * whichever comes first. Progress goes to stderr once a second.
 */
import { Worker } from 'node:worker_threads';
import { Histogram } from './histogram.js';
import { COUNTING, STOP, TICKETS, type Counters, type WorkerInput, type WorkerMessage } from './messages.js';
import type { BenchOptions } from './options.js';
import { procDelta, sampleProcs, type ProcSample } from './procstat.js';
import { paramsOf, type Accounting, type BenchResult } from './result.js';

export function progressLine(mode: string, elapsedMs: number, c: Counters, lastOps: number, intervalMs: number): string {
  const errs = Object.values(c.errors).reduce((a, b) => a + b, 0);
  const rate = ((c.ops - lastOps) * 1000) / Math.max(1, intervalMs);
  const mb = c.bytes > 0 ? `  ${(c.bytes / 1e6).toFixed(1)} MB` : '';
  return `bench ${mode}: ${(elapsedMs / 1000).toFixed(1)} s  ops ${c.ops}  ${rate.toFixed(0)}/s${mb}  errors ${errs}\n`;
}

function addCounters(into: Counters, c: Counters): void {
  into.ops += c.ops;
  into.bytes += c.bytes;
  for (const [k, v] of Object.entries(c.errors)) into.errors[k] = (into.errors[k] ?? 0) + v;
}

function account(before: ProcSample, after: ProcSample, total: Counters): Accounting {
  const d = procDelta(before, after);
  return {
    ...d,
    cpuSecondsPer1000Ops: total.ops > 0 ? Math.round((d.cpuSeconds / total.ops) * 1000 * 10_000) / 10_000 : 0,
    ...(total.bytes > 0 ? { cpuSecondsPerGB: Math.round((d.cpuSeconds / (total.bytes / 1e9)) * 1000) / 1000 } : {}),
  };
}

export async function runLoad(o: BenchOptions): Promise<BenchResult> {
  const threads = Math.max(1, Math.min(o.threads, o.clients));
  const shared = new SharedArrayBuffer(12);
  const flags = new Int32Array(shared);
  const workers: Worker[] = [];
  const latest: Counters[] = [];
  const finished: Extract<WorkerMessage, { type: 'finished' }>[] = [];
  let readyCount = 0;
  let doneCount = 0;
  let failure: Error | undefined;
  let wake: (() => void) | undefined;
  const poke = (): void => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const waitUntil = async (cond: () => boolean, ms: number, what: string): Promise<void> => {
    const deadline = Date.now() + ms;
    while (!cond()) {
      if (failure !== undefined) throw failure;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`bench: timed out after ${ms} ms waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 1000));
        wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  };

  for (let i = 0; i < threads; i++) {
    const clients = Math.floor(o.clients / threads) + (i < o.clients % threads ? 1 : 0);
    const input: WorkerInput = { opts: o, clients, shared };
    const w = new Worker(new URL('./worker.js', import.meta.url), { workerData: input });
    latest.push({ ops: 0, bytes: 0, errors: {} });
    w.on('message', (m: WorkerMessage) => {
      if (m.type === 'ready') readyCount++;
      else if (m.type === 'progress') latest[i] = m;
      else if (m.type === 'finished') {
        latest[i] = m;
        finished.push(m);
      } else doneCount++;
      poke();
    });
    w.on('error', (err) => {
      failure ??= err;
      poke();
    });
    w.on('exit', (code) => {
      if (code !== 0) failure ??= new Error(`bench worker exited with code ${code}`);
      poke();
    });
    workers.push(w);
  }

  try {
    await waitUntil(() => readyCount === threads, o.rampTimeoutMs, 'the sessions to log in');
    if (o.warmupMs > 0) {
      // Warm-up: the same load, not counted, so a JIT-compiled proxy is measured warm.
      for (const w of workers) w.postMessage('start');
      if (o.progress) process.stderr.write(`bench ${o.mode}: warming up for ${o.warmupMs} ms\n`);
      await new Promise((r) => setTimeout(r, o.warmupMs));
      for (const w of workers) w.postMessage('reset');
      Atomics.store(flags, TICKETS, 0);
      Atomics.store(flags, COUNTING, 1);
      await new Promise((r) => setTimeout(r, 50));
    }
    const startedAt = new Date().toISOString();
    const before: ProcSample | undefined = o.pids.length > 0 ? sampleProcs(o.pids) : undefined;
    const auxBefore: ProcSample | undefined = o.auxPids.length > 0 ? sampleProcs(o.auxPids) : undefined;
    let auxAfter: ProcSample | undefined;
    const t0 = Date.now();
    let after: ProcSample | undefined;
    let tEnd: number | undefined;
    const closeWindow = (): void => {
      if (tEnd !== undefined) return;
      tEnd = Date.now();
      Atomics.store(flags, STOP, 1);
      if (before !== undefined) after = sampleProcs(o.pids);
      if (auxBefore !== undefined) auxAfter = sampleProcs(o.auxPids);
    };
    if (o.warmupMs === 0) {
      Atomics.store(flags, COUNTING, 1);
      for (const w of workers) w.postMessage('start');
    }
    const stopTimer = setTimeout(() => {
      closeWindow();
      poke();
    }, o.durationMs);
    let lastOps = 0;
    let lastAt = t0;
    const ticker = setInterval(() => {
      const total: Counters = { ops: 0, bytes: 0, errors: {} };
      latest.forEach((c) => addCounters(total, c));
      const now = Date.now();
      if (o.progress) process.stderr.write(progressLine(o.mode, now - t0, total, lastOps, now - lastAt));
      lastOps = total.ops;
      lastAt = now;
    }, 1000);
    try {
      await waitUntil(() => finished.length === threads, o.durationMs + o.timeoutMs + 10_000, 'the clients to finish');
    } finally {
      clearTimeout(stopTimer);
      clearInterval(ticker);
    }
    closeWindow();
    await waitUntil(() => doneCount === threads, 5000, 'the sessions to close').catch(() => undefined);

    const hist = new Histogram();
    const total: Counters = { ops: 0, bytes: 0, errors: {} };
    const samples: Record<string, string> = {};
    for (const f of finished) {
      hist.add(f.counts, f.sum, f.max);
      addCounters(total, f);
      for (const [k, v] of Object.entries(f.samples)) samples[k] ??= v;
    }
    const elapsedS = ((tEnd ?? Date.now()) - t0) / 1000;
    const result: BenchResult = {
      tool: 'portier-bench',
      schema: 1,
      mode: o.mode,
      ...(o.label !== undefined ? { label: o.label } : {}),
      target: { host: o.host, port: o.port, tls: o.tls },
      params: paramsOf(o),
      startedAt,
      elapsedS: Math.round(elapsedS * 1000) / 1000,
      ops: total.ops,
      rate: Math.round((total.ops / Math.max(elapsedS, 0.001)) * 10) / 10,
      bytes: total.bytes,
      mbPerS: Math.round((total.bytes / 1e6 / Math.max(elapsedS, 0.001)) * 10) / 10,
      latencyUs: hist.summary(),
      errors: total.errors,
      errorCount: Object.values(total.errors).reduce((a, b) => a + b, 0),
      errorSamples: samples,
    };
    if (before !== undefined && after !== undefined) result.accounting = account(before, after, total);
    if (auxBefore !== undefined && auxAfter !== undefined) result.auxAccounting = account(auxBefore, auxAfter, total);
    return result;
  } finally {
    Atomics.store(flags, STOP, 1);
    await Promise.all(workers.map((w) => w.terminate()));
  }
}
