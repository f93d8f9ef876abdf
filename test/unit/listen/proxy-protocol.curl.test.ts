// Interoperability: curl --haproxy-protocol is a real PROXY v1 sender. The header it sends
// for its own connection must parse to exactly the socket's peer and local endpoints.
import { execFile, spawnSync } from 'node:child_process';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { ProxyHeaderReader, type ProxyParse } from '../../../src/listen/proxy-protocol.js';

const haveCurl = spawnSync('curl', ['--version']).status === 0;
const run = promisify(execFile);

interface Seen { result: ProxyParse; remote: { address: string; port: number }; local: { address: string; port: number } }

let server: Server | undefined;
afterEach(() => new Promise<void>((resolve) => (server === undefined ? resolve() : server.close(() => resolve()))));

/** A tiny HTTP server that reads the PROXY header, then answers 204 and closes. */
async function listen(host: string): Promise<{ port: number; seen: Promise<Seen> }> {
  let deliver: (s: Seen) => void = () => {};
  const seen = new Promise<Seen>((resolve) => (deliver = resolve));
  server = createServer((socket) => {
    const reader = new ProxyHeaderReader();
    let parsed: Extract<ProxyParse, { state: 'done' }> | undefined;
    let request = Buffer.alloc(0);
    const finish = (result: ProxyParse): void => {
      socket.off('data', onData);
      deliver({
        result,
        remote: { address: socket.remoteAddress ?? '', port: socket.remotePort ?? -1 },
        local: { address: socket.localAddress ?? '', port: socket.localPort ?? -1 },
      });
      socket.end('HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n');
    };
    // curl may send the header and the request in one segment or in two: wait for the request's end.
    const onData = (chunk: Buffer): void => {
      if (parsed === undefined) {
        const result = reader.push(chunk);
        if (result.state === 'need-more') return;
        if (result.state !== 'done') return finish(result);
        parsed = result;
        request = Buffer.from(result.rest);
      } else {
        request = Buffer.concat([request, chunk]);
      }
      if (request.includes('\r\n\r\n')) finish({ ...parsed, rest: request });
    };
    socket.on('data', onData);
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve, reject) => {
    server?.once('error', reject);
    server?.listen(0, host, () => resolve());
  });
  return { port: (server.address() as AddressInfo).port, seen };
}

async function curlThrough(host: string, urlHost: string): Promise<Seen> {
  const { port, seen } = await listen(host);
  const { stdout } = await run('curl', ['-sS', '--max-time', '10', '--haproxy-protocol', '-o', '/dev/null', '-w', '%{http_code}', `http://${urlHost}:${port}/`]);
  expect(stdout).toBe('204');
  return seen;
}

describe.skipIf(!haveCurl)('curl --haproxy-protocol', () => {
  it('TCP4 header matches the real connection, HTTP request is the rest', async () => {
    const { result, remote, local } = await curlThrough('127.0.0.1', '127.0.0.1');
    expect(result.state).toBe('done');
    if (result.state !== 'done') return;
    expect(result.header).toEqual({ version: 1, command: 'proxy', family: 'tcp4', source: remote, destination: local, tlvs: { raw: [] } });
    expect(result.rest.toString('latin1')).toMatch(/^GET \/ HTTP\/1\.1\r\n/);
  });

  it('TCP6 header over ::1 when the host has IPv6 loopback', async (ctx) => {
    const probe = createServer();
    const v6 = await new Promise<boolean>((resolve) => {
      probe.once('error', () => resolve(false));
      probe.listen(0, '::1', () => probe.close(() => resolve(true)));
    });
    if (!v6) ctx.skip();
    const { result, remote, local } = await curlThrough('::1', '[::1]');
    expect(result.state).toBe('done');
    if (result.state !== 'done') return;
    expect(result.header.family).toBe('tcp6');
    expect(result.header.source).toEqual(remote);
    expect(result.header.destination).toEqual(local);
  });
});
