/** alloc-summary: bytes per operation by file and by function from a sampling heap profile tree. */
import { describe, expect, it } from 'vitest';
import { allocationsPerOp, frameFile, type SamplingNode } from '../../../bench/alloc-summary.js';

const node = (functionName: string, url: string, selfSize: number, children: SamplingNode[] = []): SamplingNode => ({ callFrame: { functionName, url, lineNumber: 9 }, selfSize, children });

describe('alloc-summary', () => {
  it('names files the way the tables do', () => {
    expect(frameFile('file:///work/main/dist/login/auth.js')).toBe('portier:login/auth.js');
    expect(frameFile('file:///work/main/node_modules/pino/lib/tools.js')).toBe('dep:pino');
    expect(frameFile('file:///x/node_modules/@pinojs/redact/index.js')).toBe('dep:@pinojs/redact');
    expect(frameFile('node:net')).toBe('node:net');
    expect(frameFile('')).toBe('(native)');
  });

  it('sums self sizes per file and per function, per operation, largest first', () => {
    const head = node('(root)', '', 0, [
      node('decide', 'file:///a/dist/login/auth.js', 3000, [node('Map', '', 1000)]),
      node('authenticate', 'file:///a/dist/login/auth.js', 1000),
      node('Socket', 'node:net', 6000),
    ]);
    const byFile = allocationsPerOp(head, 10, 'file');
    expect(byFile.total).toBe(1100);
    expect(byFile.rows).toEqual([['node:net', 600], ['portier:login/auth.js', 400], ['(native)', 100]]);
    const byFn = allocationsPerOp(head, 10, 'function');
    expect(byFn.rows[1]).toEqual(['decide portier:login/auth.js:10', 300]);
  });
});
