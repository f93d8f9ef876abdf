/**
 * TLS session ticket keys (RFC 5077, RFC 8446 §4.6.1): one secret per deployment, keys derived
 * per rotation period so every worker and replica that shares the secret accepts the others'
 * tickets, and each key serves one period only (forward secrecy of resumed sessions).
 */
import { hkdfSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';

/** How the cluster primary hands its secret to the workers it forks (read once, then removed). */
export const TICKET_SECRET_ENV = 'PORTIER_TLS_TICKET_SECRET';

/** Ticket keys change this often; a client holding an older ticket does one full handshake. */
export const TICKET_ROTATION_MS = 12 * 3600_000;

/** Node's ticket key block: 16 bytes name, 16 HMAC secret, 16 AES key. */
const TICKET_KEYS_BYTES = 48;

/** Shortest secret accepted from ssl_session_ticket_key_file. */
export const MIN_TICKET_SECRET_BYTES = 32;

let processSecret: Buffer | undefined;

/**
 * This process's ticket secret: the file (shared by replicas), else the one the cluster primary
 * put in the environment (shared by its workers), else a random one made once per process.
 */
export function ticketSecret(file: string | undefined): Buffer {
  if (file !== undefined) {
    const secret = readFileSync(file);
    if (secret.length < MIN_TICKET_SECRET_BYTES) {
      throw new Error(`${file} is too short for a ticket secret (at least ${MIN_TICKET_SECRET_BYTES} bytes; try: openssl rand 48 > ${file})`);
    }
    return secret;
  }
  if (processSecret === undefined) {
    const env = process.env[TICKET_SECRET_ENV];
    delete process.env[TICKET_SECRET_ENV];
    processSecret = env !== undefined && /^[0-9a-f]{64,}$/.test(env) ? Buffer.from(env, 'hex') : randomBytes(32);
  }
  return processSecret;
}

/** In the cluster primary, before forking: workers then share one secret (and resume each other's sessions). */
export function shareTicketSecretWithWorkers(): void {
  process.env[TICKET_SECRET_ENV] ??= randomBytes(32).toString('hex');
}

export function ticketEpoch(now = Date.now()): number {
  return Math.floor(now / TICKET_ROTATION_MS);
}

/** The 48-byte key block for one rotation period. */
export function ticketKeysFor(secret: Buffer, epoch: number): Buffer {
  return Buffer.from(hkdfSync('sha256', secret, 'portier tls session tickets', `epoch ${epoch}`, TICKET_KEYS_BYTES));
}
