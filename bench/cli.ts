/**
 * `npm run bench -- <mode> [options]`: the load generator. Prints progress once a second on
 * stderr, a summary at the end, and the result as JSON (stdout, or --out FILE).
 */
import { writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { Command, CommanderError } from 'commander';
import { runIdle } from './lib/idle.js';
import { DEFAULTS, MAX_PER_PROCESS, MODES, parseDuration, parseSize, parseUsers, type BenchOptions, type Mode } from './lib/options.js';
import type { BenchResult } from './lib/result.js';
import type { KeyType } from './lib/wire.js';
import { summarize } from './lib/result.js';
import { runLoad } from './lib/run.js';

const DEFAULT_PORTS: Record<Mode, number> = { login: 143, 'pop3-login': 110, lmtp: 24, throughput: 143, idle: 143, latency: 143 };

interface RawOpts {
  host: string;
  port?: string;
  tls?: boolean;
  starttls?: boolean;
  source: string;
  servername?: string;
  keyType?: string;
  clients?: string;
  threads: string;
  duration: string;
  warmup: string;
  maxOps: string;
  timeout: string;
  users: string;
  password: string;
  user?: string;
  size?: string;
  rcpts: string;
  perConn: string;
  append?: boolean;
  mailbox: string;
  expectSize?: string;
  sessions: string;
  perProcess: string;
  steps: string;
  samplers: string;
  sampleInterval: string;
  rampTimeout: string;
  pids?: string;
  auxPids?: string;
  quiet?: boolean;
  label?: string;
  out?: string;
}

function int(name: string, text: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`${name}: expected an integer from ${min} to ${max}, got ${JSON.stringify(text)}`);
  return n;
}

function pidList(name: string, text: string | undefined): number[] {
  return text === undefined || text === '' ? [] : text.split(',').map((p) => int(name, p.trim(), 1));
}

function keyType(text: string): KeyType {
  if (text !== 'ecdsa' && text !== 'rsa') throw new Error(`--key-type: ecdsa or rsa, got ${JSON.stringify(text)}`);
  return text;
}

export function optionsFrom(mode: Mode, r: RawOpts): BenchOptions {
  if (r.tls === true && r.starttls === true) throw new Error('--tls and --starttls exclude each other');
  const single = mode === 'latency';
  return {
    mode,
    host: r.host,
    port: int('--port', r.port ?? String(DEFAULT_PORTS[mode]), 1, 65535),
    tls: r.tls === true ? 'implicit' : r.starttls === true ? 'starttls' : 'none',
    ...(r.source !== '' ? { source: r.source } : {}),
    ...(r.servername !== undefined ? { servername: r.servername } : {}),
    ...(r.keyType !== undefined ? { keyType: keyType(r.keyType) } : {}),
    clients: single ? 1 : int('--clients', r.clients ?? (mode === 'throughput' ? '1' : String(DEFAULTS.clients)), 1, 20_000),
    threads: single ? 1 : int('--threads', r.threads, 1, 64),
    durationMs: parseDuration(r.duration),
    warmupMs: parseDuration(r.warmup),
    maxOps: int('--max-ops', r.maxOps, 1),
    timeoutMs: parseDuration(r.timeout),
    users: parseUsers(r.users),
    password: r.password,
    ...(r.user !== undefined ? { user: r.user } : {}),
    size: parseSize(r.size ?? (mode === 'throughput' ? '10M' : '4k')),
    rcpts: int('--rcpts', r.rcpts, 1, 100),
    perConn: int('--per-conn', r.perConn, 1),
    op: r.append === true ? 'append' : 'fetch',
    mailbox: r.mailbox,
    ...(r.expectSize !== undefined ? { expectSize: parseSize(r.expectSize) } : {}),
    sessions: int('--sessions', r.sessions, 1, 200_000),
    perProcess: int('--per-process', r.perProcess, 1, MAX_PER_PROCESS),
    steps: int('--steps', r.steps, 2, 20),
    samplers: int('--samplers', r.samplers, 0, 100),
    sampleIntervalMs: parseDuration(r.sampleInterval),
    rampTimeoutMs: parseDuration(r.rampTimeout),
    pids: pidList('--pids', r.pids),
    auxPids: pidList('--aux-pids', r.auxPids),
    progress: r.quiet !== true,
    ...(r.label !== undefined ? { label: r.label } : {}),
  };
}

