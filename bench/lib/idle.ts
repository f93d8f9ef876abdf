/**
 * The idle mode: M logged-in sessions held silent by forked holder processes (at most
 * --per-process each), RSS of the proxy tree measured before and with them, while a few
 * sampler sessions in this process measure NOOP round trips through the loaded proxy.
 * The sessions log in over --steps steps with RSS sampled after each, once settled; memory
 * per session is the slope fitted over those samples, with its spread (idle-estimate.ts).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { Histogram } from './histogram.js';
import { estimatePerSession, stepSizes, type RampPoint } from './idle-estimate.js';
import type { HolderMessage, HolderStart } from './idle-holder.js';
import { MAX_PER_PROCESS, endpoint, fixedUser, type BenchOptions } from './options.js';
import { fileCounts, listenDrops, procDelta, sampleProcs, type ProcFiles } from './procstat.js';
import { Guard, imapLogout, imapNoop, imapOpen } from './protocols.js';
import { paramsOf, type BenchResult } from './result.js';
import { errorKind, type Wire } from './wire.js';

const GiB_KiB = 1024 * 1024;

function settle(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Wait until the proxy's RSS holds still (three samples 500 ms apart within 0.25 % or 256 KiB), at most `maxMs`. */
async function settledSample(pids: readonly number[], maxMs: number): Promise<ReturnType<typeof sampleProcs>> {
  const until = Date.now() + maxMs;
  await settle(1000);
  let last = sampleProcs(pids);
  let still = 0;
  while (Date.now() < until && still < 2) {
    await settle(500);
    const s = sampleProcs(pids);
    still = Math.abs(s.rssKiB - last.rssKiB) <= Math.max(256, last.rssKiB * 0.0025) ? still + 1 : 0;
    last = s;
  }
  return last;
}

