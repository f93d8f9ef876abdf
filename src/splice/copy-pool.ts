/**
 * Where backend bytes read into the shared read buffer (backend/connect.ts) are copied before
 * they are written to the client: a write keeps its buffer until it is flushed, so the shared
 * buffer cannot be written itself. Copies are carved from recycled slabs the size of one
 * backend read; a slab is reused only once every write that holds a part of it has
 * completed, so a bulk transfer allocates nothing once it runs (fresh 64 KiB buffers per
 * read cost full GCs). While a backend fills whole reads (a bulk transfer), its next read
 * goes straight into a lent slab (`lend`/`adopt`) and nothing is copied.
 */
import { SHARED_READ_SIZE } from '../backend/connect.js';

const SLAB_SIZE = SHARED_READ_SIZE;
/** Free slabs kept for reuse (the rest are left to the GC): 2 MiB. */
const MAX_FREE = 8;

class Slab {
  readonly buf = Buffer.allocUnsafeSlow(SLAB_SIZE);
  used = 0;
  /** Writes holding a part of this slab that have not completed. */
  refs = 0;
  /** No longer carved from: back to the free list once refs reaches 0. */
  retired = false;
  readonly #pool: CopyPool;

  constructor(pool: CopyPool) {
    this.#pool = pool;
  }

  /** The write callback of every chunk carved from this slab. */
  readonly release = (): void => {
    if (--this.refs === 0 && this.retired) this.#pool.recycle(this);
  };
}

function noop(): void {}

export interface PooledCopy {
  readonly chunk: Buffer;
  /** Pass as the write's callback: it gives the chunk's space back when the write completed. */
  readonly done: () => void;
}

export class CopyPool {
  readonly #free: Slab[] = [];
  #current: Slab | undefined;
  readonly #lent = new WeakMap<Uint8Array, Slab>();

  /** A copy of `src` (at most one slab) in pooled memory, owned by the write it is given to. */
  copy(src: Buffer): PooledCopy {
    const n = src.length;
    if (n > SLAB_SIZE) return { chunk: Buffer.from(src), done: noop };
    let slab = this.#current;
    if (slab === undefined || slab.used + n > SLAB_SIZE) {
      if (slab !== undefined) this.#retire(slab);
      slab = this.#free.pop() ?? new Slab(this);
      slab.used = 0;
      slab.retired = false;
      this.#current = slab;
    }
    const at = slab.used;
    src.copy(slab.buf, at);
    slab.used = at + n;
    slab.refs++;
    return { chunk: slab.buf.subarray(at, at + n), done: slab.release };
  }

  /**
   * A whole slab for one backend read to land in (a bulk transfer: no copy then). The read's
   * bytes come back through `adopt`; a slab lent and never read into is left to the GC.
   */
  lend(): Buffer {
    const slab = this.#free.pop() ?? new Slab(this);
    slab.used = SLAB_SIZE;
    slab.retired = true;
    this.#lent.set(slab.buf, slab);
    return slab.buf;
  }

  /** The first `n` bytes of a lent slab, owned by the write they are given to. */
  adopt(buf: Uint8Array, n: number): PooledCopy {
    const slab = this.#lent.get(buf);
    if (slab === undefined) return { chunk: Buffer.from(buf.subarray(0, n)), done: noop };
    this.#lent.delete(buf);
    slab.refs++;
    return { chunk: slab.buf.subarray(0, n), done: slab.release };
  }

  recycle(slab: Slab): void {
    if (this.#free.length < MAX_FREE) this.#free.push(slab);
  }

  #retire(slab: Slab): void {
    slab.retired = true;
    if (slab.refs === 0) this.recycle(slab);
  }
}
