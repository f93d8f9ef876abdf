/**
 * A load-generator worker thread: runs its share of the clients, each a loop of operations,
 * until the shared stop flag is set or the shared operation budget (--max-ops) is spent.
 * Messages to the main thread: ready (sessions set up), progress (each second), finished
 * (loops ended, final counters and histogram), done (sessions closed).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { setTimeout as sleep } from 'node:timers/promises';
import { Histogram } from './histogram.js';
import { COUNTING, STOP, TICKETS, type Counters, type WorkerInput, type WorkerMessage } from './messages.js';
import { endpoint, fixedUser, randomUser, type BenchOptions } from './options.js';
import {
  Guard, imapAppend, imapFetch, imapLoginCycle, imapLogout, imapNoop, imapOpen, imapSelect, lmtpDeliver, lmtpMessage,
  lmtpOpen, lmtpQuit, pop3LoginCycle, rfc822Message,
} from './protocols.js';
import { errorKind, type Wire } from './wire.js';

/** One client: optional session state, one operation, cleanup. */
interface Client {
  setup(): Promise<void>;
  /** One measured operation; returns its latency in ns if it measures a part of itself, and bytes moved. */
  op(guard: Guard): Promise<{ ns?: number; bytes?: number }>;
  teardown(): Promise<void>;
}

function makeClient(o: BenchOptions): Client {
  const ep = endpoint(o);
  switch (o.mode) {
    case 'login':
      return { setup: async () => {}, teardown: async () => {}, op: async (g) => {
        const { user, pass } = randomUser(o);
        return { ns: await imapLoginCycle(ep, user, pass, g) };
      } };
    case 'pop3-login':
      return { setup: async () => {}, teardown: async () => {}, op: async (g) => {
        const { user, pass } = randomUser(o);
        return { ns: await pop3LoginCycle(ep, user, pass, g) };
      } };
    case 'lmtp':
      return lmtpClient(o);
    case 'throughput':
    case 'latency':
    case 'idle':
      return sessionClient(o);
  }
}

function sessionClient(o: BenchOptions): Client {
  const ep = endpoint(o);
  const { user, pass } = fixedUser(o);
  const message = o.op === 'append' && o.mode === 'throughput' ? rfc822Message(o.size) : undefined;
  let w: Wire | undefined;
  let expect = o.expectSize;
  const open = async (): Promise<Wire> => {
    const guard = new Guard(o.timeoutMs);
    guard.start();
    try {
      const x = await guard.run(() => imapOpen(ep, user, pass, (y) => guard.watch(y)));
      if (o.mode === 'throughput') await imapSelect(x, o.mailbox);
      return x;
    } finally {
      guard.stop();
    }
  };
  return {
    async setup() {
      w = await open();
    },
    async op(g) {
      w ??= await open();
      const wire = w;
      g.watch(wire);
      try {
        if (o.mode !== 'throughput') {
          await imapNoop(wire);
          return {};
        }
        if (message !== undefined) return { bytes: await imapAppend(wire, o.mailbox, message) };
        const n = await imapFetch(wire, 1, expect);
        expect ??= n;
        return { bytes: n };
      } catch (err) {
        wire.destroy();
        w = undefined;
        throw err;
      }
    },
    async teardown() {
      if (w === undefined) return;
      const x = w;
      w = undefined;
      const guard = new Guard(2000);
      guard.start();
      guard.watch(x);
      await imapLogout(x).catch(() => undefined);
      guard.stop();
      x.destroy();
    },
  };
}

