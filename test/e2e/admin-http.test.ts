/**
 * The admin HTTP listener: probes and Prometheus metrics after real logins (curl is the
 * client, as an operator's scraper would be), with no user names or secrets in them.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { imapCommand } from '../support/clients.js';
import { testConfig } from '../support/config.js';
import { acceptingLogins, startFakeImap, type FakeImap } from '../support/fake-imap.js';
import { startPortier, type RunningPortier } from '../support/portier.js';

const run = promisify(execFile);
let fake: FakeImap;
let px: RunningPortier;

async function curl(path: string): Promise<{ status: number; body: string }> {
  const a = px.portier.adminAddress();
  const { stdout } = await run('curl', ['-s', '-w', '\n%{http_code}', `http://127.0.0.1:${a?.port}${path}`]);
  const at = stdout.lastIndexOf('\n');
  return { status: Number(stdout.slice(at + 1)), body: stdout.slice(0, at).trim() };
}

beforeAll(async () => {
  fake = await startFakeImap({ respond: acceptingLogins('in') });
  px = await startPortier(
    testConfig(['imap'], { settings: { admin_listen: '127.0.0.1:{{port}}' } }),
    { users: `alice:{PLAIN}Secret-Sentinel-1::::::proxy=y host=${fake.host} port=${fake.port}\n` },
  );
});

afterAll(async () => {
  await px?.stop();
  await fake?.close();
});

test('probes answer', async () => {
  expect(await curl('/livez')).toEqual({ status: 200, body: 'ok' });
  expect(await curl('/readyz')).toEqual({ status: 200, body: 'ready' });
  expect((await curl('/nope')).status).toBe(404);
});

test('metrics count connections, login results and backend logins, without names or secrets', async () => {
  for (const pw of ['wrong', 'Secret-Sentinel-1']) {
    const { c } = await imapCommand(px, `a LOGIN alice ${pw}`);
    c.close();
  }
  await new Promise((r) => setTimeout(r, 100));
  const { status, body } = await curl('/metrics');
  expect(status).toBe(200);
  expect(body).toMatch(/portier_connections_total\{protocol="imap",listener="imap"\} 2/);
  expect(body).toMatch(/portier_logins_total\{protocol="imap",result="failed"\} 1/);
  expect(body).toMatch(/portier_logins_total\{protocol="imap",result="proxy"\} 1/);
  expect(body).toMatch(/portier_proxy_logins_total\{protocol="imap",result="ok"\} 1/);
  expect(body).toMatch(/portier_backend_login_duration_seconds_count\{protocol="imap"\} 1/);
  expect(body).toMatch(/portier_config_last_reload_successful 1/);
  expect(body).toMatch(/portier_process_cpu_seconds_total/);
  expect(body).not.toMatch(/alice|Secret-Sentinel/);
});
