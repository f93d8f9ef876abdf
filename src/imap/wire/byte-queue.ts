/**
 * A FIFO of received bytes for the framers: chunks are kept as pushed (no copy on push), and
 * bytes taken out are copied, so a returned value never pins a large socket chunk in memory.
 */

const EMPTY = Buffer.alloc(0);
const COALESCE_BYTES = 1024;

export class ByteQueue {
  #chunks: Buffer[] = [];
  /** Bytes of #chunks[0] already consumed. */
  #head = 0;
  #length = 0;

  /** Unconsumed bytes. */
  get length(): number {
    return this.#length;
  }

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
    const last = this.#chunks.length - 1;
    const tail = this.#chunks[last];
    // Coalesce small chunks: a client dripping one byte per packet must not make scans O(n²).
    if (tail !== undefined && tail.length + buf.length <= COALESCE_BYTES) this.#chunks[last] = Buffer.concat([tail, buf]);
    else this.#chunks.push(buf);
    this.#length += buf.length;
  }

  /** Offset of the first `byte` at or after offset `from`, or -1. */
  indexOf(byte: number, from: number): number {
    let base = 0;
    for (let k = 0; k < this.#chunks.length; k++) {
      const chunk = this.#chunks[k] as Buffer;
      const start = k === 0 ? this.#head : 0;
      const size = chunk.length - start;
      if (from < base + size) {
        const at = chunk.indexOf(byte, start + Math.max(0, from - base));
        if (at >= 0) return base + at - start;
      }
      base += size;
    }
    return -1;
  }

  /** A copy of the first `n` bytes (fewer if fewer are queued), left in the queue. */
  peek(n: number): Buffer {
    const parts: Buffer[] = [];
    let left = Math.min(n, this.#length);
    for (let k = 0; left > 0; k++) {
      const chunk = this.#chunks[k] as Buffer;
      const part = chunk.subarray(k === 0 ? this.#head : 0).subarray(0, left);
      parts.push(part);
      left -= part.length;
    }
    return Buffer.concat(parts);
  }

  /** Removes and returns (a copy of) the first `n` bytes; n ≤ length. */
  take(n: number): Buffer {
    if (n === 0) return EMPTY;
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const chunk = this.#chunks[0] as Buffer;
      const avail = chunk.length - this.#head;
      const want = Math.min(avail, n - filled);
      chunk.copy(out, filled, this.#head, this.#head + want);
      filled += want;
      this.#advance(want, avail);
    }
    return out;
  }

  /** Discards the first `n` bytes; n ≤ length. */
  skip(n: number): void {
    let left = n;
    while (left > 0) {
      const chunk = this.#chunks[0] as Buffer;
      const avail = chunk.length - this.#head;
      const want = Math.min(avail, left);
      left -= want;
      this.#advance(want, avail);
    }
  }

  /** Removes and returns everything. */
  takeAll(): Buffer {
    return this.take(this.#length);
  }

  #advance(n: number, avail: number): void {
    this.#length -= n;
    if (n === avail) {
      this.#chunks.shift();
      this.#head = 0;
    } else {
      this.#head += n;
    }
  }
}
