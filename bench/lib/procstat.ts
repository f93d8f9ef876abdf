/**
 * CPU time and memory of the proxy under test, read from /proc (Linux) for the given PIDs
 * and all their descendants, so results do not depend on how fast the generator is.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** USER_HZ: the unit of utime/stime in /proc/<pid>/stat; 100 on every Linux we run on. */
const CLK_TCK = 100;

export interface ProcSample {
  /** Per PID: CPU seconds (user + system) so far. */
  cpu: Map<number, number>;
  /** Per PID: the system (kernel) part of `cpu`: system calls, and on loopback the TCP stack's work for both ends. */
  sys: Map<number, number>;
  /** Sum of VmRSS over the tree, KiB. */
  rssKiB: number;
  pids: number[];
  at: number;
}

interface StatLine {
  ppid: number;
  cpuS: number;
  sysS: number;
}

function readStat(pid: number): StatLine | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // The command name is in parentheses and may hold spaces: fields follow the last ')'.
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
    // f[0] is field 3 (state): ppid is field 4, utime 14, stime 15.
    return { ppid: Number(f[1]), cpuS: (Number(f[11]) + Number(f[12])) / CLK_TCK, sysS: Number(f[12]) / CLK_TCK };
  } catch {
    return undefined;
  }
}

function readRssKiB(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'latin1'));
    return m?.[1] !== undefined ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** The roots and every live descendant. */
export function processTree(roots: readonly number[]): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const st = readStat(Number(name));
    if (st === undefined) continue;
    const list = children.get(st.ppid) ?? [];
    list.push(Number(name));
    children.set(st.ppid, list);
  }
  const out = new Set<number>();
  const queue = [...roots];
  while (queue.length > 0) {
    const pid = queue.pop();
    if (pid === undefined || out.has(pid)) continue;
    out.add(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return [...out];
}

export function sampleProcs(roots: readonly number[]): ProcSample {
  const pids = processTree(roots);
  const cpu = new Map<number, number>();
  const sys = new Map<number, number>();
  let rssKiB = 0;
  for (const pid of pids) {
    const st = readStat(pid);
    if (st === undefined) continue;
    cpu.set(pid, st.cpuS);
    sys.set(pid, st.sysS);
    rssKiB += readRssKiB(pid);
  }
  return { cpu, sys, rssKiB, pids, at: Date.now() };
}

/** Open files of one process of the tree against its soft limit, read at one moment. */
export interface ProcFiles {
  pid: number;
  /** The command name from /proc/<pid>/comm ("nginx", "imap-login", "node", ...). */
  comm: string;
  files: number;
  /** The soft "Max open files" limit; undefined when unlimited or unreadable. */
  limit?: number;
}

/** The soft "Max open files" limit from the text of /proc/<pid>/limits. */
export function parseOpenFilesLimit(limits: string): number | undefined {
  const m = /^Max open files\s+(\d+|unlimited)\s/m.exec(limits);
  return m?.[1] !== undefined && m[1] !== 'unlimited' ? Number(m[1]) : undefined;
}

/**
 * Open files per process of the tree, those holding at least `min`, most first: shows whether
 * one process of a proxy ran into its file limit while the others had room (the kernel spreads
 * connections over processes unevenly).
 */
export function fileCounts(roots: readonly number[], min = 16): ProcFiles[] {
  const out: ProcFiles[] = [];
  for (const pid of processTree(roots)) {
    try {
      const files = readdirSync(`/proc/${pid}/fd`).length;
      if (files < min) continue;
      const comm = readFileSync(`/proc/${pid}/comm`, 'latin1').trim();
      const limit = parseOpenFilesLimit(readFileSync(`/proc/${pid}/limits`, 'latin1'));
      out.push({ pid, comm, files, ...(limit !== undefined ? { limit } : {}) });
    } catch {
      // The process ended between the listing and the read.
    }
  }
  return out.sort((a, b) => b.files - a.files);
}

/** The TcpExt counters of /proc/net/netstat's text (a line of names, then a line of values). */
export function parseTcpExt(netstat: string): Record<string, number> {
  const lines = netstat.split('\n').filter((l) => l.startsWith('TcpExt:'));
  const names = lines[0]?.split(/\s+/).slice(1) ?? [];
  const values = lines[1]?.split(/\s+/).slice(1) ?? [];
  const out: Record<string, number> = {};
  names.forEach((n, i) => {
    if (n !== '' && values[i] !== undefined) out[n] = Number(values[i]);
  });
  return out;
}

/**
 * Connections the kernel dropped because a listener's accept queue was full, so far, in this
 * network namespace (every listener in it, not only the proxy's); zero where unreadable.
 */
export function listenDrops(): { overflows: number; drops: number } {
  try {
    const t = parseTcpExt(readFileSync('/proc/net/netstat', 'latin1'));
    return { overflows: t['ListenOverflows'] ?? 0, drops: t['ListenDrops'] ?? 0 };
  } catch {
    return { overflows: 0, drops: 0 };
  }
}

export interface ProcDelta {
  pids: number[];
  /** CPU seconds the tree spent between the samples (processes born in between count whole). */
  cpuSeconds: number;
  /**
   * The part of cpuSeconds spent in the kernel (system time). Against a proxy on loopback it
   * holds the system calls and the TCP stack's work for both ends of each write; what is left
   * (user time) is the proxy's own code, its runtime and its garbage collector.
   */
  systemSeconds: number;
  rssStartKiB: number;
  rssEndKiB: number;
}

export function procDelta(a: ProcSample, b: ProcSample): ProcDelta {
  let cpu = 0;
  let sys = 0;
  for (const [pid, s] of b.cpu) cpu += s - (a.cpu.get(pid) ?? 0);
  for (const [pid, s] of b.sys) sys += s - (a.sys.get(pid) ?? 0);
  const round = (x: number): number => Math.round(x * 100) / 100;
  return { pids: b.pids, cpuSeconds: round(cpu), systemSeconds: round(sys), rssStartKiB: a.rssKiB, rssEndKiB: b.rssKiB };
}
