/**
 * The time limit of a backend dialogue (proxy_timeout): what connect.ts waits under. Any
 * `AbortSignal` is one (LMTP passes `AbortSignal.timeout()`); `Deadline` is the cheap one a
 * proxied login uses: a plain timer and a short list of callbacks. An AbortController costs an
 * EventTarget per login, and each add/removeEventListener builds listener records, about
 * 15 µs of CPU per login in all, and garbage for every one.
 */

/** The part of AbortSignal the backend dialogues use. */
export interface Cancel {
  readonly aborted: boolean;
  addEventListener(type: 'abort', fn: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', fn: () => void): void;
}

export class Deadline implements Cancel {
  #aborted = false;
  #fns: (() => void)[] = [];
  readonly #timer: NodeJS.Timeout;

  constructor(ms: number) {
    this.#timer = setTimeout(expire, ms, this).unref();
  }

  get aborted(): boolean {
    return this.#aborted;
  }

  /** Each callback runs once, when the time is up (every listener is `once`). */
  addEventListener(_type: 'abort', fn: () => void): void {
    if (!this.#aborted) this.#fns.push(fn);
  }

  removeEventListener(_type: 'abort', fn: () => void): void {
    const i = this.#fns.indexOf(fn);
    if (i >= 0) this.#fns.splice(i, 1);
  }

  /** The dialogue is over: no callback will run, the timer is gone. */
  clear(): void {
    clearTimeout(this.#timer);
    this.#fns.length = 0;
  }

  /** Resolves after `ms`, or rejects (with `reason`) when the time is up first. */
  sleep(ms: number, reason: () => Error): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.#aborted) {
        reject(reason());
        return;
      }
      const onAbort = (): void => {
        clearTimeout(t);
        reject(reason());
      };
      const t = setTimeout(() => {
        this.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      this.addEventListener('abort', onAbort);
    });
  }

  /** The time is up: every callback runs (tests may call it to cut a dialogue short). */
  expire(): void {
    if (this.#aborted) return;
    this.#aborted = true;
    clearTimeout(this.#timer);
    const fns = this.#fns;
    this.#fns = [];
    for (const fn of fns) fn();
  }
}

function expire(d: Deadline): void {
  d.expire();
}
