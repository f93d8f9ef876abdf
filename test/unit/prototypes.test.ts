import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { freePort } from '../support/ports.js';
import { makeTempDir, removeTempDir } from '../support/tmp.js';

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

test('Portier.start leaves String.prototype fast in a process that loaded ioredis', async () => {
  const dir = await makeTempDir('portier-proto-');
  try {
    const conf = join(dir, 'portier.yaml');
    writeFileSync(
      conf,
      `protocols: imap\nlisten: 127.0.0.1\nworkers: 1\nadmin_socket: ""\nlog_level: error\nssl: no\n` +
        `service:\n  imap-login:\n    inet_listener:\n      imap: { port: ${await freePort('127.0.0.1')} }\n` +
        `passdb:\n  - driver: static\n    args: proxy=y host=127.0.0.1 nopassword=y\n`,
    );
    const dist = (f: string): string => JSON.stringify(new URL(`../../dist/${f}`, import.meta.url).href);
    const out = inChild(`
      import { readFileSync } from 'node:fs';
      const { parseConfig } = await import(${dist('config/load.js')});
      const { createLogger } = await import(${dist('telemetry/log.js')});
      const { Portier } = await import(${dist('server.js')});
      await import('ioredis');
      const loaded = %HasFastProperties(String.prototype);
      const p = new Portier(parseConfig(readFileSync(${JSON.stringify(conf)}, 'utf8'), ${JSON.stringify(conf)}), createLogger({ level: 'error', instance: 't' }));
      await p.start();
      const started = %HasFastProperties(String.prototype);
      await p.stop(100);
      console.log(JSON.stringify({ loaded, started, listeners: p.addresses().length }));`);
    const r = JSON.parse(out) as { loaded: boolean; started: boolean };
    if (V8_11) expect(r.loaded).toBe(false);
    expect(r.started).toBe(true);
  } finally {
    await removeTempDir(dir);
  }
});
