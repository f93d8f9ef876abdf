/**
 * The compare report with and without the Node floor (`bench:compare --with-floor`): without
 * it, the table and chart of every stored result render exactly as they were written; with
 * it, a "Node floor" column, a `portier / floor` ratio and a chart series appear, and the
 * goals are still judged on portier alone.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { scenarios } from '../../../bench/compare/plan.js';
import { markdown, summarize, svg, type RunRecord, type ScenarioSummary } from '../../../bench/compare/report.js';
import type { BenchResult } from '../../../bench/lib/result.js';

const RESULTS = join(import.meta.dirname, '..', '..', '..', 'bench', 'results');

interface Stored {
  runs: RunRecord[];
  summaries: ScenarioSummary[];
  profile: string;
  rounds: number;
  duration: string;
  clients: number;
  startedAt: string;
  machine: { cores: number; cpu: string; memoryGiB: number };
  versions: Record<string, string>;
}

/** What compare.ts --render does with a stored result (summaries again from the runs). */
function resummarize(r: Stored): ScenarioSummary[] {
  const ids = new Set(r.summaries.map((s) => s.id));
  const notes = new Map(r.summaries.flatMap((s) => (s.note !== undefined ? [[s.id, s.note] as const] : [])));
  const plan = scenarios({ clients: r.clients, lmtpSize: '4k', idleSmall: 2000, idleLarge: 10_000 }).filter((s) => ids.has(s.id));
  return plan.map((s) => summarize(s, r.runs, notes.get(s.id)));
}

/** The table and chart of summaries, with the subtitle compare.ts writes. */
function render(r: Stored, sums: ScenarioSummary[]): { table: string; chart: string } {
  const v = r.versions;
  const subtitle = `${r.startedAt.slice(0, 10)}, ${r.profile} profile, median of ${r.rounds} interleaved rounds, ${r.duration} windows; ${r.machine.cores} cores (${r.machine.cpu}), ${r.machine.memoryGiB} GiB; ` +
    `portier ${v['portier']}, Dovecot ${v['dovecot']}, nginx ${v['nginx']}, Node ${v['node']}`;
  return { table: markdown(sums, 'HEADER'), chart: svg(sums, subtitle) };
}

function result(rate: number, cpuUs: number, kernelUs?: number): BenchResult {
  const accounting = { cpuSecondsPer1000Ops: cpuUs / 1000, ...(kernelUs !== undefined ? { systemSeconds: (kernelUs * 100) / 1e6 } : {}) };
  return { rate, ops: 100, bytes: 0, mbPerS: 0, errorCount: 0, errors: {}, latencyUs: { p50: 100, p99: 200 }, accounting } as unknown as BenchResult;
}

