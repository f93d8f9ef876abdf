import { spawn } from 'node:child_process';
import { openSync, closeSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { fileCounts, listenDrops, parseOpenFilesLimit, parseTcpExt, procDelta, sampleProcs } from '../../../bench/lib/procstat.js';

describe('parseOpenFilesLimit', () => {
  const head = 'Limit                     Soft Limit           Hard Limit           Units     \n';
  it('reads the soft limit', () => {
    expect(parseOpenFilesLimit(`${head}Max processes             95344                95344                processes \nMax open files            1024                 20000                files     \n`)).toBe(1024);
  });
  it('has no number for unlimited or a missing line', () => {
    expect(parseOpenFilesLimit(`${head}Max open files            unlimited            unlimited            files     \n`)).toBeUndefined();
    expect(parseOpenFilesLimit(head)).toBeUndefined();
  });
});

describe('fileCounts', () => {
  it('counts the open files of a process and its children, most first', async () => {
    // A child that holds 40 more files than a bare node process.
    const child = spawn(process.execPath, ['-e', "const fs=require('fs');for(let i=0;i<40;i++)fs.openSync('/dev/null','r');process.stdout.write('ok');setTimeout(()=>{},30000)"], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
      const extra: number[] = [];
      for (let i = 0; i < 30; i++) extra.push(openSync('/dev/null', 'r'));
      const counts = fileCounts([process.pid], 0);
      const mine = counts.find((c) => c.pid === process.pid);
      const its = counts.find((c) => c.pid === child.pid);
      expect(mine?.files).toBeGreaterThanOrEqual(30);
      expect(its?.files).toBeGreaterThanOrEqual(40);
      expect(its?.comm).toBe(readFileSync(`/proc/${String(child.pid)}/comm`, 'latin1').trim());
      expect(mine?.limit).toBe(parseOpenFilesLimit(readFileSync('/proc/self/limits', 'latin1')));
      expect(counts.map((c) => c.files)).toEqual([...counts.map((c) => c.files)].sort((a, b) => b - a));
      // `min` leaves out processes holding fewer.
      const big = Math.max(mine?.files ?? 0, its?.files ?? 0);
      expect(fileCounts([process.pid], big).every((c) => c.files >= big)).toBe(true);
      for (const fd of extra) closeSync(fd);
    } finally {
      child.kill();
    }
  });
});

describe('parseTcpExt', () => {
  it('pairs the names line with the values line', () => {
    const text = 'TcpExt: SyncookiesSent ListenOverflows ListenDrops\nTcpExt: 3 17 19\nIpExt: InNoRoutes\nIpExt: 0\n';
    expect(parseTcpExt(text)).toEqual({ SyncookiesSent: 3, ListenOverflows: 17, ListenDrops: 19 });
  });
  it('reads this host\'s counters', () => {
    const t = parseTcpExt(readFileSync('/proc/net/netstat', 'latin1'));
    expect(typeof t['ListenOverflows']).toBe('number');
    expect(listenDrops().overflows).toBeGreaterThanOrEqual(t['ListenOverflows'] ?? 0);
  });
  it('is empty for text without TcpExt lines', () => {
    expect(parseTcpExt('IpExt: InNoRoutes\nIpExt: 0\n')).toEqual({});
  });
});

describe('procDelta', () => {
  /** CPU seconds and their kernel part of a child that spins for `ms` of CPU doing `work`. */
  async function spin(work: string, ms: number): Promise<{ cpu: number; sys: number }> {
    const body = `const fs=require('fs');const b=Buffer.alloc(1<<20);const fd=fs.openSync('/dev/zero','r');process.stdout.write('go');` +
      `process.stdin.once('data',()=>{const t=process.cpuUsage();while((()=>{const u=process.cpuUsage(t);return (u.user+u.system)/1000})()<${ms}){${work}}process.stdout.write('done');setTimeout(()=>{},30000)})`;
    const child = spawn(process.execPath, ['-e', body], { stdio: ['pipe', 'pipe', 'inherit'] });
    try {
      await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
      const pid = child.pid ?? 0;
      const before = sampleProcs([pid]);
      child.stdin.write('x');
      await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
      const d = procDelta(before, sampleProcs([pid]));
      return { cpu: d.cpuSeconds, sys: d.systemSeconds };
    } finally {
      child.kill();
    }
  }

  it('splits CPU time into the kernel part and the rest', async () => {
    // Reading 1 MiB of /dev/zero at a time is the kernel's work (clearing pages); a JS loop is not.
    const kernel = await spin('fs.readSync(fd,b,0,b.length,null)', 400);
    const user = await spin('for(let i=0;i<1e5;i++)Math.sqrt(i)', 400);
    expect(kernel.cpu).toBeGreaterThanOrEqual(0.3);
    expect(user.cpu).toBeGreaterThanOrEqual(0.3);
    expect(kernel.sys).toBeLessThanOrEqual(kernel.cpu);
    expect(kernel.sys).toBeGreaterThan(kernel.cpu / 2);
    expect(user.sys).toBeLessThan(user.cpu / 4);
  });
});
