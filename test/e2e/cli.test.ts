/**
 * The `portier` command as an operator runs it: --help, check-config (valid, invalid, secrets
 * masked), serve answering an IMAP greeting, SIGTERM exiting 0, a busy port refused cleanly.
 */
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { LineClient } from '../support/lines.js';
import { freePort } from '../support/ports.js';
import { runPortierBin } from '../support/portier.js';
import { makeTempDir } from '../support/tmp.js';

async function configFile(text: string): Promise<string> {
  const dir = await makeTempDir('portier-cli-');
  writeFileSync(join(dir, 'users'), 'alice:{PLAIN}pw::::::proxy=y host=127.0.0.2 nopassword=y\n');
  const file = join(dir, 'portier.yaml');
  writeFileSync(file, text.replaceAll('{{dir}}', dir));
  return file;
}

const base = (port: number) => `
protocols: imap
listen: 127.0.0.1
ssl: no
service:
  imap-login:
    inet_listener:
      imap: { port: ${port} }
      imaps: { port: 0 }
passdb:
  - driver: passwd-file
    args: scheme=PLAIN {{dir}}/users
`;

describe('portier command', () => {
  test('npx portier runs this package (its bin is linked by npm ci)', async () => {
    const root = new URL('../../', import.meta.url).pathname;
    const out = await new Promise<string>((resolve, reject) => {
      execFile('npx', ['--no-install', 'portier', '--version'], { cwd: root, timeout: 30_000 }, (err, stdout) => (err ? reject(err) : resolve(stdout)));
    });
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    expect(out.trim()).toBe(pkg.version);
  });

  test('--help lists the verbs', async () => {
    const p = runPortierBin(['--help']);
    expect(await p.exited).toBe(0);
    expect(p.stdout()).toMatch(/serve/);
    expect(p.stdout()).toMatch(/check-config/);
  });

  test('check-config accepts the embedded default configuration', async () => {
    const p = runPortierBin(['check-config'], { PORTIER_CONFIG: '' });
    expect(await p.exited).toBe(0);
    expect(p.stdout()).toMatch(/conf\/portier\.yaml/);
    expect(p.stdout()).toMatch(/login_proxy_timeout: 30s/);
    expect(p.stderr()).toMatch(/is valid/);
  });

  test('check-config refuses a malformed file with file, line and key path, without a stack trace', async () => {
    const file = await configFile(`${base(143)}login_timeout: forever\nssl_min_protocol: SSLv3\nbogus_key: 1\n`);
    const p = runPortierBin(['check-config', '-c', file]);
    expect(await p.exited).toBe(1);
    const err = p.stderr();
    expect(err).toContain(`${file}:13: login_timeout: expected a duration`);
    expect(err).toContain(`${file}:14: ssl_min_protocol:`);
    expect(err).toContain(`${file}:15: bogus_key: unknown setting`);
    expect(err).not.toMatch(/\n\s+at /);
  });

  test('check-config masks secrets', async () => {
    const file = await configFile(`${base(143)}  - driver: static\n    args: proxy=y host=10.0.0.1 master=m pass=TopSecret99\n    master: no\nssl_key_password: AlsoSecret77\n`);
    const p = runPortierBin(['check-config', '-c', file]);
    expect(await p.exited).toBe(0);
    expect(p.stdout()).not.toMatch(/TopSecret99|AlsoSecret77/);
    expect(p.stdout()).toMatch(/pass=\*{8}/);
    expect(p.stdout()).toMatch(/ssl_key_password: "?\*{8}/);
  });

  test.each(['SIGTERM', 'SIGINT'] as const)('serve answers an IMAP greeting and exits 0 on %s', async (signal) => {
    const port = await freePort();
    const file = await configFile(base(port));
    const p = runPortierBin(['serve', '-c', file]);
    let c: LineClient | undefined;
    for (let i = 0; i < 100 && c === undefined; i++) {
      c = await LineClient.connect(port).catch(async () => {
        await new Promise((r) => setTimeout(r, 50));
        return undefined;
      });
    }
    expect(c).toBeDefined();
    expect(await c?.line()).toMatch(/^\* OK \[CAPABILITY IMAP4rev1 .*\] portier ready\.$/);
    p.child.kill(signal);
    expect(await p.exited).toBe(0);
    await c?.waitClosed();
    const lines = p.stdout().trim().split('\n').map((l) => JSON.parse(l) as { msg: string });
    expect(lines.map((l) => l.msg)).toEqual(expect.arrayContaining(['portier started', 'shutting down', 'stopped']));
  });

  test('a port already in use is refused with one clear message', async () => {
    const busy = createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
    const port = (busy.address() as { port: number }).port;
    const file = await configFile(base(port));
    const p = runPortierBin(['serve', '-c', file]);
    expect(await p.exited).toBe(1);
    expect(p.stderr()).toMatch(new RegExp(`cannot start: cannot listen on 127\\.0\\.0\\.1:${port} .*EADDRINUSE`));
    busy.close();
  });
});
