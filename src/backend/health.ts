/**
 * Per-backend failure memory (Dovecot's proxy_host_immediate_failure_after): a backend that
 * has failed without a single success for longer than the threshold is "down". While down,
 * one login at a time goes through as a probe; everyone else fails at once instead of
 * waiting out proxy_timeout. A success forgets the record.
 */
interface Record {
  failingSince: number;
  lastFailure: number;
  probing: boolean;
}

export type Admission = { readonly go: true; readonly probe: boolean } | { readonly go: false; readonly failingForMs: number };

export class BackendHealth {
  readonly #records = new Map<string, Record>();
  readonly #thresholdMs: () => number;

  /** The threshold is read on each use so a configuration reload applies at once. */
  constructor(thresholdMs: () => number) {
    this.#thresholdMs = thresholdMs;
  }

  admit(key: string, now = Date.now()): Admission {
    const threshold = this.#thresholdMs();
    const r = this.#records.get(key);
    if (threshold <= 0 || r === undefined) return { go: true, probe: false };
    // Nobody has tried for a while: start afresh rather than trust an old verdict.
    if (now - r.lastFailure > threshold) {
      this.#records.delete(key);
      return { go: true, probe: false };
    }
    if (r.lastFailure - r.failingSince < threshold) return { go: true, probe: false };
    if (r.probing) return { go: false, failingForMs: now - r.failingSince };
    r.probing = true;
    return { go: true, probe: true };
  }

  failed(key: string, probe: boolean, now = Date.now()): void {
    const r = this.#records.get(key);
    if (r === undefined) this.#records.set(key, { failingSince: now, lastFailure: now, probing: false });
    else {
      r.lastFailure = now;
      if (probe) r.probing = false;
    }
  }

  succeeded(key: string): void {
    this.#records.delete(key);
  }

  /** A probe that ended without telling us anything about the backend (e.g. a bad password). */
  released(key: string, probe: boolean): void {
    const r = this.#records.get(key);
    if (r !== undefined && probe) r.probing = false;
  }

  isDown(key: string, now = Date.now()): boolean {
    const r = this.#records.get(key);
    const threshold = this.#thresholdMs();
    return r !== undefined && threshold > 0 && now - r.lastFailure <= threshold && r.lastFailure - r.failingSince >= threshold;
  }
}
