/**
 * Prometheus metrics, fed by the events in events.ts plus gauges read at scrape time.
 * Names follow Dovecot's recommended proxy metrics where they overlap (logins, failures by
 * reason, established proxy sessions). Labels carry no user names or addresses.
 */
import type { Channel } from 'node:diagnostics_channel';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { events, type AuthEvent, type ConnectionEvent, type ProxyEvent, type SessionEndEvent } from './events.js';

export interface MetricsSource {
  /** Current sessions by protocol and state, read at scrape time. */
  sessionCounts(): { protocol: string; state: string; count: number }[];
  /** LMTP backend connections waiting for the next client session (backend/idle.ts). */
  lmtpIdleConnections(): number;
}

export class Metrics {
  readonly registry = new Registry();
  readonly #unsubscribe: (() => void)[] = [];
  readonly configReloadOk: Gauge;
  readonly configReloadTime: Gauge;

  constructor(source: MetricsSource) {
    const r = this.registry;
    collectDefaultMetrics({ register: r, prefix: 'portier_' });
    const connections = new PlainCounts();
    const logins = new PlainCounts();
    const proxied = new PlainCounts();
    const ended = new PlainCounts();
    const bytes = new PlainCounts();
    connections.counter(r, 'portier_connections_total', 'Client connections accepted.', 'protocol', 'listener');
    logins.counter(r, 'portier_logins_total', 'Login decisions by result (proxy = authenticated and routed).', 'protocol', 'result');
    proxied.counter(r, 'portier_proxy_logins_total', 'Backend logins by result.', 'protocol', 'result');
    const loginTime = new Histogram({
      name: 'portier_backend_login_duration_seconds',
      help: 'Time to connect to a backend and log in there (reconnects included).',
      labelNames: ['protocol'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [r],
    });
    ended.counter(r, 'portier_sessions_ended_total', 'Sessions ended, by reason.', 'protocol', 'reason');
    bytes.counter(r, 'portier_proxied_bytes_total', 'Bytes spliced: in = from clients, out = to clients.', 'protocol', 'direction');
    new Gauge({
      name: 'portier_sessions',
      help: 'Current client sessions by state.',
      labelNames: ['protocol', 'state'],
      registers: [r],
      collect() {
        this.reset();
        for (const c of source.sessionCounts()) this.set({ protocol: c.protocol, state: c.state }, c.count);
      },
    });
    new Gauge({
      name: 'portier_lmtp_idle_backend_connections',
      help: 'LMTP backend connections kept open for the next client session (lmtp_proxy_idle_connections).',
      registers: [r],
      collect() {
        this.set(source.lmtpIdleConnections());
      },
    });
    this.configReloadOk = new Gauge({ name: 'portier_config_last_reload_successful', help: '1 if the last configuration (re)load succeeded.', registers: [r] });
    this.configReloadTime = new Gauge({ name: 'portier_config_last_reload_success_timestamp_seconds', help: 'Time of the last successful configuration load.', registers: [r] });
    this.configReloaded(true);

    this.#on(events.connection, (e: ConnectionEvent) => connections.add(e.protocol, e.listener));
    this.#on(events.auth, (e: AuthEvent) => logins.add(e.protocol, e.result));
    this.#on(events.proxy, (e: ProxyEvent) => {
      proxied.add(e.protocol, e.ok ? 'ok' : (e.failure ?? 'failed'));
      if (e.ok) loginTime.observe({ protocol: e.protocol }, e.seconds);
    });
    this.#on(events.sessionEnd, (e: SessionEndEvent) => {
      ended.add(e.protocol, e.reason);
      if (e.spliced) {
        bytes.add(e.protocol, 'in', e.bytesIn);
        bytes.add(e.protocol, 'out', e.bytesOut);
      }
    });
  }

  configReloaded(ok: boolean): void {
    this.configReloadOk.set(ok ? 1 : 0);
    if (ok) this.configReloadTime.set(Date.now() / 1000);
  }

  async text(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  close(): void {
    for (const u of this.#unsubscribe) u();
    this.registry.clear();
  }

  #on<T>(ch: Channel, fn: (e: T) => void): void {
    const handler = (m: unknown): void => fn(m as T);
    ch.subscribe(handler);
    this.#unsubscribe.push(() => ch.unsubscribe(handler));
  }
}

/**
 * A two-label counter kept in plain numbers and copied into prom-client when scraped: the
 * events come once or more per login, and a prom-client inc() hashes and validates its labels.
 */
class PlainCounts {
  readonly #byFirst = new Map<string, Map<string, number>>();

  add(first: string, second: string, n = 1): void {
    let inner = this.#byFirst.get(first);
    if (inner === undefined) this.#byFirst.set(first, (inner = new Map()));
    inner.set(second, (inner.get(second) ?? 0) + n);
  }

  counter(registry: Registry, name: string, help: string, firstLabel: string, secondLabel: string): Counter {
    const byFirst = this.#byFirst;
    return new Counter({
      name,
      help,
      labelNames: [firstLabel, secondLabel],
      registers: [registry],
      collect() {
        this.reset();
        for (const [first, inner] of byFirst) for (const [second, n] of inner) this.inc({ [firstLabel]: first, [secondLabel]: second }, n);
      },
    });
  }
}