function lmtpClient(o: BenchOptions): Client {
  const ep = endpoint(o);
  const data = lmtpMessage(o.size);
  let w: Wire | undefined;
  let sent = 0;
  return {
    setup: async () => {},
    async op(g) {
      if (w === undefined) {
        w = await g.run(() => lmtpOpen(ep, (x) => g.watch(x)));
        sent = 0;
      } else g.watch(w);
      const wire = w;
      const rcpts: string[] = [];
      for (let i = 0; i < o.rcpts; i++) rcpts.push(randomUser(o).user);
      const t0 = process.hrtime.bigint();
      try {
        await lmtpDeliver(wire, rcpts, data);
      } catch (err) {
        wire.destroy();
        w = undefined;
        throw err;
      }
      const ns = Number(process.hrtime.bigint() - t0);
      if (++sent >= o.perConn) {
        w = undefined;
        await lmtpQuit(wire).finally(() => wire.destroy());
      }
      return { ns, bytes: data.length * rcpts.length };
    },
    async teardown() {
      const x = w;
      w = undefined;
      if (x === undefined) return;
      const guard = new Guard(2000);
      guard.start();
      guard.watch(x);
      await lmtpQuit(x).catch(() => undefined);
      guard.stop();
      x.destroy();
    },
  };
}

async function main(): Promise<void> {
  const input = workerData as WorkerInput;
  const port = parentPort;
  if (port === null) throw new Error('bench worker: not a worker thread');
  const o = input.opts;
  const flags = new Int32Array(input.shared);
  const hist = new Histogram();
  const c: Counters = { ops: 0, bytes: 0, errors: {} };
  const samples: Record<string, string> = {};
  const fail = (err: unknown): void => {
    const kind = errorKind(err);
    c.errors[kind] = (c.errors[kind] ?? 0) + 1;
    samples[kind] ??= err instanceof Error ? err.message.slice(0, 300) : String(err);
  };
  const clients = Array.from({ length: input.clients }, () => makeClient(o));

  // Sessions log in before the clock starts; a failed setup is retried inside the loop.
  await Promise.all(clients.map((cl) => cl.setup().catch(fail)));
  const started = new Promise<void>((resolve) => port.once('message', () => resolve()));
  port.postMessage({ type: 'ready', ...c } satisfies WorkerMessage);
  await started;
  const setupErrors = { ...c.errors };
  c.errors = {};
  // 'reset' ends the warm-up: what was counted so far is dropped.
  port.on('message', (m: unknown) => {
    if (m !== 'reset') return;
    c.ops = 0;
    c.bytes = 0;
    c.errors = {};
    hist.reset();
    for (const k of Object.keys(samples)) delete samples[k];
  });

  const progress = setInterval(() => port.postMessage({ type: 'progress', ...c } satisfies WorkerMessage), 1000);
  const loop = async (cl: Client): Promise<void> => {
    const guard = new Guard(o.timeoutMs);
    while (Atomics.load(flags, STOP) === 0 && (Atomics.load(flags, COUNTING) === 0 || Atomics.add(flags, TICKETS, 1) < o.maxOps)) {
      guard.start();
      const t0 = process.hrtime.bigint();
      try {
        const r = await cl.op(guard);
        if (Atomics.load(flags, STOP) !== 0) break; // finished after the window closed: not counted
        hist.record(r.ns ?? Number(process.hrtime.bigint() - t0));
        c.ops++;
        c.bytes += r.bytes ?? 0;
      } catch (err) {
        if (Atomics.load(flags, STOP) !== 0) break;
        fail(err);
        await sleep(20); // a refusing target must not turn the loop into a spin
      } finally {
        guard.stop();
      }
    }
  };
  await Promise.all(clients.map(loop));
  clearInterval(progress);
  for (const [k, v] of Object.entries(setupErrors)) c.errors[`setup-${k}`] = v;
  port.postMessage({ type: 'finished', ...c, counts: Array.from(hist.counts), sum: hist.sum, max: hist.max, samples } satisfies WorkerMessage);
  await Promise.all(clients.map((cl) => cl.teardown().catch(() => undefined)));
  port.postMessage({ type: 'done' } satisfies WorkerMessage);
}

void main().catch((err: unknown) => {
  process.stderr.write(`bench worker failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});
