/**
 * Server certificates by name (Dovecot `local_name` blocks: exact → *.wildcard → default),
 * an RSA and an ECDSA key per name (ssl_cert + ssl_alt_cert), safe protocol defaults, and the
 * client-side options for TLS to backends. Contexts are built up front; `reload()` swaps them
 * atomically and keeps the old set when any new file is bad.
 */
import { constants, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext, type ConnectionOptions, type SecureContext, type TlsOptions } from 'node:tls';
import type { ListenerSpec } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { errorText, PortierError } from '../errors.js';

interface CertFiles {
  readonly cert: string;
  readonly key: string;
  readonly altCert?: string | undefined;
  readonly altKey?: string | undefined;
  readonly keyPassword?: string | undefined;
}

interface Contexts {
  readonly fallback: SecureContext | undefined;
  readonly exact: ReadonlyMap<string, SecureContext>;
  /** Keyed by the parent domain of `*.parent`. */
  readonly wildcard: ReadonlyMap<string, SecureContext>;
  readonly perListener: ReadonlyMap<string, SecureContext>;
}

export type ServerTlsOptions = TlsOptions & { isServer: true; secureContext: SecureContext };

export class TlsStore {
  #config: Config;
  #contexts: Contexts;
  /** Session ticket keys shared by every context so resumption works across names. */
  readonly #ticketKeys = randomBytes(48);

  constructor(config: Config, listeners: readonly ListenerSpec[]) {
    this.#config = config;
    this.#contexts = this.#build(config, listeners);
  }

  get enabled(): boolean {
    return this.#contexts.fallback !== undefined;
  }

  /** Rebuild every context from the files; on any error the current set stays in service. */
  reload(config: Config, listeners: readonly ListenerSpec[]): void {
    const next = this.#build(config, listeners);
    this.#config = config;
    this.#contexts = next;
  }

  /** The context for a server name (SNI); undefined name → the listener's or the default. */
  contextFor(name: string | undefined, listener?: ListenerSpec): SecureContext | undefined {
    const c = this.#contexts;
    if (name !== undefined) {
      const lower = name.toLowerCase();
      const exact = c.exact.get(lower);
      if (exact) return exact;
      const dot = lower.indexOf('.');
      const wild = dot > 0 ? c.wildcard.get(lower.slice(dot + 1)) : undefined;
      if (wild) return wild;
    }
    return (listener && c.perListener.get(listenerKey(listener))) ?? c.fallback;
  }

  /** Options for `new TLSSocket(raw, ...)` on the client leg (implicit TLS or STARTTLS). */
  serverOptions(listener: ListenerSpec, alpn: readonly string[] | undefined): ServerTlsOptions {
    const secureContext = this.contextFor(undefined, listener);
    if (secureContext === undefined) throw new PortierError('TLS_CONFIG', 'TLS requested but no certificate is configured');
    return {
      isServer: true,
      secureContext,
      SNICallback: (servername, cb) => cb(null, this.contextFor(servername, listener)),
      ...(alpn ? { ALPNProtocols: [...alpn] } : {}),
      requestCert: false,
      rejectUnauthorized: false,
    };
  }

  /** Options for TLS towards a backend (`ssl=yes|any-cert`, `starttls`). */
  clientOptions(servername: string | undefined, anyCert: boolean): ConnectionOptions {
    const cfg = this.#config;
    const ca = readCa(cfg.ssl_client_ca_file);
    return {
      ...(servername !== undefined && !/^[\d.]+$|:/.test(servername) ? { servername } : {}),
      ...(ca !== undefined ? { ca } : {}),
      ...(cfg.ssl_client_cert && cfg.ssl_client_key
        ? { cert: readFileSync(cfg.ssl_client_cert), key: readFileSync(cfg.ssl_client_key) }
        : {}),
      minVersion: cfg.ssl_min_protocol,
      rejectUnauthorized: !anyCert,
    };
  }

  #build(config: Config, listeners: readonly ListenerSpec[]): Contexts {
    const make = (files: CertFiles, what: string): SecureContext => {
      try {
        return this.#context(config, files);
      } catch (err) {
        throw new PortierError('TLS_CONFIG', `${what}: ${errorText(err)}`, { cause: err });
      }
    };
    const fallback =
      config.ssl_cert && config.ssl_key
        ? make(
            { cert: config.ssl_cert, key: config.ssl_key, altCert: config.ssl_alt_cert, altKey: config.ssl_alt_key, keyPassword: config.ssl_key_password },
            'ssl_cert',
          )
        : undefined;
    const exact = new Map<string, SecureContext>();
    const wildcard = new Map<string, SecureContext>();
    for (const [names, ln] of Object.entries(config.local_name)) {
      if (!ln.ssl_cert || !ln.ssl_key) continue;
      const ctx = make(
        { cert: ln.ssl_cert, key: ln.ssl_key, altCert: ln.ssl_alt_cert, altKey: ln.ssl_alt_key, keyPassword: ln.ssl_key_password ?? config.ssl_key_password },
        `local_name ${names}`,
      );
      for (const name of names.toLowerCase().split(/\s+/)) {
        if (name.startsWith('*.')) wildcard.set(name.slice(2), ctx);
        else exact.set(name, ctx);
      }
    }
    const perListener = new Map<string, SecureContext>();
    for (const l of listeners) {
      if (l.sslCert && l.sslKey) {
        perListener.set(listenerKey(l), make({ cert: l.sslCert, key: l.sslKey, keyPassword: config.ssl_key_password }, `listener ${l.name}`));
      }
    }
    return { fallback, exact, wildcard, perListener };
  }

  #context(config: Config, files: CertFiles): SecureContext {
    const certs = [readFileSync(files.cert)];
    const keys = [{ pem: readFileSync(files.key), ...(files.keyPassword !== undefined ? { passphrase: files.keyPassword } : {}) }];
    if (files.altCert && files.altKey) {
      certs.push(readFileSync(files.altCert));
      keys.push({ pem: readFileSync(files.altKey), ...(files.keyPassword !== undefined ? { passphrase: files.keyPassword } : {}) });
    }
    const ctx = createSecureContext({
      cert: certs,
      key: keys,
      minVersion: config.ssl_min_protocol,
      ...(config.ssl_cipher_list !== undefined ? { ciphers: config.ssl_cipher_list } : {}),
      honorCipherOrder: config.ssl_prefer_server_ciphers,
      secureOptions: constants.SSL_OP_NO_RENEGOTIATION,
      ticketKeys: this.#ticketKeys,
      sessionIdContext: 'portier',
    });
    return ctx;
  }
}

function listenerKey(l: ListenerSpec): string {
  return `${l.service}/${l.name}`;
}

function readCa(file: string | undefined): Buffer | undefined {
  return file === undefined ? undefined : readFileSync(file);
}
