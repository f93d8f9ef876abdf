/**
 * `npm run bench:compare [-- --quick]`: starts, on loopback, a real Dovecot backend (10,000
 * users, seeded maildirs), the instant backend, and in front of them portier, Dovecot 2.3 as a
 * proxy and nginx's mail proxy; runs every scenario against each (and direct), interleaved,
 * for --rounds rounds; writes bench/results/<date>.{json,md,svg} and prints the ratios.
 * With --with-floor also bench/floor-proxy.ts (the Node floor) where it means something.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, hostname, release, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { imapLogout, imapOpen, imapSelect } from './lib/protocols.js';
import { hostProbe, hostSpeed, hostSpeedLine } from './lib/host-probe.js';
import type { BenchResult } from './lib/result.js';
import { endpointFor, scenarios, type Scenario, type Target } from './compare/plan.js';
import { countBackendSockets, readyForIdle, type BackendSockets } from './compare/backend-sockets.js';
import { assertFree, killAllSync, runCommand, startManaged, stopAll, waitReady, type Managed } from './compare/procs.js';
import { markdown, summarize, svg, type RunRecord, type ScenarioSummary } from './compare/report.js';
import { ADDR, dovecotBackendConf, dovecotProxyConf, nginxConf, PASSWORD, PORTS, portierConf, prepareFiles, writeConf, type Files } from './compare/setup.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..', '..');
const NODE = process.execPath;

interface Opts {
  quick: boolean;
  rounds: number;
  duration: string;
  clients: number;
  only?: string[];
  workers: string;
  outDir: string;
  workDir: string;
  keep: boolean;
  /** Re-run the --only scenarios into this earlier result (JSON), replacing their runs. */
  mergeInto?: string;
  /** Only re-render an earlier result's table and chart (no peers started). */
  render?: string;
  messageSize: number;
  /** Also run the Node floor (bench/floor-proxy.ts) in the scenarios it means something in. */
  withFloor: boolean;
}

type PeerName = 'backend' | 'instant' | 'portier' | 'dovecot' | 'nginx' | 'auth' | 'floor';

class Peers {
  readonly #f: Files;
  readonly #o: Opts;
  /** Whether this build of portier proxies LMTP (found out at its first start). */
  lmtp: boolean;
  readonly #m = new Map<PeerName, Managed>();

  constructor(f: Files, o: Opts) {
    this.#f = f;
    this.#o = o;
    this.lmtp = existsSync(join(ROOT, 'dist', 'lmtp'));
  }

  #dir(name: string): string {
    const d = join(this.#f.dir, name);
    mkdirSync(d, { recursive: true });
    return d;
  }

