/**
 * One message, read once from the client and read again for each backend. Held in memory up
 * to SPOOL_MEMORY_LIMIT, then in a file in mail_temp_dir that is unlinked as soon as it is
 * open (Dovecot does the same), so nothing is left behind, whatever happens to the process.
 * Past the size limit bytes are only counted, never stored: memory and disk stay bounded.
 */
import { randomBytes } from 'node:crypto';
import { open, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';

/** Messages up to this size stay in memory (Dovecot's LMTP keeps 128 kB before a temp file). */
export const SPOOL_MEMORY_LIMIT = 128 * 1024;

/** Stop reading the client while this much waits to be written to the temp file. */
export const SPOOL_MAX_BACKLOG = 1024 * 1024;

const READ_CHUNK = 64 * 1024;

export interface SpoolOptions {
  readonly maxSize: number;
  readonly dir: string;
  readonly memoryLimit?: number;
}

export class MessageSpool {
  readonly #maxSize: number;
  readonly #dir: string;
  readonly #memoryLimit: number;
  #memory: Buffer[] = [];
  #file: FileHandle | undefined;
  /** Content goes to the temp file (from the first byte past the memory limit on). */
  #spilled = false;
  /** File writes run one after the other; this is the last one queued. */
  #writing: Promise<void> = Promise.resolve();
  #backlog = 0;
  #stored = 0;
  #seen = 0;
  #error: Error | undefined;
  #closed = false;

  constructor(options: SpoolOptions) {
    this.#maxSize = options.maxSize;
    this.#dir = options.dir;
    this.#memoryLimit = options.memoryLimit ?? SPOOL_MEMORY_LIMIT;
  }

  /** Bytes of message content received (stored or not). */
  get size(): number {
    return this.#seen;
  }

  get tooBig(): boolean {
    return this.#maxSize > 0 && this.#seen > this.#maxSize;
  }

  /** Bytes queued for the temp file: the caller pauses its input while this is large. */
  get backlog(): number {
    return this.#backlog;
  }

  /** The message did not fit in memory (for the log). */
  get inFile(): boolean {
    return this.#spilled;
  }

  /** Store the next pieces of the message (one decoded input chunk: many small line slices). */
  write(chunks: readonly Buffer[]): void {
    let n = 0;
    for (const c of chunks) n += c.length;
    if (n === 0) return;
    this.#seen += n;
    if (this.tooBig || this.#error !== undefined) {
      this.#discard();
      return;
    }
    if (!this.#spilled && this.#stored + n <= this.#memoryLimit) {
      // One copy: the slices point into socket buffers that should not stay pinned.
      this.#memory.push(Buffer.concat(chunks, n));
      this.#stored += n;
      return;
    }
    this.#spilled = true;
    const data = Buffer.concat([...this.#memory, ...chunks]);
    this.#memory = [];
    this.#stored += n;
    this.#backlog += data.length;
    this.#writing = this.#writing.then(() => this.#append(data));
  }

  /** Resolves when the temp file has caught up (for resuming a paused client). */
  flushed(): Promise<void> {
    return this.#writing;
  }

  /** Every byte is stored; throws when the temp file could not be written. */
  async finish(): Promise<void> {
    await this.#writing;
    if (this.#error !== undefined) throw this.#error;
  }

  /** The whole message from the start, in chunks; each call reads independently. */
  async *chunks(): AsyncGenerator<Buffer> {
    await this.finish();
    if (!this.#spilled) {
      yield* this.#memory;
      return;
    }
    const file = this.#file;
    if (file === undefined) throw new Error('temp file already closed');
    for (let pos = 0; pos < this.#stored; ) {
      const buf = Buffer.allocUnsafe(Math.min(READ_CHUNK, this.#stored - pos));
      const { bytesRead } = await file.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) throw new Error('temp file shorter than written');
      pos += bytesRead;
      yield bytesRead === buf.length ? buf : buf.subarray(0, bytesRead);
    }
  }

  /** Release memory and the temp file. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#memory = [];
    await this.#writing.catch(() => undefined);
    const file = this.#file;
    this.#file = undefined;
    await file?.close().catch(() => undefined);
  }

  async #append(data: Buffer): Promise<void> {
    try {
      if (this.#error !== undefined || this.#closed || this.tooBig) return;
      let file = this.#file;
      if (file === undefined) {
        const path = join(this.#dir, `portier-lmtp.${randomBytes(9).toString('hex')}`);
        file = await open(path, 'wx+', 0o600);
        this.#file = file;
        await unlink(path);
      }
      let off = 0;
      while (off < data.length) {
        const { bytesWritten } = await file.write(data, off, data.length - off, null);
        off += bytesWritten;
      }
    } catch (err) {
      this.#error ??= err instanceof Error ? err : new Error(String(err));
    } finally {
      this.#backlog -= data.length;
    }
  }

  #discard(): void {
    if (this.#memory.length > 0) this.#memory = [];
    if (this.#file !== undefined && this.tooBig) {
      const file = this.#file;
      this.#file = undefined;
      this.#writing = this.#writing.then(() => file.close()).catch(() => undefined);
    }
  }
}
