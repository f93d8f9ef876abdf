/**
 * One client connection through its life: facts about the peer, named state, the pre-login
 * timer and counters, bounded pre-auth output, STARTTLS, and exactly one "session ended" line
 * with a human and a machine reason. Protocol front-ends drive it; they never log the end.
 */
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import type { ListenerSpec } from '../config/load.js';
import { errorText } from '../errors.js';
import { publishSessionEnd } from '../telemetry/events.js';
import { SessionLogger } from '../telemetry/log.js';
import { ALERT_UNRECOGNIZED_NAME, readClientHello } from '../tls/client-hello.js';
import { clientCertInfo, type ClientCertInfo } from '../tls/client-cert.js';
import type { ServerTlsOptions } from '../tls/store.js';
import type { Runtime } from './runtime.js';

export type SessionState =
  | 'proxy-header'
  | 'tls-handshake'
  | 'pre-auth'
  | 'starttls'
  | 'authenticating'
  | 'backend-login'
  | 'spliced'
  | 'closed';

/** Machine-readable reasons for the "session ended" line. */
export type EndReason =
  | 'logout'
  | 'client_disconnected'
  | 'login_timeout'
  | 'too_many_bad_commands'
  | 'too_many_auth_failures'
  /** login_max_preauth_per_ip: too many clients not logged in from this address. */
  | 'too_many_connections'
  /** login_max_preauth: refused, or shed as the oldest idle client to make room. */
  | 'connection_queue_full'
  | 'line_too_long'
  | 'literal_too_large'
  | 'protocol_error'
  | 'tls_handshake_failed'
  | 'output_overflow'
  | 'shutdown'
  | 'backend_login_failed'
  | 'client_closed'
  | 'backend_closed'
  | 'idle_timeout'
  | 'socket_error'
  | 'internal_error';

export interface PeerFacts {
  /** The client as portier sees it after PROXY headers / trusted forwarding. */
  remoteIp: string;
  remotePort: number;
  localIp: string;
  localPort: number;
  /** The TCP peer of this socket (the load balancer when PROXY was used). */
  readonly realRemoteIp: string;
  readonly realRemotePort: number;
  readonly realLocalIp: string;
  readonly realLocalPort: number;
  /** The load balancer that sent a PROXY header for this connection, if any. */
  readonly proxiedBy?: string | undefined;
}

export interface SessionInfo {
  readonly id: string;
  readonly protocol: string;
  readonly state: SessionState;
  readonly user: string | undefined;
  readonly rip: string;
  readonly tls: boolean;
  readonly backend: string | undefined;
  readonly startedAt: number;
  /** Bytes waiting in portier for the client to read. */
  readonly clientBuffered: number;
  readonly bytesFromBackend: number;
  readonly bytesToBackend: number;
}

/**
 * Errors before login surface as 'close', which the session handles. One module-level
 * function: a closure would keep its whole scope alive for the connection's life.
 */
export function ignoreSocketError(): void {}

/** Pre-auth output the client does not read is capped; past it the client is cut off. */
export const MAX_PREAUTH_OUTPUT = 64 * 1024;

export class ClientSession {
  readonly id: string;
  readonly listener: ListenerSpec;
  readonly runtime: Runtime;
  readonly peer: PeerFacts;
  readonly startedAt = Date.now();
  socket: Socket;
  state: SessionState = 'pre-auth';
  tls = false;
  /** TLS was terminated in front of portier (PROXY protocol SSL TLV). */
  tlsOffloaded = false;
  /** TLS server name the client asked for (SNI). */
  localName: string | undefined;
  /** The client's TLS certificate, when ssl_verify_client_cert asked for one. */
  clientCert: ClientCertInfo | undefined;
  badCommands = 0;
  authFailures = 0;
  user: string | undefined;
  /** Hops left before a login is taken for a loop (Dovecot's x-proxy-ttl; starts at 5). */
  proxyTtl = 5;
  /** The mail_max_userip_connections slot (protocol, remoteIp, user) this session holds, as ConnectionLimits.acquireUserIp returned it. */
  userIpSlot: string | undefined;
  #loginTimer: NodeJS.Timeout | undefined;
  #ended = false;
  #trusted: boolean | undefined;
  #log: SessionLogger | undefined;
  /** Grown by concat, not push: an idle session keeps 3 slots, not the 17 a push grows to (~110 B). */
  #onEnd: ((session: ClientSession) => void)[] = [];

  constructor(runtime: Runtime, listener: ListenerSpec, socket: Socket, peer: PeerFacts, id = newSessionId()) {
    this.runtime = runtime;
    this.listener = listener;
    this.socket = socket;
    this.peer = peer;
    this.id = id;
  }