  async start(name: PeerName): Promise<void> {
    const f = this.#f;
    const at: Record<PeerName, [string, number]> = {
      backend: [ADDR.dovecotBackend, PORTS.imap], instant: [ADDR.instant, PORTS.imap], portier: [ADDR.portier, PORTS.imap],
      dovecot: [ADDR.dovecotProxy, PORTS.imap], nginx: [ADDR.nginx, PORTS.imap], auth: [ADDR.authHttp, PORTS.authHttp], floor: [ADDR.floor, PORTS.imap],
    };
    await assertFree(name, ...at[name]);
    let m: Managed;
    if (name === 'backend' || name === 'dovecot') {
      const d = this.#dir(name === 'backend' ? 'dovecot-backend' : 'dovecot-proxy');
      const conf = writeConf(join(d, 'dovecot.conf'), name === 'backend' ? dovecotBackendConf(d, f) : dovecotProxyConf(d, f));
      m = startManaged(name, 'dovecot', ['-F', '-c', conf], join(d, 'stdout.log'));
      await waitReady(m, name === 'backend' ? ADDR.dovecotBackend : ADDR.dovecotProxy, PORTS.imap);
      await waitReady(m, name === 'backend' ? ADDR.dovecotBackend : ADDR.dovecotProxy, PORTS.lmtp);
      if (name === 'backend') await indexLargeMessage();
    } else if (name === 'instant') {
      m = startManaged('instant', NODE, [join(HERE, 'instant-backend.js'), '--host', ADDR.instant, '--imap', String(PORTS.imap), '--imaps', String(PORTS.imaps),
        '--pop3', String(PORTS.pop3), '--pop3s', String(PORTS.pop3s), '--lmtp', String(PORTS.lmtp), '--cert', f.ecdsa.cert, '--key', f.ecdsa.key,
        '--cert', f.rsa.cert, '--key', f.rsa.key, '--message-size', String(f.messageSize)], join(this.#dir('instant'), 'stdout.log'));
      await waitReady(m, ADDR.instant, PORTS.imap);
    } else if (name === 'auth') {
      m = startManaged('auth-http', NODE, [join(HERE, 'compare', 'auth-http.js')], join(this.#dir('nginx'), 'auth-http.log'));
      await new Promise((r) => setTimeout(r, 400));
    } else if (name === 'nginx') {
      const d = this.#dir('nginx');
      const conf = writeConf(join(d, 'nginx.conf'), nginxConf(d, f));
      m = startManaged('nginx', 'nginx', ['-p', d, '-c', conf, '-e', join(d, 'error.log')], join(d, 'stdout.log'));
      await waitReady(m, ADDR.nginx, PORTS.imap);
    } else if (name === 'floor') {
      // As many workers as portier runs (its `workers: auto` is one per core).
      const workers = this.#o.workers === 'auto' ? availableParallelism() : Number(this.#o.workers);
      m = startManaged('floor', NODE, [join(HERE, 'floor-proxy.js'), '--host', ADDR.floor, '--workers', String(workers), '--cert', f.ecdsa.cert, '--key', f.ecdsa.key,
        '--cert', f.rsa.cert, '--key', f.rsa.key], join(this.#dir('floor'), 'floor.log'));
      await waitReady(m, ADDR.floor, PORTS.imap);
      await new Promise((r) => setTimeout(r, 500)); // every worker listening, not just the first
    } else {
      const d = this.#dir('portier');
      const workers = this.#o.workers === 'auto' ? 'auto' : Number(this.#o.workers);
      const conf = writeConf(join(d, 'portier.yaml'), portierConf(f, workers, this.lmtp));
      m = startManaged('portier', NODE, [join(ROOT, 'bin', 'portier.js'), 'serve', '-c', conf], join(d, 'portier.log'));
      try {
        await waitReady(m, ADDR.portier, PORTS.imap);
      } catch (err) {
        if (!this.lmtp || !/lmtp.*not available/i.test(String(err))) throw err;
        this.lmtp = false;
        return this.start(name);
      }
      await new Promise((r) => setTimeout(r, 500)); // every worker listening, not just the first
    }
    this.#m.set(name, m);
  }

  async restart(name: PeerName): Promise<void> {
    await this.#m.get(name)?.stop();
    this.#m.delete(name);
    await new Promise((r) => setTimeout(r, 300));
    await this.start(name);
  }

  pid(name: PeerName): number {
    const m = this.#m.get(name);
    if (m === undefined) throw new Error(`${name} is not running`);
    return m.pid;
  }

  /** The process tree accounted for a target (nginx: its master; its auth_http server separately). */
  pidsFor(s: Scenario, t: Target): { pids: number[]; aux: number[] } {
    if (t === 'direct') return { pids: [this.pid(s.backend === 'dovecot' ? 'backend' : 'instant')], aux: [] };
    if (t === 'nginx') return { pids: [this.pid('nginx')], aux: [this.pid('auth')] };
    return { pids: [this.pid(t)], aux: [] };
  }

  stopAll(): Promise<void> {
    return stopAll();
  }
}

/** SELECT user1's INBOX once, so the seeded large message is indexed as message 1 before any delivery. */
async function indexLargeMessage(): Promise<void> {
  const w = await imapOpen({ host: ADDR.dovecotBackend, port: PORTS.imap, tls: 'none', source: ADDR.client }, 'user1', 'pass1');
  try {
    await imapSelect(w, 'INBOX');
    await imapLogout(w);
  } finally {
    w.destroy();
  }
}

/**
 * Before an idle run of `sessions`: wait (at most 75 s) until enough local ports are free
 * towards the backends and the backends have closed the previous run's sessions. Every proxy
 * here reaches a backend from 127.0.0.1, the ephemeral range holds ~28,000 ports per
 * destination, and connections a proxy closed stay in TIME-WAIT for 60 s: 10,000 sessions
 * just closed plus 10,000 new ones would otherwise fail with EADDRNOTAVAIL for whichever
 * proxy comes next. Closing 10,000 sessions also takes the backends several seconds
 * (4,500-7,000 sockets were still open when the next run would have started), and the next
 * run should not start against a backend still busy closing the last one's.
 */
async function waitForBackends(sessions: number, log: (line: string) => void): Promise<void> {
  const [low, high] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
  const range = (high ?? 60999) - (low ?? 32768) + 1;
  const backends = [ADDR.dovecotBackend, ADDR.instant];
  const read = (): BackendSockets => countBackendSockets(readFileSync('/proc/net/tcp', 'utf8'), backends);
  const deadline = Date.now() + 75_000;
  let n = read();
  if (readyForIdle(n, sessions, range)) return;
  log(`  waiting before ${sessions} idle sessions: ${n.timeWait} connections to the backends in TIME-WAIT, ${n.toBackends} still open, ${n.atBackends} held by the backends`);
  while (!readyForIdle(n, sessions, range) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 2000));
    n = read();
  }
  if (!readyForIdle(n, sessions, range)) log(`  starting anyway after 75 s: ${n.timeWait} in TIME-WAIT, ${n.toBackends} open, ${n.atBackends} held by the backends`);
}

const PEER_OF: Record<Exclude<Target, 'direct'>, PeerName> = { portier: 'portier', dovecot: 'dovecot', nginx: 'nginx', floor: 'floor' };

async function runOne(s: Scenario, t: Target, round: number, peers: Peers, o: Opts): Promise<RunRecord> {
  const ep = endpointFor(s, t);
  const { pids, aux } = peers.pidsFor(s, t);
  const out = join(o.workDir, 'runs', `${s.id}.${t}.${round}.json`);
  mkdirSync(dirname(out), { recursive: true });
  const args = [join(HERE, 'cli.js'), s.mode, '--host', ep.host, '--port', String(ep.port), '--users', ep.users, '--password', PASSWORD, '--user', ep.user,
    '-d', s.mode === 'idle' ? (o.quick ? '3s' : '5s') : o.duration, '--warmup', s.mode === 'idle' ? '0s' : o.quick ? '1s' : '2s', '--timeout', '10s', '--pids', pids.join(','), '--label', t, '-q', '-o', out, ...s.args];
  if (aux.length > 0) args.push('--aux-pids', aux.join(','));
  if (s.tls === 'implicit') args.push('--tls');
  if (s.keyType !== undefined) args.push('--key-type', s.keyType);
  if (s.mode === 'throughput') args.push('--expect-size', String(o.messageSize));
  const r = await runCommand(NODE, args, 300_000);
  if (!existsSync(out)) return { round, scenario: s.id, target: t, error: r.out.slice(-500) || `exit ${r.code}` };
  const result = JSON.parse(readFileSync(out, 'utf8')) as BenchResult;
  rmSync(out);
  return { round, scenario: s.id, target: t, result, ...(r.code !== 0 ? { error: r.out.slice(-300) } : {}) };
}

function oneLine(rec: RunRecord, s: Scenario): string {
  const r = rec.result;
  if (r === undefined) return `FAILED: ${(rec.error ?? '').split('\n').filter(Boolean).slice(-2).join(' | ')}`;
  const parts = [`${r.ops} ops`, `${r.rate}/s`];
  if (r.bytes > 0) parts.push(`${r.mbPerS} MB/s`);
  parts.push(`p50 ${r.latencyUs.p50} µs`, `p99 ${r.latencyUs.p99} µs`);
  if (r.accounting !== undefined && s.mode !== 'idle') {
    parts.push(`${(r.accounting.cpuSecondsPer1000Ops * 1000).toFixed(0)} µs CPU/op (${r.ops > 0 ? ((r.accounting.systemSeconds / r.ops) * 1e6).toFixed(0) : 0} in the kernel)`);
  }
  if (r.auxAccounting !== undefined) parts.push(`+${(r.auxAccounting.cpuSecondsPer1000Ops * 1000).toFixed(0)} µs auth_http`);
  const fit = r.accounting?.rssFit;
  if (r.accounting?.rssPerSessionKiB !== undefined) parts.push(`${r.accounting.rssPerSessionKiB} KiB/session${fit !== undefined ? ` (spread ${fit.spreadKiB}, segments ${fit.segmentsKiB.join(' ')}, fixed ${fit.fixedKiB} KiB${fit.noisy ? ', noisy' : ''})` : ''}`);
  else if (r.accounting?.rssPerSessionMethod === 'noise') parts.push('memory below GC noise');
  const files = r.idle?.files?.slice(0, 4);
  if (files !== undefined && files.length > 0) parts.push(`files ${files.map((f) => `${f.comm} ${f.files}${f.limit !== undefined ? `/${f.limit}` : ''}`).join(' ')}`);
  if ((r.idle?.listenOverflows ?? 0) > 0) parts.push(`accept queues overflowed ${r.idle?.listenOverflows ?? 0}×`);
  if (r.errorCount > 0) parts.push(`errors ${JSON.stringify(r.errors)}`);
  return parts.join(', ');
}

/** The options after `npm run bench:compare` that a result's header tells the reader to use. */
/** How a run was made, as far as the Reproduce line needs it. */
interface RunShape {
  quick: boolean;
  floor: boolean;
  rounds: number;
  duration: string;
  clients: number;
  workers: string;
  /** The scenarios run, when fewer than the profile's whole plan (`--only`). */
  only?: readonly string[] | undefined;
}

/** The options that reproduce a run: every one that differs from its default. */
function reproduceArgs(r: RunShape): string {
  const args = [
    ...(r.quick ? ['--quick'] : []),
    ...(r.only !== undefined ? ['--only', r.only.join(',')] : []),
    ...(r.rounds !== 2 ? ['--rounds', String(r.rounds)] : []),
    ...(r.duration !== (r.quick ? '2s' : '8s') ? ['--duration', r.duration] : []),
    ...(r.clients !== 128 ? ['--clients', String(r.clients)] : []),
    ...(r.workers !== 'auto' ? ['--workers', r.workers] : []),
    ...(r.floor ? ['--with-floor'] : []),
  ];
  return args.length > 0 ? ` -- ${args.join(' ')}` : '';
}

/** The host probes of a run's records (bench/lib/host-probe.ts). */
function hostSpeedOf(runs: readonly RunRecord[]): { cpu: ReturnType<typeof hostSpeed>; mem: ReturnType<typeof hostSpeed> } {
  return {
    cpu: hostSpeed(runs.flatMap((r) => (r.hostProbeMs !== undefined ? [r.hostProbeMs] : []))),
    mem: hostSpeed(runs.flatMap((r) => (r.hostProbeMemNs !== undefined ? [r.hostProbeMemNs] : []))),
  };
}

/** The Markdown report's head: title, what was run on what, how to reproduce it, the host's steadiness. */
function reportHeader(date: string, subtitle: string, shape: RunShape, hostLine: string | undefined): string {
  const head = `# portier bench:compare, ${date}\n\n${subtitle}.\n\nReproduce: \`npm run bench:compare${reproduceArgs(shape)}\` (as root: it installs Dovecot and nginx's mail module if missing).`;
  return hostLine !== undefined ? `${head}\n\n${hostLine}` : head;
}

/** Summaries, table and chart again from an earlier run's records (with this version's titles). */
function render(file: string): number {
  const r = JSON.parse(readFileSync(file, 'utf8')) as { runs: RunRecord[]; summaries: ScenarioSummary[]; profile: string; rounds: number; duration: string; clients: number; startedAt: string;
    portierWorkers?: string; machine: { cores: number; cpu: string; memoryGiB: number }; versions: Record<string, string> };
  const ids = new Set(r.summaries.map((s) => s.id));
  const notes = new Map(r.summaries.flatMap((s) => (s.note !== undefined ? [[s.id, s.note] as const] : [])));
  const floor = r.runs.some((x) => x.target === 'floor');
  const plan = scenarios({ clients: r.clients, lmtpSize: '4k', idleSmall: 2000, idleLarge: 10_000, floor }).filter((s) => ids.has(s.id));
  const sums = plan.map((s) => summarize(s, r.runs, notes.get(s.id)));
  const date = r.startedAt.slice(0, 10);
  const v = r.versions;
  const subtitle = `${date}, ${r.profile} profile, median of ${r.rounds} interleaved rounds, ${r.duration} windows; ${r.machine.cores} cores (${r.machine.cpu}), ${r.machine.memoryGiB} GiB; ` +
    `portier ${v['portier']}, Dovecot ${v['dovecot']}, nginx ${v['nginx']}, Node ${v['node']}`;
  const base = file.replace(/\.json$/, '');
  writeFileSync(file, `${JSON.stringify({ ...r, summaries: sums }, null, 1)}\n`);
  const host = hostSpeedOf(r.runs);
  const quick = r.profile === 'quick';
  const whole = scenarios({ clients: r.clients, lmtpSize: '4k', idleSmall: 2000, idleLarge: 10_000, floor }).filter((s) => (quick ? s.full !== true : true));
  const shape: RunShape = {
    quick, floor, rounds: r.rounds, duration: r.duration, clients: r.clients, workers: r.portierWorkers ?? 'auto',
    ...(plan.length < whole.length ? { only: plan.map((s) => s.id) } : {}),
  };
  const md = markdown(sums, reportHeader(date, subtitle, shape, hostSpeedLine(host.cpu, host.mem)));
  writeFileSync(`${base}.md`, md);
  writeFileSync(`${base}.svg`, svg(sums, subtitle));
  process.stdout.write(md);
  return 0;
}

function versions(): Record<string, string> {
  const first = (cmd: string, args: string[]): string => {
    const r = spawnSync(cmd, args, { encoding: 'utf8' });
    return `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n')[0] ?? 'unknown';
  };
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  return {
    portier: `${pkg.version} (${first('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'])})`,
    node: process.version,
    dovecot: first('dovecot', ['--version']),
    nginx: first('nginx', ['-v']).replace('nginx version: ', ''),
    openssl: first('openssl', ['version']),
  };
}

function parseOpts(argv: string[]): Opts {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      rounds: { type: 'string', default: '2' },
      duration: { type: 'string' },
      clients: { type: 'string', default: '128' },
      only: { type: 'string' },
      workers: { type: 'string', default: 'auto' },
      'out-dir': { type: 'string', default: join(ROOT, 'bench', 'results') },
      keep: { type: 'boolean', default: false },
      'merge-into': { type: 'string' },
      render: { type: 'string' },
      'with-floor': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help === true) {
    process.stdout.write('npm run bench:compare -- [--quick] [--rounds 2] [--duration 8s] [--clients 128] [--only id,id] [--workers auto] [--with-floor] [--out-dir DIR] [--keep]\n');
    process.exit(0);
  }
  const quick = values.quick === true;
  const stamp = new Date().toISOString().replace(/[:]/g, '').replace(/\..*$/, '');
  const outDir = values['out-dir'] ?? join(ROOT, 'bench', 'results');
  return {
    quick,
    rounds: Math.max(1, Math.min(10, Number(values.rounds))),
    duration: values.duration ?? (quick ? '2s' : '8s'),
    clients: Number(values.clients),
    ...(values.only !== undefined ? { only: values.only.split(',') } : {}),
    workers: values.workers ?? 'auto',
    outDir,
    workDir: join(outDir, 'tmp', stamp),
    keep: values.keep === true,
    ...(values['merge-into'] !== undefined ? { mergeInto: values['merge-into'] } : {}),
    ...(values.render !== undefined ? { render: values.render } : {}),
    messageSize: 10 * 1024 * 1024,
    withFloor: values['with-floor'] === true,
  };
}

async function main(): Promise<number> {
  const o = parseOpts(process.argv.slice(2));
  if (o.render !== undefined) return render(o.render);
  const started = new Date();
  const plan = scenarios({ clients: o.clients, lmtpSize: '4k', idleSmall: 2000, idleLarge: 10_000, floor: o.withFloor })
    .filter((s) => (o.quick ? s.full !== true : true))
    .filter((s) => o.only === undefined || o.only.includes(s.id));
  const log = (line: string): void => {
    process.stderr.write(`${line}\n`);
  };
  log(`bench:compare: ${plan.length} scenarios × ${o.rounds} rounds, ${o.duration} windows (${o.quick ? 'quick' : 'full'} profile); work dir ${o.workDir}`);
  const files = await prepareFiles(o.workDir, o.messageSize);
  const peers = new Peers(files, o);
  const onSignal = (): void => {
    killAllSync();
    process.exit(130);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('exit', killAllSync);
  const runs: RunRecord[] = [];
  try {
    for (const p of ['backend', 'instant', 'auth', 'nginx', 'dovecot', 'portier', ...(o.withFloor ? ['floor'] : [])] as PeerName[]) {
      await peers.start(p);
      log(`  started ${p} (pid ${peers.pid(p)})`);
    }
    const notes = new Map<string, string>();
    const work = plan.flatMap((s) => s.targets.filter((t) => !(t === 'portier' && s.mode === 'lmtp' && !peers.lmtp)).map((t) => ({ s, t })));
    if (!peers.lmtp) notes.set('lmtp', 'portier has no LMTP proxy in this build (no dist/lmtp): not measured');
    const total = work.length * o.rounds;
    let n = 0;
    const t0 = Date.now();
    for (let round = 1; round <= o.rounds; round++) {
      for (const s of plan) {
        // Interleaved: every target once per scenario per round, the order turned each round.
        const targets = work.filter((w) => w.s === s).map((w) => w.t);
        if (round % 2 === 0) targets.reverse();
        for (const t of targets) {
          n++;
          if (s.mode === 'idle') await waitForBackends(Number(s.args[s.args.indexOf('--sessions') + 1] ?? 0), log);
          if (s.fresh === true && t !== 'direct') {
            // A fresh process, warmed by a short login burst (so its heap and JIT are in their
            // working state), then RSS per session is the memory each added session costs.
            await peers.restart(PEER_OF[t]);
            await runOne({ ...s, id: `${s.id}-warmup`, mode: 'login', args: ['-c', '32'] }, t, round, peers, { ...o, duration: '1s' });
          }
          const probe = hostProbe();
          const rec = { ...(await runOne(s, t, round, peers, o)), hostProbeMs: probe.cpuMs, hostProbeMemNs: probe.memNs };
          runs.push(rec);
          const eta = Math.round((((Date.now() - t0) / n) * (total - n)) / 1000);
          log(`[${n}/${total}, ~${eta} s left] round ${round} ${s.id} ${t}: ${oneLine(rec, s)}`);
        }
      }
    }
    // --merge-into: the earlier run's records of other scenarios are kept, these replace theirs.
    const earlier = o.mergeInto !== undefined ? (JSON.parse(readFileSync(o.mergeInto, 'utf8')) as { runs: RunRecord[]; profile: string; summaries: ScenarioSummary[] }) : undefined;
    if (earlier !== undefined) {
      const ids = new Set(plan.map((s) => s.id));
      runs.unshift(...earlier.runs.filter((r) => !ids.has(r.scenario)));
      const all = scenarios({ clients: o.clients, lmtpSize: '4k', idleSmall: 2000, idleLarge: 10_000, floor: o.withFloor });
      const order = earlier.summaries.map((x) => x.id);
      plan.splice(0, plan.length, ...all.filter((s) => order.includes(s.id) || ids.has(s.id)));
      for (const x of earlier.summaries) if (x.note !== undefined && !notes.has(x.id)) notes.set(x.id, x.note);
    }
    const sums: ScenarioSummary[] = plan.map((s) => summarize(s, runs, notes.get(s.id)));
    const host = hostSpeedOf(runs);
    const machine = { hostname: hostname(), cores: availableParallelism(), cpu: cpus()[0]?.model ?? 'unknown', memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10, kernel: release() };
    const vers = versions();
    const date = started.toISOString().slice(0, 10);
    const base = o.mergeInto !== undefined ? o.mergeInto.replace(/\.json$/, '') : join(o.outDir, `${date}${o.quick ? '-quick' : ''}`);
    const subtitle = `${date}, ${o.quick ? 'quick' : 'full'} profile, median of ${o.rounds} interleaved rounds, ${o.duration} windows; ${machine.cores} cores (${machine.cpu}), ${machine.memoryGiB} GiB; ` +
      `portier ${vers['portier']}, Dovecot ${vers['dovecot']}, nginx ${vers['nginx']}, Node ${vers['node']}`;
    mkdirSync(o.outDir, { recursive: true });
    writeFileSync(`${base}.json`, `${JSON.stringify({ tool: 'portier-bench-compare', schema: 1, startedAt: started.toISOString(), profile: o.quick ? 'quick' : 'full', rounds: o.rounds, duration: o.duration, clients: o.clients, portierWorkers: o.workers, machine, ...(host.cpu !== undefined ? { hostSpeed: host } : {}), versions: vers, summaries: sums, runs }, null, 1)}\n`);
    const shape: RunShape = { quick: o.quick, floor: o.withFloor, rounds: o.rounds, duration: o.duration, clients: o.clients, workers: o.workers,
      // A merged result stands for the whole earlier run, not for the scenarios re-run into it.
      only: o.mergeInto === undefined ? o.only : undefined };
    const md = markdown(sums, reportHeader(date, subtitle, shape, hostSpeedLine(host.cpu, host.mem)));
    writeFileSync(`${base}.md`, md);
    writeFileSync(`${base}.svg`, svg(sums, subtitle));
    process.stdout.write(`\n${md}\nwritten: ${base}.json, ${base}.md, ${base}.svg\n`);
    return runs.some((r) => r.result === undefined) ? 1 : 0;
  } finally {
    await peers.stopAll();
    if (!o.keep) rmSync(o.workDir, { recursive: true, force: true });
  }
}

void main().then((code) => {
  process.exitCode = code;
}, (err: unknown) => {
  process.stderr.write(`bench:compare: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  killAllSync();
  process.exitCode = 1;
});
