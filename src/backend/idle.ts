/**
 * Backend connections that outlive their client session, for the next session to the same
 * backend. Used by LMTP (lmtp/pool.ts: a session's kept connections come here when it ends,
 * and the next session sends XCLIENT with its own facts instead of connecting again); the
 * login protocols cannot share a connection, which is logged in as one user.
 */

/** An idle connection unused this long gets QUIT (well under any backend's idle limit). */
export const IDLE_BACKEND_TIMEOUT = 10_000;

/** What IdleBackends needs of a connection (C; a stub in unit tests). */
export interface ShareableConnection {
  readonly route: { readonly key: string };
  /** Clean, nothing in flight, and able to carry another client session (LMTP: a new XCLIENT replaces the last). */
  readonly shareable: boolean;
  quit(): void;
  /** Tell `onLost` once if the backend closes the connection while it is idle. */
  keepIdle(onLost: () => void): void;
}

interface Idle<C> {
  readonly conn: C;
  readonly timer: NodeJS.Timeout;
}

export interface IdleBackendsOptions<C> {
  readonly idleMs?: number;
  /** Told when an idle connection is QUIT or lost without being used again (for the debug log). */
  readonly onDrop?: (conn: C, why: string) => void;
}

/**
 * Backend connections no client session holds, per route key, for the next session to that
 * backend. One per Runtime (a reload starts a new one and closes the old), so per cluster
 * worker too. The most recently released is taken first; each is QUIT after
 * IDLE_BACKEND_TIMEOUT unused, and at once past `max` per backend, when the backend closes
 * it, and at close(). A backend that cannot take another session on a connection (LMTP: it
 * refused a second XCLIENT) gets none kept again (`refusedBy`) while this pool lives.
 */
export class IdleBackends<C extends ShareableConnection = ShareableConnection> {
  readonly #idle = new Map<string, Idle<C>[]>();
  readonly #idleMs: number;
  readonly #onDrop: ((conn: C, why: string) => void) | undefined;
  /** Route keys whose backend refused a second XCLIENT. */
  readonly #refusing = new Set<string>();
  #count = 0;
  #closed = false;

  constructor(options: IdleBackendsOptions<C> = {}) {
    this.#idleMs = options.idleMs ?? IDLE_BACKEND_TIMEOUT;
    this.#onDrop = options.onDrop;
  }

  /** Idle connections held, over every backend. */
  get size(): number {
    return this.#count;
  }

  /** A session let go of `conn`: keep it for the next session if it can carry one, else QUIT it. */
  put(conn: C, max: number): void {
    const key = conn.route.key;
    if (this.#closed || max <= 0 || !conn.shareable || this.#refusing.has(key)) {
      conn.quit();
      return;
    }
    let list = this.#idle.get(key);
    if (list === undefined) {
      list = [];
      this.#idle.set(key, list);
    }
    const timer = setTimeout(() => this.#drop(key, conn, 'idle'), this.#idleMs);
    timer.unref();
    list.push({ conn, timer });
    this.#count++;
    conn.keepIdle(() => this.#drop(key, conn, 'lost'));
    // The oldest go first: the newest have the most time left before the backend's own idle limit.
    while (list.length > max) {
      const oldest = list[0];
      if (oldest === undefined) break;
      this.#drop(key, oldest.conn, 'too many idle');
    }
  }

  /** An idle connection to the backend of `key` (the most recently released), if one is held. */
  take(key: string): C | undefined {
    const list = this.#idle.get(key);
    for (let e = list?.pop(); e !== undefined; e = list?.pop()) {
      this.#count--;
      clearTimeout(e.timer);
      if (list?.length === 0) this.#idle.delete(key);
      if (e.conn.shareable) return e.conn;
      this.#onDrop?.(e.conn, 'lost');
      e.conn.quit();
    }
    return undefined;
  }

  /** The backend of `key` cannot carry another session on a connection: keep no more of its connections. */
  refusedBy(key: string): void {
    this.#refusing.add(key);
    const list = this.#idle.get(key);
    for (const e of [...(list ?? [])]) this.#drop(key, e.conn, 'backend refuses a second XCLIENT');
  }

  /** Shutdown or reload: QUIT every idle connection, keep nothing from now on. */
  close(): void {
    this.#closed = true;
    for (const [key, list] of [...this.#idle]) for (const e of [...list]) this.#drop(key, e.conn, 'shutdown');
  }

  #drop(key: string, conn: C, why: string): void {
    const list = this.#idle.get(key);
    const at = list?.findIndex((e) => e.conn === conn) ?? -1;
    if (list === undefined || at < 0) return;
    const [e] = list.splice(at, 1);
    if (list.length === 0) this.#idle.delete(key);
    this.#count--;
    if (e !== undefined) clearTimeout(e.timer);
    this.#onDrop?.(conn, why);
    conn.quit();
  }
}
