/**
 * Bytes allocated per operation from an alloc-sampler.js profile, by file or by function.
 *
 *   node dist-bench/bench/alloc-summary.js FILE.heapprofile --ops 4000 [--by file|function] [--top 30]
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';

export interface SamplingNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: SamplingNode[];
}

/** Where a frame's code lives, shortened: `portier:login/auth.js`, `dep:pino`, `node:net`, `(native)`. */
export function frameFile(url: string): string {
  if (url === '') return '(native)';
  const dist = /\/dist\/(.*)$/.exec(url);
  if (dist?.[1] !== undefined) return `portier:${dist[1]}`;
  const dep = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (dep?.[1] !== undefined) return `dep:${dep[1]}`;
  return url.replace(/^file:\/\//, '');
}

/** Total bytes and bytes per key (self size), divided by `ops`, largest first. */
export function allocationsPerOp(head: SamplingNode, ops: number, by: 'file' | 'function'): { total: number; rows: [string, number][] } {
  const sums = new Map<string, number>();
  let total = 0;
  const stack = [head];
  for (let n = stack.pop(); n !== undefined; n = stack.pop()) {
    total += n.selfSize;
    const file = frameFile(n.callFrame.url);
    const key = by === 'file' ? file : `${n.callFrame.functionName || '(anonymous)'} ${file}:${n.callFrame.lineNumber + 1}`;
    if (n.selfSize > 0) sums.set(key, (sums.get(key) ?? 0) + n.selfSize);
    stack.push(...n.children);
  }
  const rows = [...sums].map(([k, v]): [string, number] => [k, v / ops]).sort((a, b) => b[1] - a[1]);
  return { total: total / ops, rows };
}

function main(): void {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { ops: { type: 'string' }, by: { type: 'string', default: 'file' }, top: { type: 'string', default: '30' } } });
  const file = positionals[0];
  const ops = Number(values.ops);
  if (file === undefined || !(ops > 0)) {
    process.stderr.write('usage: alloc-summary.js FILE.heapprofile --ops N [--by file|function] [--top 30]\n');
    process.exit(2);
  }
  let profile: { head?: SamplingNode };
  try {
    profile = JSON.parse(readFileSync(file, 'utf8')) as { head?: SamplingNode };
  } catch (err) {
    process.stderr.write(`alloc-summary: cannot read ${file}: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(2);
  }
  if (profile.head === undefined) {
    process.stderr.write(`alloc-summary: ${file} is not a sampling heap profile (no head node)\n`);
    process.exit(2);
  }
  const { total, rows } = allocationsPerOp(profile.head, ops, values.by === 'function' ? 'function' : 'file');
  process.stdout.write(`${Math.round(total)} bytes allocated per operation\n`);
  for (const [k, v] of rows.slice(0, Number(values.top))) process.stdout.write(`${String(Math.round(v)).padStart(8)}  ${k}\n`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) main();
