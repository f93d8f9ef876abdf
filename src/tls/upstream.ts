/**
 * TLS towards backends (passdb `ssl=yes|any-cert`, `starttls[=any-cert]`): one client context
 * per configuration, trusting ONLY ssl_client_ca_file / ssl_client_ca_dir when either is set
 * (Dovecot 2.3's proxy ignores both and uses the system store), presenting ssl_client_cert,
 * checking the backend's name, and sending it as SNI.
 */
import { isIP } from 'node:net';
import { readFileSync } from 'node:fs';
import { createSecureContext, type ConnectionOptions, type SecureContext } from 'node:tls';
import type { Config } from '../config/schema.js';
import { contentDigest, readCaDir, readCaFile } from './files.js';

export interface UpstreamTarget {
  /** The passdb `host`: a DNS name or an IP. */
  readonly host: string;
  /** The passdb `ssl_server_name`: the name to verify and send as SNI when `host` is an IP. */
  readonly sslServerName?: string | undefined;
  /** `any-cert`: encrypt, but accept any certificate (no chain or name check). */
  readonly anyCert: boolean;
}

/** The name a backend's certificate must carry: ssl_server_name, else host. */
export function upstreamTlsName(target: { readonly host: string; readonly sslServerName?: string | undefined }): string {
  return target.sslServerName ?? target.host;
}

export class UpstreamTls {
  readonly #context: SecureContext;
  readonly #key: string;

  constructor(config: Config) {
    this.#key = settingsKey(config);
    const ca: string[] = [];
    const crl: string[] = [];
    for (const bundle of [
      config.ssl_client_ca_file !== undefined ? readCaFile(config.ssl_client_ca_file) : undefined,
      config.ssl_client_ca_dir !== undefined ? readCaDir(config.ssl_client_ca_dir) : undefined,
    ]) {
      if (bundle === undefined) continue;
      ca.push(...bundle.certs);
      crl.push(...bundle.crls);
    }
    this.#context = createSecureContext({
      minVersion: config.ssl_min_protocol,
      // Without a configured CA, Node's bundled Mozilla roots; with one, that CA alone.
      ...(ca.length > 0 ? { ca } : {}),
      ...(crl.length > 0 ? { crl } : {}),
      ...(config.ssl_client_cert !== undefined && config.ssl_client_key !== undefined
        ? { cert: readFileSync(config.ssl_client_cert), key: readFileSync(config.ssl_client_key) }
        : {}),
    });
  }

  /** A new instance when the files or settings changed, else this one (connections keep theirs). */
  rebuilt(config: Config): UpstreamTls {
    return settingsKey(config) === this.#key ? this : new UpstreamTls(config);
  }

  options(target: UpstreamTarget): ConnectionOptions & { host: string } {
    const name = upstreamTlsName(target);
    return {
      secureContext: this.#context,
      // tls.checkServerIdentity() checks `servername`, else `host`; RFC 6066 §3 allows no IP in SNI.
      host: name,
      ...(isIP(name) === 0 ? { servername: name } : {}),
      rejectUnauthorized: !target.anyCert,
    };
  }
}

/** A digest of every file and setting the context is made from (no key material is kept). */
function settingsKey(config: Config): string {
  return contentDigest([config.ssl_client_ca_file, config.ssl_client_ca_dir, config.ssl_client_cert, config.ssl_client_key], config.ssl_min_protocol);
}
