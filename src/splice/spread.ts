/**
 * Spreading client disconnects when a backend drops many sessions at once (Dovecot's
 * login_proxy_max_disconnect_delay): the first goes at once, later ones in the same storm get
 * a random delay within the limit, so reconnecting clients do not all arrive together.
 */
const STORM_WINDOW_MS = 1000;

export class DisconnectSpreader {
  readonly #maxDelayMs: () => number;
  readonly #recent = new Map<string, number[]>();

  constructor(maxDelayMs: () => number, readonly random: () => number = Math.random) {
    this.#maxDelayMs = maxDelayMs;
  }

  /** How long to wait before closing a client whose backend just closed its session. */
  delayFor(backend: string, now = Date.now()): number {
    const max = this.#maxDelayMs();
    if (max <= 0) return 0;
    const times = (this.#recent.get(backend) ?? []).filter((t) => now - t < STORM_WINDOW_MS);
    times.push(now);
    this.#recent.set(backend, times);
    if (this.#recent.size > 1000) this.#prune(now);
    return times.length > 1 ? Math.floor(this.random() * max) : 0;
  }

  #prune(now: number): void {
    for (const [k, times] of this.#recent) if (times.every((t) => now - t >= STORM_WINDOW_MS)) this.#recent.delete(k);
  }
}
