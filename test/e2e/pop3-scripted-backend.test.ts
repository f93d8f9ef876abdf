/**
 * A scripted POP3 backend, for what a real one will not do on cue: it goes away under a
 * proxied session (the client gets a last `-ERR [SYS/TEMP]` and is closed, unless the
 * backend's last words were a status line of its own), and it refuses logins with texts a
 * non-Dovecot server might use (relayed only for [IN-USE] / [LOGIN-DELAY]).
 */
import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { greeted } from '../support/clients.js';
import { passdbEntry, testConfig } from '../support/config.js';
import type { LineClient } from '../support/lines.js';
import { startPortier, type RunningPortier } from '../support/portier.js';

let backend: Server;
let px: RunningPortier;

/** What the backend answers PASS for these users. */
const REFUSALS: Record<string, string> = {
  locked: '-ERR [IN-USE] Mailbox is locked by another session.\r\n',
  delayed: '-ERR [LOGIN-DELAY] Wait 5 minutes between logins.\r\n',
  gone: '-ERR No such user "gone" here, try mx2\r\n',
  perm: '-ERR [SYS/PERM] Account gone since 2019 (ticket 4711)\r\n',
};

/** +OK to everything; STAT kills the connection mid-session; QUIT answers and closes. */
function serve(socket: Socket): void {
  socket.on('error', () => {});
  socket.write('+OK scripted ready.\r\n');
  let buf = '';
  let user = '';
  socket.on('data', (d: Buffer) => {
    buf += d.toString('latin1');
    for (let lf = buf.indexOf('\n'); lf >= 0; lf = buf.indexOf('\n')) {
      const line = buf.slice(0, lf).replace(/\r$/, '').toUpperCase();
      buf = buf.slice(lf + 1);
      if (line === 'CAPA') socket.write('+OK\r\nUSER\r\n.\r\n');
      else if (line === 'STAT') socket.destroy();
      else if (line === 'QUIT') socket.end('+OK Logging out.\r\n');
      else if (line.startsWith('USER ')) {
        user = line.slice(5).toLowerCase();
        socket.write('+OK\r\n');
      } else if (line.startsWith('PASS')) socket.write(REFUSALS[user] ?? '+OK Logged in.\r\n');
      else socket.write('+OK\r\n');
    }
  });
}

beforeAll(async () => {
  backend = createServer(serve);
  await new Promise<void>((r) => backend.listen(0, '127.0.0.2', r));
  const port = (backend.address() as { port: number }).port;
  px = await startPortier(testConfig(['pop3'], { passdb: passdbEntry('static', { args: `proxy=y host=127.0.0.2 port=${port} nopassword=y` }) }));
});

afterAll(async () => {
  await px?.stop();
  backend?.close();
});

async function loggedIn(): Promise<LineClient> {
  const c = await greeted(px, 'pop3');
  expect(c.greeting).toBe('+OK portier ready.');
  c.write('USER u\r\nPASS p\r\n');
  expect(await c.line()).toBe('+OK');
  expect(await c.line()).toBe('+OK Logged in.');
  return c;
}

test('the backend dies mid-session: the client gets -ERR [SYS/TEMP] and is closed', async () => {
  const c = await loggedIn();
  c.write('STAT\r\n');
  expect(await c.line()).toBe('-ERR [SYS/TEMP] Server disconnected.');
  await c.waitClosed();
  const ended = await px.waitForLog((l) => l.reason === 'backend_closed');
  expect(ended.msg).toBe('Disconnected by server');
});

test('the backend answers QUIT and closes: no extra line after its +OK', async () => {
  const c = await loggedIn();
  c.write('QUIT\r\n');
  expect(await c.line()).toBe('+OK Logging out.');
  await c.waitClosed();
  expect(c.pending()).toBe('');
});

test('backend refusals: [IN-USE] and [LOGIN-DELAY] relayed, anything else generic (no user enumeration)', async () => {
  const c = await greeted(px, 'pop3');
  expect(c.greeting).toBe('+OK portier ready.');
  const tryLogin = async (u: string): Promise<string> => {
    c.write(`USER ${u}\r\nPASS p\r\n`);
    expect(await c.line()).toBe('+OK');
    return c.line();
  };
  expect(await tryLogin('locked')).toBe('-ERR [IN-USE] Mailbox is locked by another session.');
  expect(await tryLogin('delayed')).toBe('-ERR [LOGIN-DELAY] Wait 5 minutes between logins.');
  expect(await tryLogin('gone')).toBe('-ERR [AUTH] Authentication failed.');
  expect(await tryLogin('perm')).toBe('-ERR [SYS/PERM] Account is not available.');
  // The client may go on on the same connection.
  expect(await tryLogin('fine')).toBe('+OK Logged in.');
  c.close();
  const why = await px.waitForLog((l) => typeof l.msg === 'string' && l.msg.includes('No such user'));
  expect(why.msg).toMatch(/backend refused the login/);
});
