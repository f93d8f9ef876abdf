/**
 * What the kernel's IPv4 TCP table (/proc/net/tcp) says about the connections to the
 * backends, for the idle runs: the source ports a proxy has used up towards them (TIME-WAIT
 * and still open), and the sockets the backends themselves still hold open. An idle run of
 * 10,000 sessions needs both low: its proxy needs 10,000 free ports per backend address, and
 * a backend still closing the previous target's 10,000 sessions (it takes seconds) would
 * hold them beside the new run's, near its 20,000-file limit here.
 */

export interface BackendSockets {
  /** Proxy-side sockets to a backend in TIME-WAIT: ports not free for about 60 s. */
  readonly timeWait: number;
  /** Proxy-side sockets to a backend in any other state (open or closing). */
  readonly toBackends: number;
  /** Backend-side sockets that are not listeners and not in TIME-WAIT: files a backend still holds. */
  readonly atBackends: number;
}

const LISTEN = '0A';
const TIME_WAIT = '06';

/** /proc/net/tcp writes an IPv4 address as little-endian hex: 127.0.2.3 is 0302007F. */
export function procHex(ip: string): string {
  return ip
    .split('.')
    .reverse()
    .map((b) => Number(b).toString(16).padStart(2, '0'))
    .join('')
    .toUpperCase();
}

/** Count from the text of /proc/net/tcp; `backends` are IPv4 addresses. */
export function countBackendSockets(procNetTcp: string, backends: readonly string[]): BackendSockets {
  const hex = new Set(backends.map(procHex));
  let timeWait = 0;
  let toBackends = 0;
  let atBackends = 0;
  for (const line of procNetTcp.split('\n')) {
    // sl local_address rem_address st ...
    const f = line.trim().split(/\s+/);
    const state = f[3];
    if (state === undefined || state === 'st') continue;
    const local = f[1]?.split(':')[0] ?? '';
    const remote = f[2]?.split(':')[0] ?? '';
    if (hex.has(remote)) {
      if (state === TIME_WAIT) timeWait++;
      else toBackends++;
    }
    if (hex.has(local) && state !== LISTEN && state !== TIME_WAIT) atBackends++;
  }
  return { timeWait, toBackends, atBackends };
}

/** Sockets a backend may still hold from the previous run before the next idle run starts. */
export const LINGER_MAX = 1000;

/** Whether an idle run of `sessions` can start: ports free for it, and the backends nearly empty. */
export function readyForIdle(s: BackendSockets, sessions: number, portRange: number): boolean {
  return portRange - s.timeWait - s.toBackends >= sessions + 2000 && s.atBackends <= LINGER_MAX;
}