export async function runIdle(o: BenchOptions): Promise<BenchResult> {
  const perProcess = Math.max(1, Math.min(o.perProcess, MAX_PER_PROCESS));
  const processes = Math.max(1, Math.ceil(o.sessions / perProcess));
  const errors: Record<string, number> = {};
  const samples: Record<string, string> = {};
  const holders: ChildProcess[] = [];
  /** Sessions each holder has logged in, over all steps so far. */
  const opened = new Array<number>(processes).fill(0);
  const countOf = (i: number): number => Math.floor(o.sessions / processes) + (i < o.sessions % processes ? 1 : 0);
  // The ramp comes in steps, every holder taking its share of each; RSS is sampled once settled
  // after each step, and memory per session is fitted over those points (idle-estimate.ts).
  const perHolderSteps = Array.from({ length: processes }, (_, i) => stepSizes(countOf(i), o.steps));
  const steps = Math.max(...perHolderSteps.map((x) => x.length));
  const measured = o.pids.length > 0;
  const base = measured ? sampleProcs(o.pids) : undefined;
  const points: RampPoint[] = [];
  const t0 = Date.now();
  const drops0 = listenDrops();
  for (let i = 0; i < processes; i++) holders.push(fork(new URL('./idle-holder.js', import.meta.url), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
  const rampStep = (step: number): Promise<void> => new Promise<void>((resolve, reject) => {
    const want = holders.filter((_, i) => (perHolderSteps[i]?.[step] ?? 0) > 0);
    const stepOpened = new Array<number>(processes).fill(0);
    let held = 0;
    const deadline = setTimeout(() => reject(new Error(`idle: sessions not logged in within ${o.rampTimeoutMs} ms`)), o.rampTimeoutMs + 5000);
    const ticker = setInterval(() => {
      if (o.progress) process.stderr.write(`bench idle: ${((Date.now() - t0) / 1000).toFixed(1)} s  step ${step + 1}/${steps}  sessions ${opened.reduce((a, b) => a + b, 0) + stepOpened.reduce((a, b) => a + b, 0)}/${o.sessions}\n`);
    }, 1000);
    const cleanups: (() => void)[] = [];
    const done = (err?: Error): void => {
      clearTimeout(deadline);
      clearInterval(ticker);
      for (const c of cleanups) c();
      if (err !== undefined) reject(err);
      else resolve();
    };
    if (want.length === 0) done();
    holders.forEach((child, i) => {
      const count = perHolderSteps[i]?.[step] ?? 0;
      if (count === 0) return;
      const onMessage = (m: HolderMessage): void => {
        stepOpened[i] = m.opened;
        if (m.type === 'held') {
          opened[i] = (opened[i] ?? 0) + m.opened;
          stepOpened[i] = 0;
          for (const [k, v] of Object.entries(m.errors)) errors[`ramp-${k}`] = (errors[`ramp-${k}`] ?? 0) + v;
          if (m.sample !== undefined) samples['ramp'] ??= m.sample;
          if (++held === want.length) done();
        }
      };
      const onExit = (code: number | null): void => done(new Error(`idle holder exited with code ${String(code)} during the ramp`));
      child.on('message', onMessage);
      child.on('exit', onExit);
      cleanups.push(() => {
        child.off('message', onMessage);
        child.off('exit', onExit);
      });
      child.send({ type: 'start', opts: o, count } satisfies HolderStart);
    });
  });
  try {
    for (let step = 0; step < steps; step++) {
      await rampStep(step);
      if (measured) points.push({ sessions: opened.reduce((a, b) => a + b, 0), rssKiB: (await settledSample(o.pids, 6000)).rssKiB });
    }
    const rampS = (Date.now() - t0) / 1000;
    const files: ProcFiles[] | undefined = measured ? fileCounts(o.pids) : undefined;
    const drops1 = listenDrops();
    const totalOpened = opened.reduce((a, b) => a + b, 0);

    // Samplers: a few sessions doing NOOP at an interval through the loaded proxy.
    const hist = new Histogram();
    const ep = endpoint(o);
    const { user, pass } = fixedUser(o);
    const wires: Wire[] = [];
    for (let i = 0; i < o.samplers; i++) {
      const g = new Guard(o.timeoutMs);
      g.start();
      try {
        wires.push(await g.run(() => imapOpen(ep, user, pass, (w) => g.watch(w))));
      } catch (err) {
        errors[`sampler-${errorKind(err)}`] = (errors[`sampler-${errorKind(err)}`] ?? 0) + 1;
      } finally {
        g.stop();
      }
    }
    await settle(5000);
    const startedAt = new Date().toISOString();
    const before = o.pids.length > 0 ? sampleProcs(o.pids) : undefined;
    const w0 = Date.now();
    let ops = 0;
    const until = w0 + o.durationMs;
    // Without samplers the sessions are still held for the window (a heap snapshot, a look at ss).
    if (wires.length === 0) await settle(o.durationMs);
    await Promise.all(wires.map(async (w) => {
      const g = new Guard(o.timeoutMs);
      while (Date.now() < until && ops < o.maxOps) {
        g.start();
        g.watch(w);
        const t = process.hrtime.bigint();
        try {
          await imapNoop(w);
          hist.record(Number(process.hrtime.bigint() - t));
          ops++;
        } catch (err) {
          errors[errorKind(err)] = (errors[errorKind(err)] ?? 0) + 1;
          samples[errorKind(err)] ??= err instanceof Error ? err.message : String(err);
          break;
        } finally {
          g.stop();
        }
        await settle(o.sampleIntervalMs);
      }
    }));
    const elapsedS = (Date.now() - w0) / 1000;
    const after = o.pids.length > 0 ? sampleProcs(o.pids) : undefined;
    for (const w of wires) {
      const g = new Guard(2000);
      g.start();
      g.watch(w);
      await imapLogout(w).catch(() => undefined);
      g.stop();
      w.destroy();
    }
    const sessions = totalOpened + wires.length;
    const result: BenchResult = {
      tool: 'portier-bench',
      schema: 1,
      mode: 'idle',
      ...(o.label !== undefined ? { label: o.label } : {}),
      target: { host: o.host, port: o.port, tls: o.tls },
      params: paramsOf(o),
      startedAt,
      elapsedS: Math.round(elapsedS * 1000) / 1000,
      ops,
      rate: Math.round((ops / Math.max(elapsedS, 0.001)) * 10) / 10,
      bytes: 0,
      mbPerS: 0,
      latencyUs: hist.summary(),
      errors,
      errorCount: Object.values(errors).reduce((a, b) => a + b, 0),
      errorSamples: samples,
      idle: { sessions: o.sessions, opened: totalOpened, processes, rampS: Math.round(rampS * 10) / 10, ...(files !== undefined ? { files } : {}), listenOverflows: drops1.overflows - drops0.overflows, listenDrops: drops1.drops - drops0.drops },
    };
    if (base !== undefined && before !== undefined && after !== undefined) {
      const d = procDelta(before, after);
      const est = estimatePerSession(points, base.rssKiB);
      // No figure when the fitted cost is at or below 0: the sessions cost less than the heap's noise.
      const perSession = est !== undefined && est.kib > 0 ? est.kib : undefined;
      result.accounting = {
        ...d,
        rssStartKiB: base.rssKiB,
        cpuSecondsPer1000Ops: ops > 0 ? Math.round((d.cpuSeconds / ops) * 1000 * 10_000) / 10_000 : 0,
        ...(perSession !== undefined ? { rssPerSessionKiB: perSession } : {}),
        rssPerSessionMethod: perSession !== undefined ? 'fit' : 'noise',
        ...(est !== undefined
          ? { rssFit: { spreadKiB: est.spreadKiB, leastSquaresKiB: est.leastSquaresKiB, segmentsKiB: est.segmentsKiB, burnIn: est.burnIn, fixedKiB: est.fixedKiB, noisy: est.noisy, points } }
          : {}),
      };
      if (result.idle !== undefined && perSession !== undefined) result.idle.sessionsPerGiB = Math.floor(GiB_KiB / perSession);
    }
    return result;
  } finally {
    for (const h of holders) if (h.connected) h.send({ type: 'close' });
    await Promise.all(holders.map((h) => h.exitCode !== null || h.signalCode !== null ? Promise.resolve() : new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        h.kill('SIGKILL');
        resolve();
      }, 5000);
      h.once('exit', () => {
        clearTimeout(t);
        resolve();
      });
    })));
  }
}
