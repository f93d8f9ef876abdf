/**
 * Server certificates by name: Dovecot `local_name` blocks (exact → `*.wildcard`), then the
 * listener's, then the protocol's (service), then the default; an RSA and an ECDSA certificate
 * per entry (ssl_cert + ssl_alt_cert), safe protocol defaults, client certificate requests,
 * and the options for TLS to backends. Contexts are built up front; `reload()` swaps them
 * atomically, entry by entry: a bad new file keeps the old certificate in service.
 */
import { constants, createHash, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext, DEFAULT_CIPHERS, type ConnectionOptions, type SecureContext, type TlsOptions } from 'node:tls';
import type { ListenerSpec } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { errorText, PortierError } from '../errors.js';
import { silentLogger, type Logger } from '../telemetry/log.js';
import { contentDigest, readCaDir, readCaFile, type CaBundle } from './files.js';
import { ticketEpoch, ticketKeysFor, ticketSecret } from './tickets.js';
import { UpstreamTls, type UpstreamTarget } from './upstream.js';
import { CertWatcher } from './watch.js';

/** One certificate entry as configured. */
interface CertSpec {
  /** Stable across reloads: `default`, `local_name <names>`, `listener <service>/<name>`, `service <name>`. */
  readonly id: string;
  readonly cert: string;
  readonly key: string;
  readonly altCert?: string | undefined;
  readonly altKey?: string | undefined;
  readonly keyPassword?: string | undefined;
}

interface Entry {
  readonly spec: CertSpec;
  readonly digest: string;
  readonly context: SecureContext;
  /** DNS names the certificates are for (SAN, else CN), lower-case: the "known" names of strict SNI. */
  readonly names: readonly string[];
}

interface Contexts {
  readonly fallback: Entry | undefined;
  readonly exact: ReadonlyMap<string, Entry>;
  /** Keyed by the parent domain of `*.parent`. */
  readonly wildcard: ReadonlyMap<string, Entry>;
  readonly perListener: ReadonlyMap<string, Entry>;
  readonly perService: ReadonlyMap<string, Entry>;
  readonly byId: ReadonlyMap<string, Entry>;
}

/**
 * ALPN for the server side: the first of ours the client offers, none of them a fatal
 * no_application_protocol alert, as `ALPNProtocols` would choose. A callback shared by every
 * connection: `ALPNProtocols` is copied into a small pooled Buffer per connection, which kept
 * an 8 KiB pool slab alive for every ~10 idle TLS sessions (~0.8 KiB each).
 */
const alpnSelectors = new Map<string, (hello: { protocols: string[] }) => string | undefined>();

function alpnSelector(alpn: readonly string[]): (hello: { protocols: string[] }) => string | undefined {
  const key = alpn.join('\n');
  let select = alpnSelectors.get(key);
  if (select === undefined) {
    const ours = [...alpn];
    select = ({ protocols }) => ours.find((p) => protocols.includes(p));
    alpnSelectors.set(key, select);
  }
  return select;
}

export type ServerTlsOptions = TlsOptions & { isServer: true; secureContext: SecureContext };

export interface ReloadReport {
  /** Entries whose certificate changed and is now in service. */
  readonly changed: readonly string[];
  /** Entries whose new files are bad: the old certificate stays (or, new entries, none is used). */
  readonly failed: readonly { id: string; error: string }[];
}

export class TlsStore {
  #config: Config;
  #listeners: readonly ListenerSpec[];
  #contexts: Contexts;
  #upstream: UpstreamTls;
  #epoch = ticketEpoch();
  readonly #log: Logger;
  #watcher: CertWatcher | undefined;
  /** Failures already logged (id → error), so a bad file is reported once, not every poll. */
  readonly #reported = new Map<string, string>();

  /** Throws PortierError TLS_CONFIG when any certificate cannot be loaded (start-up is strict). */
  constructor(config: Config, listeners: readonly ListenerSpec[], log: Logger = silentLogger()) {
    this.#config = config;
    this.#listeners = listeners;
    this.#log = log;
    const built = this.#build(config, listeners, undefined);
    const first = built.report.failed[0];
    if (first !== undefined) throw new PortierError('TLS_CONFIG', `${first.id}: ${first.error}`);
    this.#contexts = built.contexts;
    this.#upstream = new UpstreamTls(config);
  }

  get enabled(): boolean {
    return this.#contexts.fallback !== undefined;
  }

