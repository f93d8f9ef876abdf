/**
 * One TCP server per listener address: accept, learn the peer, implicit TLS when the listener
 * says so, then hand the connection to the protocol front-end. Errors on one connection stay
 * on that connection.
 */
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import type { ListenerSpec } from '../config/load.js';
import { errorText, PortierError } from '../errors.js';
import { ClientSession, type PeerFacts } from '../login/session.js';
import type { Runtime } from '../login/runtime.js';
import { publishConnection } from '../telemetry/events.js';

export interface ProtocolFrontend {
  readonly protocol: ListenerSpec['protocol'];
  /** ALPN id announced on implicit-TLS listeners (ALPACA defence: only our own). */
  readonly alpn: string;
  /** Take over a connection whose TLS (if implicit) is up. */
  start(session: ClientSession): void;
  /** The polite goodbye for a pre-login client (shutdown, or login_timeout ran out). */
  goodbye(session: ClientSession, why: 'shutdown' | 'timeout'): string;
}

export interface BoundListener {
  readonly spec: ListenerSpec;
  readonly address: string;
  readonly port: number;
  readonly server: Server;
}

/** IPv4-mapped IPv6 addresses (dual-stack sockets) are shown and matched as IPv4. */
export function normalizeIp(ip: string | undefined): string {
  if (ip === undefined) return '';
  return ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip;
}

export async function bindListener(
  spec: ListenerSpec,
  address: string,
  getRuntime: () => Runtime,
  frontend: ProtocolFrontend,
  onSession: (s: ClientSession) => void,
): Promise<BoundListener> {
  const host = address === '*' ? '0.0.0.0' : address;
  const server = createServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
    try {
      accept(spec, socket, getRuntime(), frontend, onSession);
    } catch (err) {
      getRuntime().log.error({ err: errorText(err), listener: spec.name }, 'cannot accept connection');
      socket.destroy();
    }
  });
  server.on('error', (err) => getRuntime().log.error({ err: errorText(err), listener: spec.name }, 'listener error'));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port: spec.port, ipv6Only: host === '::', backlog: 1024 }, () => {
      server.off('error', reject);
      resolve();
    });
  }).catch((err: unknown) => {
    throw new PortierError('LISTEN_FAILED', `cannot listen on ${host}:${spec.port} (${spec.service} ${spec.name}): ${errorText(err)}`, { cause: err });
  });
  const bound = server.address() as AddressInfo;
  return { spec, address: bound.address, port: bound.port, server };
}

function accept(spec: ListenerSpec, socket: Socket, runtime: Runtime, frontend: ProtocolFrontend, onSession: (s: ClientSession) => void): void {
  if (socket.remoteAddress === undefined) {
    socket.destroy();
    return;
  }
  const peer: PeerFacts = {
    remoteIp: normalizeIp(socket.remoteAddress),
    remotePort: socket.remotePort ?? 0,
    localIp: normalizeIp(socket.localAddress),
    localPort: socket.localPort ?? 0,
    realRemoteIp: normalizeIp(socket.remoteAddress),
    realRemotePort: socket.remotePort ?? 0,
    realLocalIp: normalizeIp(socket.localAddress),
    realLocalPort: socket.localPort ?? 0,
  };
  socket.on('error', () => {});
  publishConnection({ protocol: spec.protocol, listener: spec.name });
  const session = new ClientSession(runtime, spec, socket, peer);
  onSession(session);
  session.startLoginTimer(() => session.close('login_timeout', 'Disconnected: inactivity during login', frontend.goodbye(session, 'timeout')));
  if (!spec.ssl) {
    frontend.start(session);
    return;
  }
  session.state = 'tls-handshake';
  const tlsSocket = new TLSSocket(socket, runtime.tls.serverOptions(spec, [frontend.alpn]));
  tlsSocket.on('error', () => {});
  session.socket = tlsSocket;
  void session.awaitHandshake(tlsSocket).then((ok) => {
    if (ok) frontend.start(session);
  });
}
