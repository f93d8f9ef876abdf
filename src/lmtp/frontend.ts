/**
 * The LMTP front-end (RFC 2033): a transaction proxy rather than a login and a splice. Each
 * RCPT is a passdb lookup; recipients are grouped per backend; DATA is read once and fanned
 * out; the client gets one reply per accepted recipient, in RCPT order. See session.ts.
 */
import type { GoodbyeReason, ProtocolFrontend } from '../listen/server.js';
import type { ClientSession } from '../login/session.js';
import { LmtpSession } from './session.js';

const sessions = new WeakMap<ClientSession, LmtpSession>();

function goodbye(session: ClientSession, why: GoodbyeReason): string {
  const host = session.runtime.hostname;
  switch (why) {
    case 'timeout':
      return `421 4.4.2 ${host} Disconnected for inactivity\r\n`;
    case 'shutdown':
      return `421 4.3.2 ${host} Shutting down\r\n`;
    // The pre-auth connection limits apply to the login protocols only; these are for completeness.
    case 'per-ip':
    case 'full':
      return `421 4.7.0 ${host} Too many connections\r\n`;
  }
}

export const lmtpFrontend: ProtocolFrontend = {
  protocol: 'lmtp',
  alpn: 'lmtp',
  start(session) {
    // An MTA's connection may wait between transactions: a vanished one is found by the kernel's probes.
    const keepalive = session.runtime.config.tcp_keepalive;
    if (keepalive > 0) session.socket.setKeepAlive(true, keepalive);
    const lmtp = new LmtpSession(session);
    sessions.set(session, lmtp);
    lmtp.start();
  },
  goodbye,
  shutdown(session) {
    const lmtp = sessions.get(session);
    if (lmtp !== undefined) lmtp.shutdown();
    else session.close('shutdown', 'Disconnected: server shutting down', goodbye(session, 'shutdown'));
  },
};