  /**
   * Rebuild from the files (SIGHUP, a changed file, a new configuration). Never throws: what
   * cannot be loaded keeps its previous certificate, and each failure is logged as an error.
   */
  reload(config: Config = this.#config, listeners: readonly ListenerSpec[] = this.#listeners, why = 'reload'): ReloadReport {
    this.#epoch = ticketEpoch();
    const { contexts, report } = this.#build(config, listeners, this.#contexts);
    let upstream = this.#upstream;
    try {
      upstream = upstream.rebuilt(config);
    } catch (err) {
      report.failed.push({ id: 'ssl_client', error: errorText(err) });
    }
    this.#config = config;
    this.#listeners = listeners;
    this.#contexts = contexts;
    this.#upstream = upstream;
    for (const f of report.failed) {
      if (this.#reported.get(f.id) === f.error) continue;
      this.#reported.set(f.id, f.error);
      this.#log.error({ certificate: f.id, err: f.error, why }, 'TLS: cannot load the new certificate or key; the previous one stays in service');
    }
    for (const id of this.#reported.keys()) if (!report.failed.some((f) => f.id === id)) this.#reported.delete(id);
    if (report.changed.length > 0) this.#log.info({ certificates: report.changed, why }, 'TLS: certificates reloaded');
    if (this.#watcher !== undefined) this.#watcher.update(this.#watchedFiles());
    return report;
  }

  /** Rotate ticket keys on time, and (ssl_watch_files) follow the certificate files: reload on change. */
  watch(): void {
    if (this.#watcher !== undefined) return;
    this.#watcher = new CertWatcher(this.#watchedFiles(), {
      changed: () => {
        if (this.#config.ssl_watch_files) this.reload(this.#config, this.#listeners, 'file changed');
      },
      tick: () => {
        if (ticketEpoch() !== this.#epoch) this.reload(this.#config, this.#listeners, 'session ticket key rotation');
      },
      log: this.#log,
    });
  }

  close(): void {
    this.#watcher?.close();
    this.#watcher = undefined;
  }

  /**
   * The context for a server name (SNI): exact, then wildcard local_name, then the listener's,
   * the protocol's, the default. Undefined in strict SNI mode for a name nothing is for.
   */
  contextFor(name: string | undefined, listener?: ListenerSpec): SecureContext | undefined {
    const c = this.#contexts;
    const base = (listener && (c.perListener.get(listenerId(listener)) ?? c.perService.get(listener.service))) ?? c.fallback;
    if (name === undefined || name === '') return base?.context;
    const lower = name.toLowerCase().replace(/\.$/, '');
    const exact = c.exact.get(lower);
    if (exact) return exact.context;
    const dot = lower.indexOf('.');
    const wild = dot > 0 ? c.wildcard.get(lower.slice(dot + 1)) : undefined;
    if (wild) return wild.context;
    if (this.#config.ssl_sni_strict && (base === undefined || !base.names.some((n) => nameMatches(n, lower)))) return undefined;
    return base?.context;
  }

  /**
   * Whether the server name decides the certificate: some `local_name` has its own, or
   * `ssl_sni_strict` refuses unknown names. When not, the ClientHello need not be read first.
   */
  get namesMatter(): boolean {
    const c = this.#contexts;
    return c.exact.size > 0 || c.wildcard.size > 0 || this.#config.ssl_sni_strict;
  }

  /**
   * Options for `new TLSSocket(raw, ...)` on the client leg (implicit TLS or STARTTLS), with the
   * context for the server name the ClientHello carried (see client-hello.ts: chosen up front, as
   * Node's SNICallback could switch to one certificate only). `ClientSession.startTls()` does it all.
   */
  serverOptions(listener: ListenerSpec, alpn: readonly string[] | undefined, serverName?: string): ServerTlsOptions {
    const secureContext = this.contextFor(serverName, listener);
    if (secureContext === undefined) {
      throw new PortierError('TLS_CONFIG', this.enabled ? 'no certificate for this server name (ssl_sni_strict)' : 'TLS requested but no certificate is configured');
    }
    return {
      isServer: true,
      secureContext,
      ...(alpn ? { ALPNCallback: alpnSelector(alpn) } : {}),
      requestCert: this.#config.ssl_verify_client_cert,
      // Verification happens in every handshake; the login decides what an invalid certificate means.
      rejectUnauthorized: false,
    };
  }

  /** Options for TLS towards a backend (`ssl=yes|any-cert`, `starttls`), name and CA included. */
  upstreamOptions(target: UpstreamTarget): ConnectionOptions & { host: string } {
    return this.#upstream.options(target);
  }

  #watchedFiles(): string[] {
    if (!this.#config.ssl_watch_files) return [];
    const files: string[] = [];
    for (const e of this.#contexts.byId.values()) files.push(e.spec.cert, e.spec.key, ...(e.spec.altCert ? [e.spec.altCert, e.spec.altKey ?? ''] : []));
    for (const s of specs(this.#config, this.#listeners)) files.push(s.cert, s.key, ...(s.altCert ? [s.altCert, s.altKey ?? ''] : []));
    const c = this.#config;
    for (const f of [c.ssl_ca, c.ssl_session_ticket_key_file, c.ssl_client_ca_file, c.ssl_client_cert, c.ssl_client_key]) if (f) files.push(f);
    // The watcher watches each file's directory: `dir/.` makes that the CA directory itself.
    if (c.ssl_client_ca_dir) files.push(`${c.ssl_client_ca_dir}/.`);
    return [...new Set(files.filter((f) => f !== ''))];
  }

  #build(config: Config, listeners: readonly ListenerSpec[], old: Contexts | undefined): { contexts: Contexts; report: { changed: string[]; failed: { id: string; error: string }[] } } {
    const changed: string[] = [];
    const failed: { id: string; error: string }[] = [];
    let shared: SharedSettings | undefined;
    let sharedError: string | undefined;
    try {
      shared = sharedSettings(config, this.#epoch);
    } catch (err) {
      sharedError = errorText(err);
    }
    const byId = new Map<string, Entry>();
    for (const spec of specs(config, listeners)) {
      const previous = old?.byId.get(spec.id);
      if (shared === undefined) {
        failed.push({ id: spec.id, error: sharedError ?? 'TLS settings unusable' });
        if (previous) byId.set(spec.id, previous);
        continue;
      }
      const digest = contentDigest([spec.cert, spec.key, spec.altCert, spec.altKey], `${shared.fingerprint}\0${spec.keyPassword ?? ''}`);
      if (previous !== undefined && previous.digest === digest) {
        byId.set(spec.id, previous);
        continue;
      }
      try {
        byId.set(spec.id, makeEntry(spec, shared, digest));
        if (old !== undefined) changed.push(spec.id);
      } catch (err) {
        failed.push({ id: spec.id, error: errorText(err) });
        if (previous) byId.set(spec.id, previous);
      }
    }
    const exact = new Map<string, Entry>();
    const wildcard = new Map<string, Entry>();
    for (const names of Object.keys(config.local_name)) {
      const e = byId.get(`local_name ${names}`);
      if (e === undefined) continue;
      for (const name of names.toLowerCase().split(/\s+/).filter((n) => n !== '')) {
        if (name.startsWith('*.')) wildcard.set(name.slice(2), e);
        else exact.set(name, e);
      }
    }
    const perListener = new Map<string, Entry>();
    for (const l of listeners) {
      const e = byId.get(`listener ${listenerId(l)}`);
      if (e) perListener.set(listenerId(l), e);
    }
    const perService = new Map<string, Entry>();
    for (const svc of Object.keys(config.service)) {
      const e = byId.get(`service ${svc}`);
      if (e) perService.set(svc, e);
    }
    return { contexts: { fallback: byId.get('default'), exact, wildcard, perListener, perService, byId }, report: { changed, failed } };
  }
}

function listenerId(l: ListenerSpec): string {
  return `${l.service}/${l.name}`;
}

/** Every configured certificate entry. */
function specs(config: Config, listeners: readonly ListenerSpec[]): CertSpec[] {
  const out: CertSpec[] = [];
  const pw = config.ssl_key_password;
  if (config.ssl_cert && config.ssl_key) {
    out.push({ id: 'default', cert: config.ssl_cert, key: config.ssl_key, altCert: config.ssl_alt_cert, altKey: config.ssl_alt_key, keyPassword: pw });
  }
  for (const [names, ln] of Object.entries(config.local_name)) {
    if (!ln.ssl_cert || !ln.ssl_key) continue;
    out.push({ id: `local_name ${names}`, cert: ln.ssl_cert, key: ln.ssl_key, altCert: ln.ssl_alt_cert, altKey: ln.ssl_alt_key, keyPassword: ln.ssl_key_password ?? pw });
  }
  for (const [svc, s] of Object.entries(config.service)) {
    if (s.ssl_cert && s.ssl_key) {
      out.push({ id: `service ${svc}`, cert: s.ssl_cert, key: s.ssl_key, altCert: s.ssl_alt_cert, altKey: s.ssl_alt_key, keyPassword: pw });
    }
  }
  for (const l of listeners) {
    const lc = config.service[l.service]?.inet_listener?.[l.name];
    const cert = lc?.ssl_cert ?? l.sslCert;
    const key = lc?.ssl_key ?? l.sslKey;
    if (cert && key) out.push({ id: `listener ${listenerId(l)}`, cert, key, altCert: lc?.ssl_alt_cert, altKey: lc?.ssl_alt_key, keyPassword: pw });
  }
  return out;
}

/** What every server context shares: protocol, ciphers, tickets, client certificate checks. */
interface SharedSettings {
  readonly options: TlsOptions;
  readonly fingerprint: string;
}

function sharedSettings(config: Config, epoch: number): SharedSettings {
  const ca: CaBundle | undefined = config.ssl_verify_client_cert && config.ssl_ca !== undefined ? readCaFile(config.ssl_ca) : undefined;
  const ticketKeys = ticketKeysFor(ticketSecret(config.ssl_session_ticket_key_file), epoch);
  const ciphers = cipherString(config.ssl_cipher_list, config.ssl_cipher_suites);
  const fingerprint = createHash('sha256')
    .update(JSON.stringify([config.ssl_min_protocol, ciphers, config.ssl_curve_list, config.ssl_prefer_server_ciphers, config.ssl_verify_client_cert, epoch]))
    .update(ca ? [...ca.certs, ...ca.crls].join('') : '')
    .update(ticketKeys)
    .digest('hex');
  return {
    fingerprint,
    options: {
      minVersion: config.ssl_min_protocol,
      ciphers,
      ...(config.ssl_curve_list !== undefined ? { ecdhCurve: config.ssl_curve_list } : {}),
      honorCipherOrder: config.ssl_prefer_server_ciphers,
      // RFC 5746 aside, renegotiation is a DoS lever and never needed by mail clients.
      secureOptions: constants.SSL_OP_NO_RENEGOTIATION,
      ticketKeys,
      // Resumed sessions must not cross into contexts with other client-certificate rules.
      sessionIdContext: fingerprint.slice(0, 32),
      ...(ca ? { ca: [...ca.certs], ...(ca.crls.length > 0 ? { crl: [...ca.crls] } : {}) } : {}),
    },
  };
}

/**
 * Node takes TLS 1.2 ciphers and TLS 1.3 suites in one string; an entry missing one half would
 * switch that protocol off, so each half defaults to Node's own list.
 */
export function cipherString(list: string | undefined, suites: string | undefined): string {
  const defaults = DEFAULT_CIPHERS.split(':');
  const tls12 = list ?? defaults.filter((c) => !c.startsWith('TLS_')).join(':');
  const tls13 = suites ?? defaults.filter((c) => c.startsWith('TLS_')).join(':');
  return [tls12, tls13].filter((s) => s !== '').join(':');
}

function makeEntry(spec: CertSpec, shared: SharedSettings, digest: string): Entry {
  const pass = spec.keyPassword !== undefined ? { passphrase: spec.keyPassword } : {};
  const certs = [readFileSync(spec.cert)];
  const keys = [{ pem: readFileSync(spec.key), ...pass }];
  if (spec.altCert && spec.altKey) {
    certs.push(readFileSync(spec.altCert));
    keys.push({ pem: readFileSync(spec.altKey), ...pass });
  }
  const context = createSecureContext({ ...shared.options, cert: certs, key: keys });
  return { spec, digest, context, names: certNames(certs) };
}

/** The DNS names in the leaf certificates (SAN DNS entries, else the subject CN). */
function certNames(pems: readonly Buffer[]): string[] {
  const names = new Set<string>();
  for (const pem of pems) {
    const leaf = new X509Certificate(pem);
    const sans = (leaf.subjectAltName ?? '').split(/,\s*/).filter((s) => s.startsWith('DNS:')).map((s) => s.slice(4).toLowerCase());
    if (sans.length > 0) for (const s of sans) names.add(s);
    else {
      const cn = /(?:^|\n)CN=([^\n]+)/.exec(leaf.subject)?.[1];
      if (cn) names.add(cn.toLowerCase());
    }
  }
  return [...names];
}

/** RFC 6125 §6.4.3: a `*` stands for exactly one whole left-most label. */
export function nameMatches(pattern: string, name: string): boolean {
  if (pattern === name) return true;
  if (!pattern.startsWith('*.')) return false;
  const dot = name.indexOf('.');
  return dot > 0 && name.slice(dot + 1) === pattern.slice(2);
}