  /** Every line carries the session id and protocol; nothing is allocated until one is written. */
  get log(): SessionLogger {
    return (this.#log ??= new SessionLogger(this.runtime.log, this.id, this.listener.protocol));
  }

  /** Trusted peers may forward client facts and count as secured (login_trusted_networks). */
  get trusted(): boolean {
    // The TCP peer and the runtime are fixed for the session's life: checked once, not per use.
    // An empty list (the default) needs no lookup: BlockList.check builds a SocketAddress each call.
    this.#trusted ??= this.runtime.config.login_trusted_networks.length > 0 && this.runtime.trustedNetworks.check(this.peer.realRemoteIp, familyOf(this.peer.realRemoteIp));
    return this.#trusted;
  }

  /** Dovecot's "secured": TLS, a trusted network, or a connection from the host itself. */
  get secured(): boolean {
    return this.tls || this.trusted || this.peer.realRemoteIp === this.peer.realLocalIp;
  }

  get ended(): boolean {
    return this.#ended;
  }

  /**
   * Run `fn` when the session ends. Pass a function shared by all sessions (it gets the
   * session): a closure per session is kept for the session's whole life. Added once per fn.
   */
  onEnd(fn: (session: ClientSession) => void): void {
    if (!this.#onEnd.includes(fn)) this.#onEnd = [...this.#onEnd, fn];
  }

  startLoginTimer(onTimeout: () => void): void {
    this.#loginTimer = setTimeout(onTimeout, this.runtime.config.login_timeout);
    this.#loginTimer.unref();
  }

  stopLoginTimer(): void {
    if (this.#loginTimer !== undefined) clearTimeout(this.#loginTimer);
    this.#loginTimer = undefined;
  }

  /** Pre-auth write; a client that stops reading its replies is disconnected, not buffered for. */
  write(data: string | Buffer): void {
    if (this.#ended || this.socket.destroyed) return;
    this.socket.write(data);
    if (this.socket.writableLength > MAX_PREAUTH_OUTPUT) this.close('output_overflow', 'Disconnected: output buffer full');
  }

  /**
   * Put the client leg under TLS: implicit TLS (`implicit`) or after STARTTLS/STLS, whose caller
   * has already discarded any input pipelined after the command, so nothing sent in plaintext
   * is read after the handshake. When the server name decides the certificate, the ClientHello
   * is read first to pick it (client-hello.ts); otherwise the TLS stack reads it as a plain
   * `node:tls` server would. False (and the session closed) when the handshake does not complete.
   */
  async startTls(alpn: readonly string[] | undefined, implicit = false): Promise<boolean> {
    const raw = this.socket;
    raw.removeAllListeners('data');
    this.state = implicit ? 'tls-handshake' : 'starttls';
    const tls = this.runtime.tls;
    let serverName: string | undefined;
    if (tls.namesMatter) {
      const hello = await readClientHello(raw);
      if (hello.kind === 'closed' || this.#ended) {
        this.close('tls_handshake_failed', 'Disconnected: closed before the TLS handshake');
        return false;
      }
      if (hello.kind === 'hello') serverName = hello.serverName;
      else this.log.debug({ problem: hello.reason }, 'TLS: ClientHello not understood; the TLS stack decides');
    }
    if (tls.contextFor(serverName, this.listener) === undefined) {
      // ssl_sni_strict: no certificate is shown for a name we do not serve.
      this.log.info({ sni: serverName?.slice(0, 100) }, 'TLS handshake refused: no certificate for this server name (ssl_sni_strict)');
      raw.write(ALERT_UNRECOGNIZED_NAME);
      this.close('tls_handshake_failed', 'Disconnected: unknown TLS server name');
      return false;
    }
    return this.#handshake(raw, tls.serverOptions(this.listener, alpn, serverName));
  }

  #handshake(raw: Socket, options: ServerTlsOptions): Promise<boolean> {
    const tlsSocket = new TLSSocket(raw, options);
    // Errors after the handshake surface as 'close'; without a listener they would be thrown.
    tlsSocket.on('error', ignoreSocketError);
    this.socket = tlsSocket;
    return this.awaitHandshake(tlsSocket);
  }

  /** Wait for a server-side TLS handshake; record SNI; false (and the session closed) on failure. */
  async awaitHandshake(tlsSocket: TLSSocket): Promise<boolean> {
    const ok = await new Promise<boolean>((resolve) => {
      const fail = (err?: Error): void => {
        tlsSocket.off('secure', done);
        tlsSocket.off('error', fail);
        tlsSocket.off('close', closed);
        this.log.info({ err: err ? errorText(err) : 'closed during handshake' }, 'TLS handshake failed');
        resolve(false);
      };
      const closed = (): void => fail();
      const done = (): void => {
        tlsSocket.off('error', fail);
        tlsSocket.off('close', closed);
        resolve(true);
      };
      tlsSocket.once('secure', done);
      tlsSocket.once('error', fail);
      tlsSocket.once('close', closed);
    });
    if (!ok) {
      this.close('tls_handshake_failed', 'Disconnected: TLS handshake failed');
      return false;
    }
    this.tls = true;
    const sni = (tlsSocket as TLSSocket & { servername?: string | false }).servername;
    this.localName = typeof sni === 'string' && sni !== '' ? sni : undefined;
    const config = this.runtime.config;
    if (config.ssl_verify_client_cert) this.clientCert = clientCertInfo(tlsSocket, config.ssl_cert_username_field);
    if (this.log.enabled('debug')) this.log.debug(
      {
        tls_protocol: tlsSocket.getProtocol(),
        cipher: tlsSocket.getCipher().name,
        sni: this.localName,
        resumed: tlsSocket.isSessionReused(),
        alpn: tlsSocket.alpnProtocol || undefined,
        client_cert: this.clientCert?.presented ? { subject: this.clientCert.subject, valid: this.clientCert.valid, error: this.clientCert.error } : undefined,
      },
      'TLS established',
    );
    this.state = 'pre-auth';
    return true;
  }

  /** Close the connection and write the session's one closing log line. */
  close(reason: EndReason, message: string, finalReply?: string): void {
    // Once handed over, the splice owns the connection and writes the closing line.
    if (this.#ended || this.state === 'spliced') return;
    this.#ended = true;
    this.stopLoginTimer();
    const socket = this.socket;
    if (finalReply !== undefined && !socket.destroyed && socket.writable) socket.end(finalReply);
    else socket.end();
    // A peer that never reads its final reply must not keep the socket: destroy shortly after.
    const killer = setTimeout(() => socket.destroy(), 2000);
    killer.unref();
    socket.once('close', () => clearTimeout(killer));
    this.state = 'closed';
    this.log.info(
      {
        reason,
        user: this.user,
        rip: this.peer.remoteIp,
        rport: this.peer.remotePort,
        proxied_by: this.peer.proxiedBy,
        lip: this.peer.localIp,
        lport: this.peer.localPort,
        tls: this.tls,
        bad_commands: this.badCommands || undefined,
        auth_failures: this.authFailures || undefined,
        duration_ms: Date.now() - this.startedAt,
      },
      message,
    );
    publishSessionEnd({ protocol: this.listener.protocol, reason, spliced: false, bytesIn: 0, bytesOut: 0, seconds: (Date.now() - this.startedAt) / 1000 });
    for (const fn of this.#onEnd) fn(this);
  }

  /** The proxied session's backend, once spliced (for listings; only splice/ touches it). */
  backend: { readonly name: string; readonly socket: Socket } | undefined;

  /** Mark the session handed over: from now on the splice owns it and logs its end. */
  handOver(backend: { readonly name: string; readonly socket: Socket }): void {
    this.stopLoginTimer();
    this.state = 'spliced';
    this.backend = backend;
    // An idle spliced session writes nothing until its closing line: its logger (a pino child
    // once a line was written) is made again then rather than kept for hours.
    this.#log = undefined;
  }

  /** A read-only snapshot for listings (`who`) and tests. */
  info(): SessionInfo {
    return {
      id: this.id,
      protocol: this.listener.protocol,
      state: this.state,
      user: this.user,
      rip: this.peer.remoteIp,
      tls: this.tls,
      backend: this.backend?.name,
      startedAt: this.startedAt,
      clientBuffered: this.socket.writableLength,
      bytesFromBackend: this.backend?.socket.bytesRead ?? 0,
      bytesToBackend: this.backend?.socket.bytesWritten ?? 0,
    };
  }

  /** For a spliced session: the one closing line (with byte counts), written by splice/. */
  finish(reason: EndReason, message: string, extra: Record<string, unknown>): void {
    if (this.#ended) return;
    this.#ended = true;
    this.state = 'closed';
    const log = this.log;
    if (log.enabled('info')) log.info({ reason, user: this.user, rip: this.peer.remoteIp, duration_ms: Date.now() - this.startedAt, ...extra }, message);
    const bytesIn = typeof extra['in'] === 'number' ? extra['in'] : 0;
    const bytesOut = typeof extra['out'] === 'number' ? extra['out'] : 0;
    publishSessionEnd({ protocol: this.listener.protocol, reason, spliced: true, bytesIn, bytesOut, seconds: (Date.now() - this.startedAt) / 1000 });
    for (const fn of this.#onEnd) fn(this);
  }
}

const ID_BYTES = 12;
let idPool = Buffer.alloc(0);
let idAt = 0;

/** 16 characters of base64url from 12 random bytes; the bytes come from a pool refilled every 256 ids. */
export function newSessionId(): string {
  if (idAt + ID_BYTES > idPool.length) {
    idPool = randomBytes(ID_BYTES * 256);
    idAt = 0;
  }
  const id = idPool.toString('base64url', idAt, idAt + ID_BYTES);
  idAt += ID_BYTES;
  return id;
}

export function familyOf(ip: string): 'ipv4' | 'ipv6' {
  return ip.includes(':') ? 'ipv6' : 'ipv4';
}
