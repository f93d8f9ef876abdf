/**
 * The ClientHello reader: real ClientHellos (captured from Node's and python's TLS clients on a
 * raw socket) whole, byte by byte and at random split points, one split across two TLS records,
 * and inputs that are not a ClientHello.
 */
import { execFile } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { connect } from 'node:tls';
import fc from 'fast-check';
import { beforeAll, describe, expect, test } from 'vitest';
import { parseClientHello } from '../../../src/tls/client-hello.js';

/** The first bytes a TLS client sends to a server that never answers. */
async function capture(client: (port: number) => void): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const server = createServer((s) => {
      let buf = Buffer.alloc(0);
      s.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        if (parseClientHello(buf).status !== 'need-more') {
          s.destroy();
          server.close();
          resolve(buf);
        }
      });
    });
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => client((server.address() as AddressInfo).port));
  });
}

let nodeNamed: Buffer;
let nodeBare: Buffer;
let python: Buffer;

beforeAll(async () => {
  nodeNamed = await capture((port) => connect({ port, host: '127.0.0.1', servername: 'Mail.Example.org', rejectUnauthorized: false }).on('error', () => {}));
  nodeBare = await capture((port) => connect({ port, host: '127.0.0.1', rejectUnauthorized: false }).on('error', () => {}));
  python = await capture((port) => {
    const py = `import socket,ssl\nc=ssl.create_default_context()\ntry:\n  c.wrap_socket(socket.create_connection(('127.0.0.1',${port})),server_hostname='imap.example.net')\nexcept Exception: pass`;
    execFile('python3', ['-c', py], { timeout: 10_000 }, () => {});
  });
});

describe('real ClientHellos', () => {
  test('the server name is read from Node and python clients; none when the client sends none', () => {
    expect(parseClientHello(nodeNamed)).toEqual({ status: 'ok', serverName: 'Mail.Example.org' });
    expect(parseClientHello(python)).toEqual({ status: 'ok', serverName: 'imap.example.net' });
    // Node sends no SNI for an IP host (RFC 6066 §3).
    expect(parseClientHello(nodeBare)).toEqual({ status: 'ok', serverName: undefined });
  });

  test('every prefix needs more bytes, byte by byte', () => {
    for (let n = 0; n < python.length; n++) expect(parseClientHello(python.subarray(0, n)).status).toBe('need-more');
  });

  test('trailing bytes after the ClientHello do not matter', () => {
    expect(parseClientHello(Buffer.concat([nodeNamed, Buffer.from('junk after')]))).toEqual({ status: 'ok', serverName: 'Mail.Example.org' });
  });

  test('a ClientHello split across two handshake records (RFC 8446 §5.1) is put together', () => {
    const body = nodeNamed.subarray(5);
    const cut = 40;
    const record = (b: Buffer): Buffer => Buffer.concat([Buffer.from([22, 3, 1, b.length >> 8, b.length & 0xff]), b]);
    const two = Buffer.concat([record(body.subarray(0, cut)), record(body.subarray(cut))]);
    expect(parseClientHello(two)).toEqual({ status: 'ok', serverName: 'Mail.Example.org' });
    expect(parseClientHello(two.subarray(0, 5 + cut + 3)).status).toBe('need-more');
  });

  test('any split point gives the same answer once the bytes are all there (fast-check)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: python.length }), (cut) => {
        const head = parseClientHello(python.subarray(0, cut));
        expect(head.status).toBe(cut === python.length ? 'ok' : 'need-more');
        expect(parseClientHello(Buffer.concat([python.subarray(0, cut), python.subarray(cut)]))).toEqual({ status: 'ok', serverName: 'imap.example.net' });
      }),
    );
  });
});

describe('not a ClientHello', () => {
  test.each([
    ['plaintext IMAP', Buffer.from('a LOGIN alice secret\r\n'), 'not a TLS handshake record'],
    ['an HTTP request', Buffer.from('GET / HTTP/1.1\r\n\r\n'), 'not a TLS handshake record'],
    ['a TLS alert record', Buffer.from([21, 3, 3, 0, 2, 2, 40]), 'not a TLS handshake record'],
    ['a zero-length record', Buffer.from([22, 3, 1, 0, 0]), 'bad TLS record length'],
    ['an oversized record', Buffer.from([22, 3, 1, 0x40, 0x01]), 'bad TLS record length'],
    ['a ServerHello', Buffer.from([22, 3, 3, 0, 4, 2, 0, 0, 0]), 'the first handshake message is not a ClientHello'],
    ['a ClientHello claiming 16 MiB', Buffer.from([22, 3, 1, 0, 4, 1, 0xff, 0xff, 0xff]), 'ClientHello too large'],
  ])('%s', (_what, bytes, reason) => {
    expect(parseClientHello(bytes)).toEqual({ status: 'invalid', reason });
  });

  test('a truncated body inside a complete record is malformed, not a wait', () => {
    const body = Buffer.from([1, 0, 0, 3, 3, 3, 0]);
    expect(parseClientHello(Buffer.concat([Buffer.from([22, 3, 1, 0, body.length]), body]))).toEqual({ status: 'invalid', reason: 'malformed ClientHello' });
  });

  test('a server name with control bytes becomes one no certificate matches', () => {
    const name = Buffer.from('evil\u0000.example.org', 'latin1');
    const sni = Buffer.concat([Buffer.from([0, 0]), u16(name.length + 5), u16(name.length + 3), Buffer.from([0]), u16(name.length), name]);
    const body = Buffer.concat([Buffer.from([3, 3]), Buffer.alloc(32), Buffer.from([0]), u16(2), Buffer.from([0x13, 0x01]), Buffer.from([1, 0]), u16(sni.length), sni]);
    const hs = Buffer.concat([Buffer.from([1, 0, body.length >> 8, body.length & 0xff]), body]);
    const rec = Buffer.concat([Buffer.from([22, 3, 1]), u16(hs.length), hs]);
    expect(parseClientHello(rec)).toEqual({ status: 'ok', serverName: 'evil?.example.org' });
  });
});

function u16(n: number): Buffer {
  return Buffer.from([n >> 8, n & 0xff]);
}
