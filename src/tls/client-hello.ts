/**
 * Reading the client's TLS ClientHello before the handshake starts, for its server name (SNI,
 * RFC 6066 §3). Node's SNICallback can switch to a context with only ONE certificate (it copies
 * the context's current certificate), so an RSA+ECDSA pair per name needs the context chosen
 * up front. The bytes are put back unread; the TLS stack then reads them as usual.
 */
import type { Socket } from 'node:net';

/** RFC 8446 §5.1: a plaintext record carries at most 2^14 bytes. */
const MAX_RECORD = 16_384;
/** A ClientHello larger than this is refused (post-quantum key shares make them ~2 KiB). */
export const MAX_CLIENT_HELLO_BYTES = 64 * 1024;

export type HelloParse =
  | { readonly status: 'need-more' }
  | { readonly status: 'ok'; readonly serverName: string | undefined }
  | { readonly status: 'invalid'; readonly reason: string };

const invalid = (reason: string): HelloParse => ({ status: 'invalid', reason });

/** Parse the ClientHello at the start of `buf` (it may span several handshake records). */
export function parseClientHello(buf: Buffer): HelloParse {
  const parts: Buffer[] = [];
  let have = 0;
  let need: number | undefined;
  let off = 0;
  while (need === undefined || have < need) {
    if (buf.length < off + 5) return { status: 'need-more' };
    if (buf[off] !== 22) return invalid('not a TLS handshake record');
    if (buf[off + 1] !== 3) return invalid('not a TLS record version');
    const len = buf.readUInt16BE(off + 3);
    if (len === 0 || len > MAX_RECORD) return invalid('bad TLS record length');
    if (buf.length < off + 5 + len) return { status: 'need-more' };
    parts.push(buf.subarray(off + 5, off + 5 + len));
    have += len;
    off += 5 + len;
    if (need === undefined && have >= 4) {
      const head = Buffer.concat(parts).subarray(0, 4);
      if (head[0] !== 1) return invalid('the first handshake message is not a ClientHello');
      need = 4 + head.readUIntBE(1, 3);
      if (need > MAX_CLIENT_HELLO_BYTES) return invalid('ClientHello too large');
    }
  }
  return serverNameOf(Buffer.concat(parts).subarray(4, need));
}

/** RFC 8446 §4.1.2 ClientHello body → the first host_name of the server_name extension. */
function serverNameOf(m: Buffer): HelloParse {
  const bad = invalid('malformed ClientHello');
  let p = 2 + 32; // legacy_version, random
  if (m.length < p + 1) return bad;
  p += 1 + (m[p] ?? 0); // legacy_session_id
  if (m.length < p + 2) return bad;
  p += 2 + m.readUInt16BE(p); // cipher_suites
  if (m.length < p + 1) return bad;
  p += 1 + (m[p] ?? 0); // legacy_compression_methods
  if (p === m.length) return { status: 'ok', serverName: undefined }; // no extensions (TLS 1.2 allows it)
  if (m.length < p + 2) return bad;
  const end = p + 2 + m.readUInt16BE(p);
  if (end > m.length) return bad;
  p += 2;
  while (p + 4 <= end) {
    const type = m.readUInt16BE(p);
    const len = m.readUInt16BE(p + 2);
    p += 4;
    if (p + len > end) return bad;
    if (type === 0) return hostName(m.subarray(p, p + len));
    p += len;
  }
  return p === end ? { status: 'ok', serverName: undefined } : bad;
}

function hostName(ext: Buffer): HelloParse {
  if (ext.length < 2 || ext.readUInt16BE(0) !== ext.length - 2) return invalid('malformed server_name extension');
  let p = 2;
  while (p + 3 <= ext.length) {
    const type = ext[p];
    const len = ext.readUInt16BE(p + 1);
    p += 3;
    if (p + len > ext.length) return invalid('malformed server_name extension');
    if (type === 0) {
      // RFC 6066 §3: an ASCII host name. Other bytes become `?`, which no certificate name contains.
      const name = ext.subarray(p, p + Math.min(len, 256)).toString('latin1').replace(/[^\x21-\x7e]/g, '?');
      return { status: 'ok', serverName: name === '' ? '?' : name };
    }
    p += len;
  }
  return { status: 'ok', serverName: undefined };
}

export type HelloRead =
  | { readonly kind: 'hello'; readonly serverName: string | undefined }
  /** Not a (parsable) ClientHello: the TLS stack gets the bytes and refuses them itself. */
  | { readonly kind: 'unparsed'; readonly reason: string }
  | { readonly kind: 'closed' };

/**
 * Read from `socket` until a whole ClientHello is there, then pause it and put every byte back
 * (`unshift`), so a TLSSocket made next reads the handshake from the start. Bounded by size
 * here and by the session's login timer in time.
 */
export function readClientHello(socket: Socket): Promise<HelloRead> {
  return new Promise((resolve) => {
    let buf: Buffer = Buffer.alloc(0);
    let done = false;
    const finish = (r: HelloRead): void => {
      if (done) return;
      done = true;
      socket.off('data', onData);
      socket.off('end', onClosed);
      socket.off('close', onClosed);
      socket.pause();
      if (r.kind !== 'closed' && buf.length > 0) socket.unshift(buf);
      resolve(r);
    };
    const onData = (chunk: Buffer): void => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      const p = parseClientHello(buf);
      if (p.status === 'ok') finish({ kind: 'hello', serverName: p.serverName });
      else if (p.status === 'invalid') finish({ kind: 'unparsed', reason: p.reason });
      else if (buf.length > MAX_CLIENT_HELLO_BYTES + 1024) finish({ kind: 'unparsed', reason: 'ClientHello too large' });
    };
    const onClosed = (): void => finish({ kind: 'closed' });
    socket.on('data', onData);
    socket.once('end', onClosed);
    socket.once('close', onClosed);
    // Flowing mode, not 'readable': removing a 'readable' listener makes Node resume a socket that
    // once had 'data' listeners, and bytes would flow to nobody. Resumed after the current call
    // stack, since the command loop pauses the socket right after starting an upgrade.
    queueMicrotask(() => {
      if (!done) socket.resume();
    });
  });
}

/** A fatal `unrecognized_name` alert (RFC 6066 §3, RFC 8446 §6.2), sent before any ServerHello. */
export const ALERT_UNRECOGNIZED_NAME = Buffer.from([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x70]);
