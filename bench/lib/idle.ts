/**
 * The idle mode: M logged-in sessions held silent by forked holder processes (at most
 * --per-process each), RSS of the proxy tree measured before and with them, while a few
 * sampler sessions in this process measure NOOP round trips through the loaded proxy.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { Histogram } from './histogram.js';
import type { HolderMessage, HolderStart } from './idle-holder.js';
import { MAX_PER_PROCESS, endpoint, fixedUser, type BenchOptions } from './options.js';
import { procDelta, sampleProcs } from './procstat.js';
import { Guard, imapLogout, imapNoop, imapOpen } from './protocols.js';
import { paramsOf, type BenchResult } from './result.js';
import { errorKind, type Wire } from './wire.js';

const GiB_KiB = 1024 * 1024;

function settle(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export async function runIdle(o: BenchOptions): Promise<BenchResult> {
  const perProcess = Math.max(1, Math.min(o.perProcess, MAX_PER_PROCESS));
  // At least two holders: the first half of the sessions is held, RSS sampled, then the second
  // half; the difference per session is the marginal cost, unaffected by a heap that was full
  // of garbage (or not yet grown) when the run began.
  const processes = Math.max(o.sessions >= 2 ? 2 : 1, Math.ceil(o.sessions / perProcess));
  const errors: Record<string, number> = {};
  const samples: Record<string, string> = {};
  const holders: ChildProcess[] = [];
  const opened = new Array<number>(processes).fill(0);
  const countOf = (i: number): number => Math.floor(o.sessions / processes) + (i < o.sessions % processes ? 1 : 0);
  const base = o.pids.length > 0 ? sampleProcs(o.pids) : undefined;
  let mid: ReturnType<typeof sampleProcs> | undefined;
  let secondHalf = 0;
  const t0 = Date.now();
  const rampBatch = (from: number, to: number): Promise<void> => new Promise<void>((resolve, reject) => {
    let held = 0;
    const want = to - from;
    const deadline = setTimeout(() => reject(new Error(`idle: sessions not logged in within ${o.rampTimeoutMs} ms`)), o.rampTimeoutMs + 5000);
    const ticker = setInterval(() => {
      if (o.progress) process.stderr.write(`bench idle: ${((Date.now() - t0) / 1000).toFixed(1)} s  sessions ${opened.reduce((a, b) => a + b, 0)}/${o.sessions}\n`);
    }, 1000);
    const done = (err?: Error): void => {
      clearTimeout(deadline);
      clearInterval(ticker);
      if (err !== undefined) reject(err);
      else resolve();
    };
    for (let i = from; i < to; i++) {
      const child = fork(new URL('./idle-holder.js', import.meta.url), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      holders.push(child);
      let mine = false;
      child.on('message', (m: HolderMessage) => {
        opened[i] = m.opened;
        if (m.type === 'held') {
          mine = true;
          for (const [k, v] of Object.entries(m.errors)) errors[`ramp-${k}`] = (errors[`ramp-${k}`] ?? 0) + v;
          if (m.sample !== undefined) samples['ramp'] ??= m.sample;
          if (++held === want) done();
        }
      });
      child.on('exit', (code) => {
        if (!mine) done(new Error(`idle holder exited with code ${String(code)} during the ramp`));
      });
      child.send({ type: 'start', opts: o, count: countOf(i) } satisfies HolderStart);
    }
  });
  try {
    const half = Math.floor(processes / 2);
    if (half > 0) {
      await rampBatch(0, half);
      await settle(5000);
      mid = o.pids.length > 0 ? sampleProcs(o.pids) : undefined;
    }
    const firstOpened = opened.reduce((a, b) => a + b, 0);
    await rampBatch(half, processes);
    secondHalf = opened.reduce((a, b) => a + b, 0) - firstOpened;
    const rampS = (Date.now() - t0) / 1000;
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
      idle: { sessions: o.sessions, opened: totalOpened, processes, rampS: Math.round(rampS * 10) / 10 },
    };
    if (base !== undefined && before !== undefined && after !== undefined) {
      const d = procDelta(before, after);
      const added = secondHalf + wires.length;
      const total = sessions > 0 ? (before.rssKiB - base.rssKiB) / sessions : 0;
      const marginal = mid !== undefined && added > 0 ? (before.rssKiB - mid.rssKiB) / added : undefined;
      // A garbage-collected proxy can free more between the halves than the second half adds
      // (a login storm leaves garbage): a marginal figure at or below 0 is noise, not a cost,
      // and the growth over the whole run from the fresh process (an upper bound) is given.
      // When even that shrank (a collection freed more than all the sessions hold), there is
      // no figure to give: the sessions cost less than the heap's noise.
      const method = marginal !== undefined && marginal > 0 ? 'marginal' : total > 0 ? 'total' : 'noise';
      const perSession = method === 'marginal' ? (marginal ?? 0) : method === 'total' ? total : undefined;
      result.accounting = {
        ...d,
        rssStartKiB: base.rssKiB,
        cpuSecondsPer1000Ops: ops > 0 ? Math.round((d.cpuSeconds / ops) * 1000 * 10_000) / 10_000 : 0,
        ...(perSession !== undefined ? { rssPerSessionKiB: Math.round(perSession * 100) / 100 } : {}),
        rssPerSessionMethod: method,
      };
      if (result.idle !== undefined && perSession !== undefined && perSession > 0) result.idle.sessionsPerGiB = Math.floor(GiB_KiB / perSession);
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
