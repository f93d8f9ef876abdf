/**
 * A backend connection stand-in for the pool unit tests (lmtp/pool.ts KeptConnections,
 * backend/idle.ts IdleBackends): counts QUITs and lets the "backend" close it while it is kept.
 */
import type { ShareableConnection } from '../../src/backend/idle.js';
import type { KeepableConnection } from '../../src/lmtp/pool.js';

export class StubConnection implements KeepableConnection, ShareableConnection {
  readonly route: { key: string; name: string };
  /** Clean: may be kept for the session's next transaction. */
  reusable = true;
  /** Can carry another session (a new XCLIENT would tell the backend its client). */
  #shareable = true;
  quits = 0;
  #onLost: (() => void) | undefined;

  constructor(key: string) {
    this.route = { key, name: key };
  }

  get shareable(): boolean {
    return this.reusable && this.#shareable;
  }

  set shareable(v: boolean) {
    this.#shareable = v;
  }

  quit(): void {
    this.quits++;
    this.reusable = false;
    this.#onLost = undefined;
  }

  keepIdle(onLost: () => void): void {
    this.#onLost = onLost;
  }

  /** The backend closes it while kept. */
  lose(): void {
    this.reusable = false;
    const f = this.#onLost;
    this.#onLost = undefined;
    f?.();
  }
}
