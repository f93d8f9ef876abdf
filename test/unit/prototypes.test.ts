import { spawnSync } from 'node:child_process';
import { expect, test } from 'vitest';

/**
 * In a child with V8's natives syntax (the only way to ask V8 whether an object has fast
 * properties), against the built module (`npm test` builds dist/ before vitest runs).
 */
function inChild(body: string): string {
  const mod = new URL('../../dist/prototypes.js', import.meta.url).href;
  const r = spawnSync(process.execPath, ['--allow-natives-syntax', '--input-type=module', '-e', `import { keepPrimitivePrototypesFast } from ${JSON.stringify(mod)};\n${body}`], { encoding: 'utf8' });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  return r.stdout.trim();
}

const V8_11 = process.versions.v8.startsWith('11.');
const FAST = 'const fast = () => [String, Number, Boolean, Symbol, BigInt].map((c) => %HasFastProperties(c.prototype));';

test('a class extending String leaves String.prototype slow, and keepPrimitivePrototypesFast makes it fast again', () => {
  const out = inChild(`${FAST}
    const before = fast();
    class Verbatim extends String {}
    class Num extends Number {}
    void [Verbatim, Num];
    const slowed = fast();
    keepPrimitivePrototypesFast();
    console.log(JSON.stringify({ before, slowed, after: fast() }));`);
  const { before, slowed, after } = JSON.parse(out) as Record<string, boolean[]>;
  expect(before).toEqual([true, true, true, true, true]);
  // Node 20's V8 (11.x) has the behaviour the fix works around; a later V8 may not.
  if (V8_11) expect(slowed?.slice(0, 2)).toEqual([false, false]);
  expect(after).toEqual([true, true, true, true, true]);
});

test('portier loaded (ioredis included) leaves String.prototype slow until keepPrimitivePrototypesFast runs', () => {
  const server = new URL('../../dist/server.js', import.meta.url).href;
  const out = inChild(`${FAST}
    await import('ioredis');
    await import(${JSON.stringify(server)});
    const loaded = fast()[0];
    keepPrimitivePrototypesFast();
    console.log(JSON.stringify({ loaded, started: fast()[0] }));`);
  // ioredis 6 defines \`class VerbatimString extends String\`: without the fix strings stay slow.
  const { loaded, started } = JSON.parse(out) as { loaded: boolean; started: boolean };
  if (V8_11) expect(loaded).toBe(false);
  expect(started).toBe(true);
});
