/**
 * login_proxy_idle_timeout for every spliced session of the process with one timer: a session
 * marks itself active on every chunk either way, and a sweep a few times per timeout closes
 * those silent for the whole timeout (at most a quarter of it, or a second, late). A timer
 * per socket (socket.setTimeout) cost each idle session a Timeout and a bound function, and
 * every read and write a timer refresh.
 */

export interface IdleWatched {
  /** Set on every chunk; cleared by the sweep. */
  idleActive: boolean;
  /** Silence counted by the sweeps since the last activity. */
  idleMs: number;
  readonly idleLimitMs: number;
  idleExpired(): void;
  /** A sweep found it quiet after activity (or since it started). */
  wentQuiet?(): void;
}

const MIN_TICK_MS = 25;
const MAX_TICK_MS = 1000;

const watched = new Set<IdleWatched>();
let timer: NodeJS.Timeout | undefined;
let tickMs = MAX_TICK_MS;

export function watchIdle(w: IdleWatched): void {
  watched.add(w);
  const wanted = Math.min(MAX_TICK_MS, Math.max(MIN_TICK_MS, Math.floor(w.idleLimitMs / 4)));
  if (timer !== undefined && wanted >= tickMs) return;
  if (timer !== undefined) clearInterval(timer);
  tickMs = wanted;
  timer = setInterval(sweep, tickMs).unref();
}

export function unwatchIdle(w: IdleWatched): void {
  if (!watched.delete(w) || watched.size > 0 || timer === undefined) return;
  clearInterval(timer);
  timer = undefined;
  tickMs = MAX_TICK_MS;
}

function sweep(): void {
  const step = tickMs;
  for (const w of watched) {
    if (w.idleActive) {
      w.idleActive = false;
      w.idleMs = 0;
    } else {
      if (w.idleMs === 0) w.wentQuiet?.();
      if ((w.idleMs += step) >= w.idleLimitMs) {
        watched.delete(w);
        w.idleExpired();
      }
    }
  }
  if (watched.size === 0 && timer !== undefined) {
    clearInterval(timer);
    timer = undefined;
    tickMs = MAX_TICK_MS;
  }
}
