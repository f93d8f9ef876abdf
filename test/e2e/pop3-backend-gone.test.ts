/**
 * A POP3 backend that goes away under a proxied session: the client gets a last
 * `-ERR [SYS/TEMP]` and is closed, unless the backend's last words were a status line of its
 * own (its QUIT answer). A scripted backend, because a real one will not die on cue.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { LineClient } from '../support/lines.js';
import { startPortier, type RunningPortier } from '../support/portier.js';

let backend: Server;
let px: RunningPortier;

/** +OK to everything; STAT kills the connection mid-session; QUIT answers and closes. */
function serve(socket: Socket): void {
  socket.on('error', () => {});
  socket.write('+OK scripted ready.\r\n');
  let buf = '';
  socket.on('data', (d: Buffer) => {
    buf += d.toString('latin1');
    for (let lf = buf.indexOf('\n'); lf >= 0; lf = buf.indexOf('\n')) {
      const line = buf.slice(0, lf).replace(/\r$/, '').toUpperCase();
      buf = buf.slice(lf + 1);
      if (line === 'CAPA') socket.write('+OK\r\nUSER\r\n.\r\n');
      else if (line === 'STAT') socket.destroy();
      else if (line === 'QUIT') socket.end('+OK Logging out.\r\n');
      else socket.write(line.startsWith('PASS') ? '+OK Logged in.\r\n' : '+OK\r\n');
    }
  });
}

beforeAll(async () => {
  backend = createServer(serve);
  await new Promise<void>((r) => backend.listen(0, '127.0.0.2', r));
  const port = (backend.address() as { port: number }).port;
  px = await startPortier(
    `
protocols: pop3
listen: 127.0.0.1
ssl: no
disable_plaintext_auth: no
auth_failure_delay: 0
service:
  pop3-login:
    inet_listener:
      pop3: { port: {{port}} }
      pop3s: { port: 0 }
passdb:
  - driver: static
    args: proxy=y host=127.0.0.2 port=${port} nopassword=y
`,
  );
});

afterAll(async () => {
  await px?.stop();
  backend?.close();
});

async function loggedIn(): Promise<LineClient> {
  const c = await LineClient.connect(px.port('pop3'), { localAddress: '127.0.0.5' });
  expect(await c.line()).toBe('+OK portier ready.');
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
