/**
 * The admin HTTP listener for orchestration and monitoring: `/metrics` (Prometheus text),
 * `/livez` (the event loop answers: never tied to backends or passdbs, so a backend outage
 * does not become a restart storm) and `/readyz` (listeners bound and not draining).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { errorText, PortierError } from '../errors.js';
import type { Logger } from '../telemetry/log.js';

export interface AdminHandlers {
  metrics(): Promise<{ contentType: string; body: string }>;
  ready(): boolean;
}

export interface AdminHttp {
  readonly address: string;
  readonly port: number;
  close(): Promise<void>;
}

/** `host:port`, `[v6]:port` or `:port` (all addresses). */
export function parseHostPort(value: string): { host: string; port: number } | null {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(value.trim());
  if (!m) return null;
  const port = Number(m[3]);
  if (port > 65535) return null;
  const host = m[1] ?? m[2] ?? '';
  return { host: host === '' || host === '*' ? '0.0.0.0' : host, port };
}

export async function startAdminHttp(listen: string, handlers: AdminHandlers, log: Logger): Promise<AdminHttp> {
  const hp = parseHostPort(listen);
  if (hp === null) throw new PortierError('CONFIG_INVALID', `admin_listen: "${listen}" is not host:port`);
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/livez') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      return;
    }
    if (path === '/readyz') {
      const ready = handlers.ready();
      res.writeHead(ready ? 200 : 503, { 'content-type': 'text/plain' }).end(ready ? 'ready\n' : 'not ready\n');
      return;
    }
    if (path === '/metrics') {
      handlers.metrics().then(
        (m) => res.writeHead(200, { 'content-type': m.contentType }).end(m.body),
        (err: unknown) => {
          log.error({ err: errorText(err) }, 'metrics collection failed');
          res.writeHead(500).end();
        },
      );
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  });
  server.keepAliveTimeout = 5000;
  server.headersTimeout = 10_000;
  server.requestTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: hp.host, port: hp.port }, () => {
      server.off('error', reject);
      resolve();
    });
  }).catch((err: unknown) => {
    throw new PortierError('LISTEN_FAILED', `cannot listen on ${listen} (admin): ${errorText(err)}`, { cause: err });
  });
  const a = server.address() as AddressInfo;
  log.info({ address: a.address, port: a.port }, 'admin HTTP listening (/metrics, /livez, /readyz)');
  return {
    address: a.address,
    port: a.port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
