/**
 * Where CPU-heavy password work runs. SHA/MD5-crypt, bcrypt (bcryptjs, pure JS) and PBKDF2 go
 * to a lazily created piscina pool; argon2 (already on the libuv threadpool) passes a concurrency
 * gate so it cannot saturate that threadpool, which would also stall fs and dns.lookup. Both are bounded:
 * overflow rejects with PortierError PASSDB_TEMPFAIL, an infrastructure failure, not a mismatch.
 */
import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';
import { errorText, PortierError } from '../../errors.js';
import type { HashTask } from './crypt-worker.js';

export interface HashPoolOptions {
  /** Worker threads for crypt/PBKDF2; default max(1, cores − 1). */
  readonly maxThreads?: number;
  /** Tasks waiting for a thread (and, separately, for a native slot) before new ones are refused. */
  readonly maxQueue?: number;
  /** Parallel argon2 operations; default libuv threadpool size − 1 (at least 1). */
  readonly nativeConcurrency?: number;
}

export const DEFAULT_HASH_QUEUE = 1024;

interface Settings {
  readonly maxThreads: number;
  readonly maxQueue: number;
  readonly nativeConcurrency: number;
}

let settings: Settings = defaults();
let pool: Piscina<HashTask, unknown> | undefined;
/** Work items started, by kind (for tests and metrics: e.g. that an unknown user costs one verify). */
const started = { pool: 0, native: 0 };

/** How many hash jobs were started since the process began: worker pool tasks and argon2 calls. */
export function hashWorkStarted(): { readonly pool: number; readonly native: number } {
  return { ...started };
}

function defaults(): Settings {
  const uvThreads = Number(process.env['UV_THREADPOOL_SIZE']) || 4;
  return {
    maxThreads: Math.max(1, availableParallelism() - 1),
    maxQueue: DEFAULT_HASH_QUEUE,
    nativeConcurrency: Math.max(1, uvThreads - 1),
  };
}

/**
 * Compiled build: the sibling crypt-worker.js. Source tree (vitest imports src/*.ts directly and
 * worker threads cannot load .ts): a .mjs shim that installs a transpiling loader first.
 */
function workerFile(): string {
  const fromSource = import.meta.url.endsWith('.ts');
  return new URL(fromSource ? './crypt-worker.dev.mjs' : './crypt-worker.js', import.meta.url).href;
}

/** Change pool limits; a running pool finishes its queued work and is replaced on next use. */
export function configureHashPool(options: HashPoolOptions): void {
  for (const [key, value] of Object.entries(options)) {
    if (value !== undefined && (!Number.isInteger(value) || (value as number) < 1)) {
      throw new RangeError(`configureHashPool: ${key} must be a positive integer`);
    }
  }
  settings = {
    maxThreads: options.maxThreads ?? settings.maxThreads,
    maxQueue: options.maxQueue ?? settings.maxQueue,
    nativeConcurrency: options.nativeConcurrency ?? settings.nativeConcurrency,
  };
  native.resize(settings.nativeConcurrency, settings.maxQueue);
  const old = pool;
  pool = undefined;
  old?.close().catch(() => undefined);
}

/** Stop the worker threads (tests, shutdown). The next hash starts a fresh pool. */
export async function closeHashPool(): Promise<void> {
  const old = pool;
  pool = undefined;
  await old?.destroy();
}

function getPool(): Piscina<HashTask, unknown> {
  pool ??= new Piscina<HashTask, unknown>({
    filename: workerFile(),
    maxThreads: settings.maxThreads,
    minThreads: Math.min(1, settings.maxThreads),
    maxQueue: settings.maxQueue,
    idleTimeout: 30_000,
  });
  return pool;
}

async function run(task: HashTask, signal: AbortSignal | undefined): Promise<unknown> {
  started.pool++;
  try {
    return await getPool().run(task, signal === undefined ? {} : { signal });
  } catch (err) {
    if (signal?.aborted === true) throw err;
    throw new PortierError('PASSDB_TEMPFAIL', `password hash pool: ${errorText(err)}`, { cause: err });
  }
}

/** SHA-crypt in a worker: the full crypt string, or null for an invalid setting. */
export async function shaCryptInPool(password: Uint8Array, setting: string, signal?: AbortSignal): Promise<string | null> {
  const out = await run({ op: 'sha-crypt', password, setting }, signal);
  if (out === null || typeof out === 'string') return out;
  throw new PortierError('INTERNAL', 'hash worker returned a non-string for sha-crypt');
}

/** bcrypt in a worker: the full hash for `setting` (`$2y$NN$salt`), or null when bcryptjs cannot read it. */
export async function bcryptInPool(password: Uint8Array, setting: string, signal?: AbortSignal): Promise<string | null> {
  const out = await run({ op: 'bcrypt', password, setting }, signal);
  if (out === null || typeof out === 'string') return out;
  throw new PortierError('INTERNAL', 'hash worker returned a non-string for bcrypt');
}

export async function md5CryptInPool(password: Uint8Array, salt: string, signal?: AbortSignal): Promise<string> {
  const out = await run({ op: 'md5-crypt', password, salt }, signal);
  if (typeof out === 'string') return out;
  throw new PortierError('INTERNAL', 'hash worker returned a non-string for md5-crypt');
}

export async function pbkdf2InPool(
  task: Omit<Extract<HashTask, { op: 'pbkdf2' }>, 'op'>,
  signal?: AbortSignal,
): Promise<Buffer> {
  const out = await run({ op: 'pbkdf2', ...task }, signal);
  if (out instanceof Uint8Array) return Buffer.from(out.buffer, out.byteOffset, out.byteLength);
  throw new PortierError('INTERNAL', 'hash worker returned a non-buffer for pbkdf2');
}

/** A counting gate with a bounded wait list; a released slot is handed straight to the next waiter. */
class Gate {
  #max: number;
  #maxWaiting: number;
  #active = 0;
  readonly #waiting: Array<() => void> = [];

  constructor(max: number, maxWaiting: number) {
    this.#max = max;
    this.#maxWaiting = maxWaiting;
  }

  resize(max: number, maxWaiting: number): void {
    this.#max = max;
    this.#maxWaiting = maxWaiting;
    while (this.#active < this.#max && this.#waiting.length > 0) {
      this.#active++;
      this.#waiting.shift()?.();
    }
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#active < this.#max) this.#active++;
    else if (this.#waiting.length >= this.#maxWaiting) {
      throw new PortierError('PASSDB_TEMPFAIL', 'password hash queue is full');
    } else await new Promise<void>((resolve) => this.#waiting.push(resolve));
    try {
      return await fn();
    } finally {
      if (this.#active > this.#max || this.#waiting.length === 0) this.#active--;
      else this.#waiting.shift()?.();
    }
  }
}

const native = new Gate(settings.nativeConcurrency, settings.maxQueue);

/** Run an argon2 call under the native concurrency limit. */
export function withNativeSlot<T>(fn: () => Promise<T>): Promise<T> {
  started.native++;
  return native.run(fn);
}
