/**
 * Backend connections kept between the transactions of one client LMTP session, keyed by
 * the route key (the key that groups recipients within a transaction), so an MTA sending
 * many messages over one connection costs one backend connection per backend, not one per
 * message. Only clean connections are kept (see BackendConnection.reusable); a kept one is
 * QUIT after LMTP_KEPT_IDLE_TIMEOUT, when more than LMTP_MAX_KEPT_CONNECTIONS are kept (the
 * least recently used goes), when the client's XCLIENT facts change, and with the session.
 *
 * When the session ends, its kept connections that told the backend their client by XCLIENT
 * go to the runtime's IdleBackends (backend/idle.ts; at most lmtp_proxy_idle_connections
 * per backend, for IDLE_BACKEND_TIMEOUT): the next client session to that backend sends XCLIENT with its
 * own facts and LHLO on one of them instead of connecting, greeting, LHLO, XCLIENT and LHLO
 * again. Dovecot 2.3's proxy opens one connection per transaction: this is an intended
 * difference.
 */
/** What the pool needs of a connection (C; a stub in unit tests). */
export interface KeepableConnection {
  readonly route: { readonly key: string; readonly name: string };
  readonly reusable: boolean;
  quit(): void;
  /** Tell `onLost` once if the backend closes the connection while it is kept. */
  keepIdle(onLost: () => void): void;
}

/** Kept backend connections per client session; past it the least recently used gets QUIT. */
export const LMTP_MAX_KEPT_CONNECTIONS = 4;

/** A kept backend connection unused this long gets QUIT (well under any backend's idle limit). */
export const LMTP_KEPT_IDLE_TIMEOUT = 10_000;

interface Kept<C> {
  readonly conn: C;
  /** What XCLIENT told the backend (and the LHLO name): a connection carries one client's facts. */
  readonly facts: string;
  readonly timer: NodeJS.Timeout;
}

export interface KeptOptions<C> {
  readonly max?: number;
  readonly idleMs?: number;
  /** Told when a kept connection is dropped without being used again (for the debug log). */
  readonly onDrop?: (conn: C, why: string) => void;
}

export class KeptConnections<C extends KeepableConnection = KeepableConnection> {
  /** Insertion order is use order: the first entry is the least recently used. */
  readonly #kept = new Map<string, Kept<C>>();
  readonly #max: number;
  readonly #idleMs: number;
  readonly #onDrop: ((conn: C, why: string) => void) | undefined;
  #closed = false;

  constructor(options: KeptOptions<C> = {}) {
    this.#max = options.max ?? LMTP_MAX_KEPT_CONNECTIONS;
    this.#idleMs = options.idleMs ?? LMTP_KEPT_IDLE_TIMEOUT;
    this.#onDrop = options.onDrop;
  }

  get size(): number {
    return this.#kept.size;
  }

  /** A transaction ended: keep its connection if it is clean, else QUIT it. */
  put(conn: C, facts: string): void {
    if (this.#closed || this.#max <= 0 || !conn.reusable) {
      conn.quit();
      return;
    }
    const key = conn.route.key;
    this.#drop(key, 'replaced');
    const timer = setTimeout(() => this.#drop(key, 'idle'), this.#idleMs);
    timer.unref();
    this.#kept.set(key, { conn, facts, timer });
    conn.keepIdle(() => this.#forget(key, conn, 'lost'));
    for (const oldest of this.#kept.keys()) {
      if (this.#kept.size <= this.#max) break;
      this.#drop(oldest, 'too many kept');
    }
  }

  /** The kept connection for `key`, if it is still usable for a client with these facts. */
  take(key: string, facts: string): C | undefined {
    const k = this.#kept.get(key);
    if (k === undefined) return undefined;
    this.#kept.delete(key);
    clearTimeout(k.timer);
    if (k.facts !== facts || !k.conn.reusable) {
      this.#onDrop?.(k.conn, k.facts !== facts ? 'client facts changed' : 'lost');
      k.conn.quit();
      return undefined;
    }
    return k.conn;
  }

  /** QUIT every kept connection (the client's XCLIENT or STARTTLS starts the session over). */
  clear(why: string): void {
    for (const key of [...this.#kept.keys()]) this.#drop(key, why);
  }

  /**
   * The session ended: keep nothing from now on. Each kept connection goes to `release`
   * (IdleBackends.put, which QUITs what it does not keep), or gets QUIT.
   */
  close(release?: (conn: C) => void): void {
    this.#closed = true;
    if (release === undefined) {
      this.clear('session ended');
      return;
    }
    for (const [key, k] of [...this.#kept]) {
      this.#kept.delete(key);
      clearTimeout(k.timer);
      release(k.conn);
    }
  }

  #drop(key: string, why: string): void {
    const k = this.#kept.get(key);
    if (k === undefined) return;
    this.#kept.delete(key);
    clearTimeout(k.timer);
    this.#onDrop?.(k.conn, why);
    k.conn.quit();
  }

  /** The backend closed a kept connection: forget it (its socket is gone already). */
  #forget(key: string, conn: C, why: string): void {
    const k = this.#kept.get(key);
    if (k === undefined || k.conn !== conn) return;
    this.#drop(key, why);
  }
}
