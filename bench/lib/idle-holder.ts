/**
 * A forked holder process for the idle mode: logs in its share of sessions (a bounded
 * number at a time) and keeps them open, silent, until the parent says close or goes away.
 * Each `start` adds `count` sessions to those held (the ramp comes in steps) and is answered
 * by one `held`.
 * One process holds at most MAX_PER_PROCESS sessions: the open-file limit here is 20,000.
 */
import { MAX_PER_PROCESS, endpoint, fixedUser, type BenchOptions } from './options.js';
import { Guard, imapOpen } from './protocols.js';
import { errorKind, type Wire } from './wire.js';

export interface HolderStart {
  type: 'start';
  opts: BenchOptions;
  count: number;
}

export type HolderMessage =
  | { type: 'progress'; opened: number; errors: Record<string, number> }
  | { type: 'held'; opened: number; errors: Record<string, number>; sample?: string };

const RAMP_CONCURRENCY = 64;

async function hold(o: BenchOptions, count: number, send: (m: HolderMessage) => void): Promise<Wire[]> {
  const ep = endpoint(o);
  const { user, pass } = fixedUser(o);
  const wires: Wire[] = [];
  const errors: Record<string, number> = {};
  let sample: string | undefined;
  let next = 0;
  const deadline = Date.now() + o.rampTimeoutMs;
  const opener = async (): Promise<void> => {
    // Each session gets up to 3 attempts; the ramp as a whole is bounded by --ramp-timeout.
    while (next < count && Date.now() < deadline) {
      next++;
      for (let attempt = 0; attempt < 3; attempt++) {
        const guard = new Guard(o.timeoutMs);
        guard.start();
        try {
          wires.push(await guard.run(() => imapOpen(ep, user, pass, (w) => guard.watch(w))));
          break;
        } catch (err) {
          const kind = errorKind(err);
          errors[kind] = (errors[kind] ?? 0) + 1;
          sample ??= `${kind}: ${err instanceof Error ? err.message : String(err)}`;
          await new Promise((r) => setTimeout(r, 50));
        } finally {
          guard.stop();
        }
      }
    }
  };
  const ticker = setInterval(() => send({ type: 'progress', opened: wires.length, errors }), 1000);
  await Promise.all(Array.from({ length: Math.min(RAMP_CONCURRENCY, count) }, opener));
  clearInterval(ticker);
  send({ type: 'held', opened: wires.length, errors, ...(sample !== undefined ? { sample } : {}) });
  return wires;
}

if (process.send !== undefined) {
  const send = (m: HolderMessage): void => {
    process.send?.(m);
  };
  let wires: Wire[] = [];
  let asked = 0;
  const closeAll = (): void => {
    for (const w of wires) w.destroy();
    wires = [];
    process.exit(0);
  };
  process.on('disconnect', closeAll);
  process.on('message', (m: HolderStart | { type: 'close' }) => {
    if (m.type === 'close') closeAll();
    else if (m.type === 'start') {
      asked += m.count;
      if (asked > MAX_PER_PROCESS) throw new Error(`idle holder: ${asked} sessions exceed ${MAX_PER_PROCESS} per process`);
      void hold(m.opts, m.count, send).then((w) => {
        wires.push(...w);
      });
    }
  });
}
