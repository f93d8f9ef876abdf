/**
 * Reading TLS material from disk: certificate and key files, CA bundles (certificates plus
 * CRLs, as Dovecot's `ssl_ca` holds them) and CA directories. Everything is read whole and
 * synchronously: it happens at start and on reload, never per connection.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n[\s\S]*?-----END \1-----/g;

export interface CaBundle {
  /** PEM certificates (trust anchors and intermediates). */
  readonly certs: readonly string[];
  /** PEM certificate revocation lists. */
  readonly crls: readonly string[];
}

/** Split a PEM text into its certificates and CRLs; other blocks (keys) are ignored. */
export function splitPem(text: string): CaBundle {
  const certs: string[] = [];
  const crls: string[] = [];
  for (const m of text.matchAll(PEM_BLOCK)) {
    if (m[1] === 'CERTIFICATE' || m[1] === 'TRUSTED CERTIFICATE') certs.push(`${m[0]}\n`);
    else if (m[1] === 'X509 CRL') crls.push(`${m[0]}\n`);
  }
  return { certs, crls };
}

/** A CA file: at least one certificate, or an error naming the file. */
export function readCaFile(file: string): CaBundle {
  const bundle = splitPem(readFileSync(file, 'utf8'));
  if (bundle.certs.length === 0) throw new Error(`${file} holds no PEM certificate`);
  return bundle;
}

/**
 * A CA directory (OpenSSL's `-CApath`, or a plain folder of PEM files): every regular file's
 * certificates and CRLs, each once (c_rehash links point at the same certificates).
 */
export function readCaDir(dir: string): CaBundle {
  const certs = new Set<string>();
  const crls = new Set<string>();
  for (const name of readdirSync(dir).sort()) {
    if (name.startsWith('.')) continue;
    const path = join(dir, name);
    let isFile: boolean;
    try {
      isFile = statSync(path).isFile();
    } catch {
      continue; // a dangling link
    }
    if (!isFile) continue;
    const b = splitPem(readFileSync(path, 'utf8'));
    for (const c of b.certs) certs.add(c);
    for (const c of b.crls) crls.add(c);
  }
  if (certs.size === 0) throw new Error(`${dir} holds no PEM certificate`);
  return { certs: [...certs], crls: [...crls] };
}

/** Digest of file contents (missing files count as empty), to skip rebuilding what did not change. */
export function contentDigest(files: readonly (string | undefined)[], extra = ''): string {
  const h = createHash('sha256').update(extra);
  for (const f of files) {
    if (f === undefined) continue;
    h.update(`\0${f}\0`);
    try {
      const st = statSync(f);
      if (st.isDirectory()) {
        for (const name of readdirSync(f).sort()) {
          try {
            h.update(name).update(readFileSync(join(f, name)));
          } catch {
            h.update('?');
          }
        }
      } else {
        h.update(readFileSync(f));
      }
    } catch {
      h.update('missing');
    }
  }
  return h.digest('hex');
}
