/**
 * A text flame summary of a V8 `.cpuprofile` (from `node --cpu-prof`): the functions with the
 * most self time, and the most inclusive time, as percentages of the sampled time.
 *
 *   node dist-bench/bench/flame.js PROFILE.cpuprofile [--top 25] [--filter src/]
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface FlameRow {
  name: string;
  selfPct: number;
  totalPct: number;
}

function frameName(n: ProfileNode): string {
  const f = n.callFrame;
  const fn = f.functionName === '' ? '(anonymous)' : f.functionName;
  if (f.url === '') return fn;
  const short = f.url.replace(/^file:\/\//, '').replace(/^.*\/(node_modules\/|src\/|dist\/|bench\/)/, '$1');
  return `${fn} ${short}:${f.lineNumber + 1}`;
}

/** Self and inclusive time per function name (recursion counted once per stack). */
export function summarizeProfile(p: Profile): { rows: FlameRow[]; totalMs: number } {
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of p.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  const selfUs = new Map<number, number>();
  let total = 0;
  p.samples.forEach((id, i) => {
    const dt = p.timeDeltas[i] ?? 0;
    selfUs.set(id, (selfUs.get(id) ?? 0) + dt);
    total += dt;
  });
  const self = new Map<string, number>();
  const incl = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const node = byId.get(id);
    if (node === undefined) continue;
    const name = frameName(node);
    self.set(name, (self.get(name) ?? 0) + us);
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const n = byId.get(at);
      if (n === undefined) break;
      const nm = frameName(n);
      if (seen.has(nm)) continue;
      seen.add(nm);
      incl.set(nm, (incl.get(nm) ?? 0) + us);
    }
  }
  const pct = (us: number): number => Math.round((us / Math.max(1, total)) * 1000) / 10;
  const rows = [...incl.keys()].map((name) => ({ name, selfPct: pct(self.get(name) ?? 0), totalPct: pct(incl.get(name) ?? 0) }));
  return { rows, totalMs: Math.round(total / 1000) };
}

function main(): void {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '25' }, filter: { type: 'string' } } });
  const file = positionals[0];
  if (file === undefined) {
    process.stderr.write('usage: flame PROFILE.cpuprofile [--top N] [--filter TEXT]\n');
    process.exitCode = 2;
    return;
  }
  const { rows, totalMs } = summarizeProfile(JSON.parse(readFileSync(file, 'utf8')) as Profile);
  const top = Number(values.top);
  const keep = (r: FlameRow): boolean => values.filter === undefined || r.name.includes(values.filter);
  const idle = rows.find((r) => r.name === '(idle)')?.selfPct ?? 0;
  const out = [`${file}: ${totalMs} ms sampled, ${idle}% idle`, '', 'self %  total %  function (by self time)'];
  for (const r of [...rows].filter(keep).sort((a, b) => b.selfPct - a.selfPct).slice(0, top)) out.push(`${r.selfPct.toFixed(1).padStart(6)}  ${r.totalPct.toFixed(1).padStart(7)}  ${r.name}`);
  out.push('', 'self %  total %  function (by inclusive time)');
  for (const r of [...rows].filter(keep).sort((a, b) => b.totalPct - a.totalPct).slice(0, top)) out.push(`${r.selfPct.toFixed(1).padStart(6)}  ${r.totalPct.toFixed(1).padStart(7)}  ${r.name}`);
  process.stdout.write(`${out.join('\n')}\n`);
}

if (process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href) main();