export function runMode(o: BenchOptions): Promise<BenchResult> {
  return o.mode === 'idle' ? runIdle(o) : runLoad(o);
}

export async function main(argv: readonly string[]): Promise<number> {
  let code = 0;
  const d = DEFAULTS;
  const program = new Command('bench')
    .description('portier load generator: measure a mail proxy (or a backend directly)')
    .argument('<mode>', `one of ${MODES.join(', ')}`)
    .option('--host <addr>', 'target address', d.host)
    .option('--port <n>', 'target port (default 143, pop3-login 110, lmtp 24)')
    .option('--tls', 'implicit TLS (imaps, pop3s)')
    .option('--starttls', 'STARTTLS / STLS before logging in')
    .option('--servername <name>', 'TLS SNI name')
    .option('--key-type <type>', 'TLS: ask for the server\'s ecdsa or rsa certificate (by the signature algorithms offered)')
    .option('--source <addr>', 'local address to connect from ("" = kernel\'s choice)', d.source)
    .option('-c, --clients <n>', `concurrent clients (default ${d.clients}; throughput 1; latency always 1)`)
    .option('-t, --threads <n>', 'worker threads the clients are spread over', String(Math.max(1, Math.min(4, availableParallelism()))))
    .option('-d, --duration <time>', 'measured window (10s, 500ms, 2m)', '10s')
    .option('--warmup <time>', 'load before the measured window, not counted (all modes but idle)', '0s')
    .option('-n, --max-ops <n>', 'stop after this many operations', String(d.maxOps))
    .option('--timeout <time>', 'bound on one operation', '10s')
    .option('-u, --users <range>', 'user names: FORMAT:FROM-TO, %d is the number', 'user%d:1-10000')
    .option('-p, --password <pattern>', 'password, %d is the user\'s number', d.password)
    .option('--user <name>', 'the one user of throughput/latency/idle sessions (default: the first of --users)')
    .option('--size <bytes>', 'lmtp: DATA size (default 4k); throughput --append: message size (default 10M)')
    .option('--rcpts <n>', 'lmtp: recipients per transaction', String(d.rcpts))
    .option('--per-conn <n>', 'lmtp: transactions per connection', String(d.perConn))
    .option('--append', 'throughput: APPEND instead of FETCH')
    .option('--mailbox <name>', 'throughput: mailbox to SELECT / APPEND to', d.mailbox)
    .option('--expect-size <bytes>', 'throughput: the FETCHed message\'s size (default: the first one seen); any other is an error')
    .option('--sessions <n>', 'idle: sessions to hold', String(d.sessions))
    .option('--per-process <n>', `idle: sessions per holder process (at most ${MAX_PER_PROCESS})`, String(d.perProcess))
    .option('--steps <n>', 'idle: ramp steps, RSS sampled after each settles; KiB per session fitted over them', String(d.steps))
    .option('--samplers <n>', 'idle: sessions measuring NOOP latency meanwhile', String(d.samplers))
    .option('--sample-interval <time>', 'idle: pause between a sampler\'s NOOPs', '20ms')
    .option('--ramp-timeout <time>', 'bound on logging the sessions in before the clock starts', '180s')
    .option('--pids <list>', 'PIDs of the proxy under test (children included) for CPU/RSS accounting')
    .option('--aux-pids <list>', 'PIDs of a helper of the proxy (an auth server), accounted separately')
    .option('--label <text>', 'a name for this run in the output')
    .option('-o, --out <file>', 'write the JSON result here instead of stdout')
    .option('-q, --quiet', 'no progress lines')
    .exitOverride()
    .action(async (modeText: string, raw: RawOpts) => {
      if (!(MODES as readonly string[]).includes(modeText)) throw new Error(`unknown mode ${JSON.stringify(modeText)}; one of ${MODES.join(', ')}`);
      const o = optionsFrom(modeText as Mode, raw);
      const result = await runMode(o);
      process.stderr.write(`${summarize(result)}\n`);
      const json = `${JSON.stringify(result, null, 2)}\n`;
      if (raw.out !== undefined) writeFileSync(raw.out, json);
      else process.stdout.write(json);
      if (result.ops === 0) code = 2;
    });
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode;
    process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
  return code;
}

if (process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  void main(process.argv).then((c) => {
    process.exitCode = c;
  });
}
