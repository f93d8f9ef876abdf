/**
 * Reading a HAProxy PROXY header off a new connection (Dovecot `haproxy = yes` listeners):
 * bounded by haproxy_timeout, accepted only from haproxy_trusted_networks. In optional mode
 * (portier's `haproxy_optional`), a trusted peer that sends nothing within a short window, or
 * whose first bytes cannot start a header, is a direct client: IMAP/POP3/LMTP clients wait
 * for the greeting, TLS clients start with a ClientHello.
 */
import type { Socket } from 'node:net';
import { ProxyHeaderReader, type ProxyHeader, type ProxyMode } from './proxy-protocol.js';

/** How long an optional-mode listener waits for a first byte before greeting a direct client. */
export const HAPROXY_OPTIONAL_WAIT_MS = 150;

export type HeaderOutcome =
  | { readonly kind: 'header'; readonly header: ProxyHeader; readonly rest: Buffer }
  | { readonly kind: 'direct'; readonly rest: Buffer }
  | { readonly kind: 'refused'; readonly reason: string };

export function readProxyHeader(socket: Socket, mode: ProxyMode, timeoutMs: number): Promise<HeaderOutcome> {
  const reader = new ProxyHeaderReader({ mode });
  return new Promise((resolve) => {
    let received = 0;
    let settled = false;
    const finish = (outcome: HeaderOutcome): void => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      clearTimeout(optional);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.pause();
      resolve(outcome);
    };
    const verdict = (p: ReturnType<ProxyHeaderReader['push']>): void => {
      if (p.state === 'done') finish({ kind: 'header', header: p.header, rest: p.rest });
      else if (p.state === 'not-proxy') finish({ kind: 'direct', rest: p.rest });
      else if (p.state === 'error') finish({ kind: 'refused', reason: p.reason });
    };
    const onData = (chunk: Buffer): void => {
      received += chunk.length;
      verdict(reader.push(chunk));
    };
    const onEnd = (): void => finish({ kind: 'refused', reason: 'closed before the PROXY header' });
    const deadline = setTimeout(() => {
      const p = reader.expire();
      if (p.state === 'not-proxy') verdict(p);
      else finish({ kind: 'refused', reason: `no complete PROXY header within ${timeoutMs} ms` });
    }, timeoutMs);
    const optional = setTimeout(() => {
      if (mode === 'optional' && received === 0) verdict(reader.expire());
    }, Math.min(HAPROXY_OPTIONAL_WAIT_MS, timeoutMs));
    socket.on('data', onData);
    socket.on('end', onEnd);
  });
}