describe('compare report', () => {
  const stored = readdirSync(RESULTS).filter((f) => f.endsWith('.json'));

  test.each(stored)('%s: its summaries render byte for byte as they were written; --render shows the floor only when it ran', (file) => {
    const r = JSON.parse(readFileSync(join(RESULTS, file), 'utf8')) as Stored;
    const { table, chart } = render(r, r.summaries);
    const md = readFileSync(join(RESULTS, file.replace(/\.json$/, '.md')), 'utf8');
    expect(table.slice(table.indexOf('\n| scenario'))).toBe(md.slice(md.indexOf('\n| scenario')));
    expect(chart).toBe(readFileSync(join(RESULTS, file.replace(/\.json$/, '.svg')), 'utf8'));
    const again = render(r, resummarize(r));
    const floorRan = r.runs.some((run) => run.target === 'floor');
    if (floorRan) {
      expect(again.table).toMatch(/\| Node floor \|/);
      expect(again.chart).toMatch(/Node floor/);
    } else {
      expect(again.table).not.toMatch(/floor/i);
      expect(again.chart).not.toMatch(/floor/i);
    }
  });

  test('without --with-floor no scenario runs the floor', () => {
    for (const s of scenarios({ clients: 128, lmtpSize: '4k', idleSmall: 2000, idleLarge: 10_000 })) expect(s.targets).not.toContain('floor');
    const withFloor = scenarios({ clients: 128, lmtpSize: '4k', idleSmall: 2000, idleLarge: 10_000, floor: true }).filter((s) => s.targets.includes('floor')).map((s) => s.id);
    expect(withFloor).toEqual(['login-imap', 'login-imap-instant', 'login-imaps-instant', 'login-imaps-rsa-instant', 'login-pop3', 'login-pop3-instant', 'fetch-1', 'fetch-8',
      'fetch-1-instant', 'noop-instant', 'noop-dovecot', 'idle-2000', 'idle-2000-tls', 'idle-10000', 'idle-10000-tls']);
  });

  test('a result with the floor gets its column, the portier / floor ratio and a chart series; goals stay portier\'s', () => {
    const plan = scenarios({ clients: 128, lmtpSize: '4k', idleSmall: 2000, idleLarge: 10_000, floor: true });
    const login = plan.find((s) => s.id === 'login-imap-instant');
    const lmtp = plan.find((s) => s.id === 'lmtp');
    if (login === undefined || lmtp === undefined) throw new Error('scenarios missing');
    const runs: RunRecord[] = [
      { round: 1, scenario: login.id, target: 'direct', result: result(2000, 120) },
      { round: 1, scenario: login.id, target: 'portier', result: result(1000, 600) },
      { round: 1, scenario: login.id, target: 'dovecot', result: result(1000, 300) },
      { round: 1, scenario: login.id, target: 'nginx', result: result(1000, 150) },
      { round: 1, scenario: login.id, target: 'floor', result: result(1500, 300) },
      { round: 1, scenario: lmtp.id, target: 'portier', result: result(500, 100) },
    ];
    const sums = [summarize(login, runs), summarize(lmtp, runs)];
    expect(sums[0]?.values.floor).toBe(300);
    // The goal (< nginx, < 0.4× Dovecot) is portier's, whatever the floor does.
    expect(sums[0]?.met).toBe(false);
    const md = markdown(sums, 'HEADER');
    const lines = md.split('\n');
    expect(lines[2]).toBe('| scenario | unit | direct | portier | Dovecot proxy | nginx | Node floor | portier / direct | portier / Dovecot | portier / nginx | portier / floor | goal | met |');
    expect(lines[3]?.split('|').length).toBe(lines[2]?.split('|').length);
    const row = lines[4]?.split('|').map((c) => c.trim());
    expect(row?.slice(3, 12)).toEqual(['120', '**600**', '300', '150', '300', '5.00×', '2.00×', '4.00×', '2.00×']);
    // A scenario without the floor shows a dash in its column.
    expect(lines[5]?.split('|').map((c) => c.trim())[7]).toBe('–');
    const chart = svg(sums, 'subtitle');
    expect(chart).toContain('>Node floor</text>');
    expect(chart).toContain('fill="#8250df"');
    expect(svg([sums[1] as ScenarioSummary], 'subtitle')).not.toContain('Node floor');
  });

  test('CPU scenarios show the kernel\'s part of each target\'s µs per op (the rounds\' median); results without system time show none', () => {
    const login = scenarios({ clients: 128, lmtpSize: '4k', idleSmall: 2000, idleLarge: 10_000 }).find((s) => s.id === 'login-imap-instant');
    if (login === undefined) throw new Error('scenario missing');
    const runs: RunRecord[] = [
      { round: 1, scenario: login.id, target: 'portier', result: result(1000, 400, 150) },
      { round: 2, scenario: login.id, target: 'portier', result: result(1000, 420, 170) },
      { round: 1, scenario: login.id, target: 'nginx', result: result(1000, 190, 120) },
      { round: 1, scenario: login.id, target: 'dovecot', result: result(1000, 260) },
    ];
    const sum = summarize(login, runs);
    expect(sum.kernelUs).toEqual({ portier: 160, nginx: 120 });
    expect(markdown([sum], 'HEADER')).toContain(`- ${login.title}: of which in the kernel (system time: system calls, and on loopback the TCP stack's work for both ends) portier 160, nginx 120 µs`);
    const old = summarize(login, runs.map((r) => ({ ...r, result: result(1000, 400) })));
    expect(old.kernelUs).toBeUndefined();
    expect(markdown([old], 'HEADER')).not.toContain('in the kernel');
  });

  test('a memory figure below two sockets\' user-space minimum, or noisier than itself, is flagged, not judged', () => {
    const plan = scenarios({ clients: 128, lmtpSize: '4k', idleSmall: 2000, idleLarge: 10_000 });
    const idle = plan.find((s) => s.id === 'idle-2000');
    if (idle === undefined) throw new Error('scenario missing');
    const mem = (kib: number, spreadKiB = 0.5): BenchResult =>
      ({ ops: 100, errorCount: 0, accounting: { rssPerSessionKiB: kib, rssPerSessionMethod: 'fit', rssFit: { spreadKiB } } }) as unknown as BenchResult;
    const runs = (portier: [BenchResult, BenchResult], nginx = mem(9.6)): RunRecord[] => [
      { round: 1, scenario: idle.id, target: 'portier', result: portier[0] },
      { round: 2, scenario: idle.id, target: 'portier', result: portier[1] },
      { round: 1, scenario: idle.id, target: 'nginx', result: nginx },
      { round: 2, scenario: idle.id, target: 'nginx', result: nginx },
    ];
    // The 2026-12-02 plaintext 10,000 figure: rounds of 6.1 and 1.4 KiB.
    const spread = summarize(idle, runs([mem(6.1), mem(1.4)]));
    expect(spread.values.portier).toBe(3.8);
    expect(spread.doubtful?.portier).toBe('noisy');
    expect(spread.met).toBeUndefined();
    // Rounds that agree on a figure no Node proxy can reach.
    const low = summarize(idle, runs([mem(1.4), mem(1.4)]));
    expect(low.doubtful?.portier).toBe('implausible');
    expect(low.met).toBeUndefined();
    // Rounds that agree, but each ramp's samples disagree by more than the figure.
    const inner = summarize(idle, runs([mem(8, 9), mem(8.2, 10)]));
    expect(inner.doubtful?.portier).toBe('noisy');
    // A sound figure is judged; nginx's own is unflagged.
    const ok = summarize(idle, runs([mem(9.0), mem(9.2)]));
    expect(ok.doubtful).toBeUndefined();
    expect(ok.met).toBe(true);
    expect(summarize(idle, runs([mem(10.0), mem(10.4)])).met).toBe(false);
    const md = markdown([spread, low, ok], 'HEADER').split('\n');
    expect(md[4]).toMatch(/\| ≤ 9\.5 KiB \| unsure \(noisy\) \|$/);
    expect(md[5]).toMatch(/\| unsure \(implausible\) \|$/);
    expect(md[6]).toMatch(/\| yes \|$/);
    expect(md.join('\n')).toContain('portier 3.8 KiB is noise: its samples disagree by more than the figure (rounds 6.1, 1.4)');
    expect(md.join('\n')).toContain('portier 1.4 KiB is below what two sockets alone keep in user space (1.8 KiB)');
  });
});
