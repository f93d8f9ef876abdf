import { createServer, Socket, type AddressInfo } from 'node:net';
import { expect, test } from 'vitest';
import { connectTcp, SOCKET_CONSTRUCTOR_DEFAULTS } from '../../../src/backend/connect.js';
import { Deadline } from '../../../src/backend/deadline.js';

/**
 * What Node's Socket constructor assigns to its spread copy of the options
 * (`options = { ...options }`, then `options.x = literal;`), read from the running Node's source.
 */
function constructorAssignments(): Map<string, string> {
  const src = Socket.toString();
  const copy = src.indexOf('options = { ...options }');
  expect(copy).toBeGreaterThan(0);
  const duplexCall = src.indexOf('Duplex.call(this, options)', copy);
  expect(duplexCall).toBeGreaterThan(copy);
  const out = new Map<string, string>();
  for (const m of src.slice(copy, duplexCall).matchAll(/options\.(\w+) = ([^;]+);/g)) out.set(m[1] as string, (m[2] as string).trim());
  return out;
}

test('the backend connect options carry every property Node adds to its copy, with the value Node gives it', () => {
  const assigned = constructorAssignments();
  // Node 20: allowHalfOpen (from the caller's value), emitClose, autoDestroy, decodeStrings.
  expect([...assigned.keys()].sort()).toEqual(Object.keys(SOCKET_CONSTRUCTOR_DEFAULTS).sort());
  for (const [key, value] of assigned) {
    const ours = SOCKET_CONSTRUCTOR_DEFAULTS[key as keyof typeof SOCKET_CONSTRUCTOR_DEFAULTS];
    // allowHalfOpen is computed from the caller's option (Boolean(options.allowHalfOpen)): portier wants it on.
    if (key === 'allowHalfOpen') expect(ours).toBe(true);
    else expect(String(ours)).toBe(value);
  }
});

test('a backend socket from connectTcp is half-open capable, destroys itself when done and keeps writes as bytes', async () => {
  const server = createServer({ allowHalfOpen: true }, (s) => s.end('hi\r\n'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  const deadline = new Deadline(5000);
  try {
    const socket = await connectTcp({ host: '127.0.0.1', address: '127.0.0.1', port, sourceIp: '' }, deadline);
    expect(socket.allowHalfOpen).toBe(true);
    expect(socket.writableObjectMode).toBe(false);
    const w = (socket as unknown as { _writableState: { autoDestroy: boolean; decodeStrings: boolean; emitClose: boolean } })._writableState;
    expect(w).toMatchObject({ autoDestroy: true, decodeStrings: false, emitClose: false });
    const got: Buffer[] = [];
    socket.on('data', (d: Buffer) => got.push(d));
    await new Promise((r) => socket.once('end', r));
    expect(Buffer.concat(got).toString()).toBe('hi\r\n');
    // Half-open: our side is still writable after the peer's FIN until we end it.
    expect(socket.writable).toBe(true);
    socket.end();
    await new Promise((r) => socket.once('close', r));
    expect(socket.destroyed).toBe(true);
  } finally {
    deadline.clear();
    server.close();
  }
});
