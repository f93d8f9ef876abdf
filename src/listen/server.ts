/**
 * One TCP server per listener address: accept, learn the peer, implicit TLS when the listener
 * says so, then hand the connection to the protocol front-end. Errors on one connection stay
 * on that connection.
 */
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { ListenerSpec } from '../config/load.js';
import { errorText, PortierError } from '../errors.js';
import { ClientSession, familyOf, ignoreSocketError, type PeerFacts } from '../login/session.js';
import type { Runtime } from '../login/runtime.js';
import { publishConnection } from '../telemetry/events.js';
import { readProxyHeader } from './haproxy.js';
import { PP2_CLIENT, type ProxyHeader } from './proxy-protocol.js';

export interface ProtocolFrontend {
  readonly protocol: ListenerSpec['protocol'];
  /** ALPN id announced on implicit-TLS listeners (ALPACA defence: only our own). */
  readonly alpn: string;
  /** Take over a connection whose TLS (if implicit) is up. */
  start(session: ClientSession): void;
  /**
   * The polite goodbye for a pre-login client: shutdown, login_timeout ran out, too many
   * connections from its address (login_max_preauth_per_ip), or shed/refused because
   * login_max_preauth is full.
   */
  goodbye(session: ClientSession, why: GoodbyeReason): string;
  /** On shutdown, end the session itself (LMTP lets a transaction in flight finish); default: goodbye and close. */
  shutdown?(session: ClientSession): void;
}

export type GoodbyeReason = 'shutdown' | 'timeout' | 'per-ip' | 'full';

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
  socket.on('error', ignoreSocketError);
  // tcp_keepalive is armed by the splice (a session that lasts) and by LMTP, not here: before
  // login_timeout, a vanished client costs one pre-login slot, and a login that is over in a
  // moment would pay 4 setsockopt calls per socket for nothing.
  const tcp: PeerFacts = {
    remoteIp: normalizeIp(socket.remoteAddress),
    remotePort: socket.remotePort ?? 0,
    localIp: normalizeIp(socket.localAddress),
    localPort: socket.localPort ?? 0,
    realRemoteIp: normalizeIp(socket.remoteAddress),
    realRemotePort: socket.remotePort ?? 0,
    realLocalIp: normalizeIp(socket.localAddress),
    realLocalPort: socket.localPort ?? 0,
  };
  if (!spec.haproxy) {
    begin(spec, socket, runtime, frontend, onSession, tcp, undefined);
    return;
  }
  const log = runtime.log.child({ listener: spec.name, rip: tcp.remoteIp });
  if (!runtime.haproxyTrustedNetworks.check(tcp.remoteIp, familyOf(tcp.remoteIp))) {
    // A direct client on a PROXY-or-direct listener; anyone else must not speak PROXY at all.
    if (spec.haproxyOptional) {
      begin(spec, socket, runtime, frontend, onSession, tcp, undefined);
      return;
    }
    log.warn('haproxy: client not in haproxy_trusted_networks; connection refused');
    socket.destroy();
    return;
  }
  void readProxyHeader(socket, spec.haproxyOptional ? 'optional' : 'required', runtime.config.haproxy_timeout).then((outcome) => {
    if (outcome.kind === 'refused') {
      log.warn({ problem: outcome.reason }, 'haproxy: invalid PROXY header; connection refused');
      socket.destroy();
      return;
    }
    if (outcome.rest.length > 0) socket.unshift(outcome.rest);
    if (outcome.kind === 'direct') {
      begin(spec, socket, runtime, frontend, onSession, tcp, undefined);
      return;
    }
    const h = outcome.header;
    // LOCAL (health checks) and UNKNOWN carry no client: the connection's own addresses stand.
    const peer: PeerFacts =
      h.command === 'proxy' && h.source !== undefined && h.destination !== undefined && h.family !== 'unix'
        ? {
            remoteIp: normalizeIp(h.source.address),
            remotePort: h.source.port,
            localIp: normalizeIp(h.destination.address),
            localPort: h.destination.port,
            realRemoteIp: normalizeIp(h.source.address),
            realRemotePort: h.source.port,
            realLocalIp: normalizeIp(h.destination.address),
            realLocalPort: h.destination.port,
            proxiedBy: tcp.remoteIp,
          }
        : tcp;
    begin(spec, socket, runtime, frontend, onSession, peer, h);
  });
}

/** The connection's peer is known (PROXY header read or none): start the session. */
function begin(
  spec: ListenerSpec,
  socket: Socket,
  runtime: Runtime,
  frontend: ProtocolFrontend,
  onSession: (s: ClientSession) => void,
  peer: PeerFacts,
  header: ProxyHeader | undefined,
): void {
  if (socket.destroyed) return;
  publishConnection({ protocol: spec.protocol, listener: spec.name });
  const session = new ClientSession(runtime, spec, socket, peer);
  if (header?.tlvs.ssl !== undefined && (header.tlvs.ssl.client & PP2_CLIENT.SSL) !== 0) {
    // The load balancer terminated TLS: the client's leg is encrypted (Dovecot does the same).
    session.tls = true;
    session.tlsOffloaded = true;
  }
  if (header?.tlvs.authority !== undefined) session.localName = header.tlvs.authority;
  onSession(session);
  // Refused by a connection limit: closed already, with its reply.
  if (session.ended) return;
  session.startLoginTimer(() => session.close('login_timeout', 'Disconnected: inactivity during login', frontend.goodbye(session, 'timeout')));
  if (!spec.ssl) {
    frontend.start(session);
    // The PROXY header reader paused the socket so no byte was lost; the front-end listens now.
    if (header !== undefined || spec.haproxy) socket.resume();
    return;
  }
  // Implicit TLS: the certificate by the ClientHello's server name, ALPN only the protocol's own id.
  void session.startTls([frontend.alpn], true).then((ok) => {
    if (ok) frontend.start(session);
  });
}
