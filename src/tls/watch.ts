/**
 * Following certificate files on disk: the directories holding them are watched (a Kubernetes
 * Secret volume swaps a `..data` symlink, so the files themselves never change in place), with
 * a debounce, and a periodic tick catches what a watch can miss (NFS, replaced directories).
 * The store compares file contents, so a spurious event costs a few reads and nothing else.
 */
import { watch, type FSWatcher } from 'node:fs';
import { dirname } from 'node:path';
import { errorText } from '../errors.js';
import type { Logger } from '../telemetry/log.js';

/** Quiet time after the last event before reloading (a renewal writes cert and key separately). */
export const WATCH_DEBOUNCE_MS = 300;
/** The periodic check, for changes no event announced and for ticket key rotation. */
export const WATCH_POLL_MS = 30_000;

export interface CertWatcherHooks {
  readonly changed: () => void;
  readonly tick: () => void;
  readonly log: Logger;
}

export class CertWatcher {
  readonly #hooks: CertWatcherHooks;
  readonly #watchers = new Map<string, FSWatcher>();
  #debounce: NodeJS.Timeout | undefined;
  readonly #poll: NodeJS.Timeout;
  #closed = false;

  constructor(files: readonly string[], hooks: CertWatcherHooks) {
    this.#hooks = hooks;
    this.update(files);
    this.#poll = setInterval(() => {
      hooks.tick();
      hooks.changed();
    }, WATCH_POLL_MS);
    this.#poll.unref();
  }

  /** Watch the directories of these files (after a reload the set may differ). */
  update(files: readonly string[]): void {
    if (this.#closed) return;
    const dirs = new Set(files.map((f) => dirname(f)));
    for (const [dir, w] of this.#watchers) {
      if (!dirs.has(dir)) {
        w.close();
        this.#watchers.delete(dir);
      }
    }
    for (const dir of dirs) {
      if (this.#watchers.has(dir)) continue;
      try {
        const w = watch(dir, { persistent: false }, () => this.#schedule());
        w.on('error', (err) => {
          this.#hooks.log.warn({ dir, err: errorText(err) }, 'TLS: cannot watch certificate directory any more; checking it periodically');
          w.close();
          this.#watchers.delete(dir);
        });
        this.#watchers.set(dir, w);
      } catch (err) {
        this.#hooks.log.warn({ dir, err: errorText(err) }, 'TLS: cannot watch certificate directory; checking it periodically');
      }
    }
  }

  close(): void {
    this.#closed = true;
    clearInterval(this.#poll);
    if (this.#debounce !== undefined) clearTimeout(this.#debounce);
    for (const w of this.#watchers.values()) w.close();
    this.#watchers.clear();
  }

  #schedule(): void {
    if (this.#closed) return;
    if (this.#debounce !== undefined) clearTimeout(this.#debounce);
    this.#debounce = setTimeout(() => {
      this.#debounce = undefined;
      if (!this.#closed) this.#hooks.changed();
    }, WATCH_DEBOUNCE_MS);
    this.#debounce.unref();
  }
}
