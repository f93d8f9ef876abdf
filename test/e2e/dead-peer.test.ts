/**
 * R28 with real silent drops: each scenario runs in its own network namespace (`unshare -n`,
 * as root, which CI is), where one peer's address is black-holed after login: packets to it
 * vanish, no FIN, no RST, like a NAT or load balancer forgetting the flow. With
 * `tcp_keepalive: 1s` portier finds the dead leg within the keepalive time plus the probes
 * (libuv sends 10, one per second) and closes the other leg: the client gets its goodbye, or
 * the backend its FIN. portier keeps serving new logins.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { expect, test } from 'vitest';
import { makeTempDir } from '../support/tmp.js';

const run = promisify(execFile);
const BIN = new URL('../../bin/portier.js', import.meta.url).pathname;
const SCENARIO = new URL('../support/dead-peer-scenario.mjs', import.meta.url).pathname;

interface Outcome {
  mode?: string;
  noticedAfterMs?: number;
  clientGotBye?: boolean;
  stillServing?: boolean;
  portierAlive?: boolean;
  error?: string;
  log?: string;
}

async function scenario(mode: 'backend' | 'client'): Promise<Outcome> {
  const dir = await makeTempDir('portier-deadpeer-');
  const { stdout } = await run('unshare', ['-n', 'sh', '-c', `ip link set lo up && exec "${process.execPath}" "${SCENARIO}" "${BIN}" "${dir}" ${mode}`], { timeout: 90_000 });
  return JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as Outcome;
}

test('a silently dead backend or client is found by TCP keepalive and the other leg is closed', async () => {
  const [backend, client] = await Promise.all([scenario('backend'), scenario('client')]);
  for (const r of [backend, client]) {
    expect(r.error, r.log).toBeUndefined();
    // 1 s of silence, then up to 10 probes a second apart: about 11 s; never the 30 min idle limit.
    expect(r.noticedAfterMs).toBeGreaterThanOrEqual(900);
    expect(r.noticedAfterMs).toBeLessThan(20_000);
    expect(r.stillServing).toBe(true);
    expect(r.portierAlive).toBe(true);
  }
  // The client of a dead backend got the protocol's goodbye before the close.
  expect(backend.clientGotBye).toBe(true);
}, 120_000);
