/**
 * The configuration schema: Dovecot's setting names wherever a Dovecot admin would look for
 * them. Every key is known (unknown keys are refused); every value is typed and defaulted.
 * See docs/configuration.md for the reference.
 */
import { z } from 'zod';
import { duration, filePath, netList, port, size, wordList, yesNo } from './types.js';

export const PROTOCOLS = ['imap', 'pop3', 'lmtp'] as const;
export type Protocol = (typeof PROTOCOLS)[number];

/** Dovecot's service names, each serving one protocol. */
export const SERVICE_PROTOCOL = {
  'imap-login': 'imap',
  'pop3-login': 'pop3',
  lmtp: 'lmtp',
} as const satisfies Record<string, Protocol>;
export type ServiceName = keyof typeof SERVICE_PROTOCOL;

const listenerSchema = z.strictObject({
  address: wordList('a list of addresses').optional(),
  port: port.optional(),
  ssl: yesNo.optional(),
  haproxy: yesNo.optional(),
  /** portier: accept PROXY-prefixed and direct clients on one haproxy listener. */
  haproxy_optional: yesNo.optional(),
  ssl_cert: filePath.optional(),
  ssl_key: filePath.optional(),
  ssl_alt_cert: filePath.optional(),
  ssl_alt_key: filePath.optional(),
});
export type ListenerConfig = z.output<typeof listenerSchema>;

const serviceSchema = z.strictObject({
  inet_listener: z.record(z.string(), listenerSchema).optional(),
  /** Dovecot's per-service connection cap (client_limit × process_limit). */
  client_limit: z.number().int().positive().optional(),
  /** Certificates for this protocol (Dovecot's `protocol imap { ssl_cert }`); listeners and SNI override. */
  ssl_cert: filePath.optional(),
  ssl_key: filePath.optional(),
  ssl_alt_cert: filePath.optional(),
  ssl_alt_key: filePath.optional(),
});

const resultAction = z.enum(['return-ok', 'return-fail', 'return', 'continue', 'continue-ok', 'continue-fail']);

/** Fields a passdb entry can carry in config (default_fields / override_fields). */
const fieldMap = z
  .union([z.string(), z.record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.null()]))])
  .optional();

const passdbCommon = {
  name: z.string().optional(),
  master: yesNo.default(false),
  pass: yesNo.default(false),
  deny: yesNo.default(false),
  skip: z.enum(['never', 'authenticated', 'unauthenticated']).default('never'),
  result_success: resultAction.default('return-ok'),
  result_failure: resultAction.default('continue'),
  result_internalfail: resultAction.default('continue'),
  default_fields: fieldMap,
  override_fields: fieldMap,
};

const passwdFilePassdb = z
  .strictObject({
    driver: z.literal('passwd-file'),
    /** Dovecot form: `[scheme=X] [username_format=Y] <path>`; normalised into the fields below. */
    args: z.string().optional(),
    path: filePath.optional(),
    scheme: z.string().optional(),
    username_format: z.string().optional(),
    ...passdbCommon,
  })
  .transform((p, ctx) => {
    if (p.args === undefined) return p;
    const out = { ...p };
    for (const token of p.args.trim().split(/\s+/).filter((t) => t !== '')) {
      const eq = token.indexOf('=');
      const key = eq > 0 ? token.slice(0, eq) : '';
      if (key === 'scheme') out.scheme = token.slice(eq + 1);
      else if (key === 'username_format') out.username_format = token.slice(eq + 1);
      else if (eq > 0 && !token.startsWith('/') && !token.startsWith('.')) {
        ctx.issues.push({ code: 'custom', message: `unknown passwd-file option "${key}"`, input: token, path: ['args'] });
      } else out.path = token.replace(/^</, '');
    }
    return out;
  });

const staticPassdb = z.strictObject({
  driver: z.literal('static'),
  /** Dovecot form: `proxy=y host=10.0.0.5 nopassword=y`. */
  args: z.string().optional(),
  fields: fieldMap,
  ...passdbCommon,
});

/**
 * PostgreSQL: `connect` and `password_query` as in Dovecot's dovecot-sql.conf.ext, or `args`
 * naming such a file. Variables in the query become bound parameters, never SQL text.
 */
const sqlPassdb = z
  .strictObject({
    driver: z.literal('sql'),
    /** Dovecot form: the path of a dovecot-sql.conf.ext (driver, connect, password_query, default_pass_scheme). */
    args: filePath.optional(),
    connect: z.string().optional(),
    password_query: z.string().optional(),
    default_pass_scheme: z.string().optional(),
    /** portier: bound for one query (and for getting a connection from the pool). */
    query_timeout: duration.default(5000),
    ...passdbCommon,
  })
  .refine((p) => p.args !== undefined || (p.connect !== undefined && p.password_query !== undefined), {
    message: 'sql needs connect and password_query (or args: the path of a dovecot-sql.conf.ext)',
  });

/** Redis: one key per user (`key: user:%u`), read as a hash (HGETALL) or a JSON string value. */
const redisPassdb = z.strictObject({
  driver: z.literal('redis'),
  /** `redis://[:password@]host:port[/db]`, `rediss://...`, or Dovecot's dict form `redis:host=...:port=...`. */
  connect: z.string(),
  key: z.string(),
  value_format: z.enum(['hash', 'json']).default('hash'),
  default_pass_scheme: z.string().optional(),
  query_timeout: duration.default(2000),
  ...passdbCommon,
});

/** An external checkpassword program (qmail's interface, run as Dovecot runs it). */
const checkpasswordPassdb = z.strictObject({
  driver: z.literal('checkpassword'),
  /** The program and its arguments (`%` variables allowed); the reply program is appended. */
  args: z.string().min(1),
  /** Default: portier's bin/checkpassword-reply (compatible with Dovecot's). */
  checkpassword_reply_path: filePath.optional(),
  /** portier: a program still running after this is killed and the login fails temporarily. */
  timeout: duration.default(5000),
  /** portier: programs running at once; more requests wait (and time out) in a queue. */
  max_concurrency: z.number().int().min(1).max(1024).default(16),
  ...passdbCommon,
});

export const passdbSchema = z.discriminatedUnion('driver', [passwdFilePassdb, staticPassdb, sqlPassdb, redisPassdb, checkpasswordPassdb], {
  error: (issue) =>
    issue.code === 'invalid_union' ? 'unknown passdb driver (supported: passwd-file, static, sql, redis, checkpassword)' : undefined,
});
export type PassdbConfig = z.output<typeof passdbSchema>;

const localNameSchema = z.strictObject({
  ssl_cert: filePath.optional(),
  ssl_key: filePath.optional(),
  ssl_alt_cert: filePath.optional(),
  ssl_alt_key: filePath.optional(),
  ssl_key_password: z.string().optional(),
});

export const configSchema = z.strictObject({
  instance_name: z.string().default('portier'),
  hostname: z.string().optional(),
  /** HTTP for /metrics, /livez, /readyz: `host:port`; off when absent. */
  admin_listen: z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[^:[\]]*):\d{1,5}$/, 'expected host:port, [v6]:port or :port').optional(),
  /** UNIX socket for `portier auth cache flush` and friends (mode 0600); empty: off. */
  admin_socket: z.string().default('/run/portier/admin.sock'),
  log_level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  shutdown_timeout: duration.default(30_000),
  /** Worker processes sharing the listeners: a number, or `auto` for one per CPU core. */
  workers: z.union([z.literal('auto'), z.number().int().min(1).max(256)]).default('auto'),
  protocols: wordList('a list of protocols')
    .pipe(z.array(z.enum(PROTOCOLS)))
    .default(['imap', 'pop3', 'lmtp']),
  listen: wordList('a list of addresses').default(['*', '::']),
  service: z.partialRecord(z.enum(Object.keys(SERVICE_PROTOCOL) as [ServiceName, ...ServiceName[]]), serviceSchema).default({}),

  // Login front-end (Dovecot login-common).
  login_greeting: z.string().default('portier ready.'),
  login_trusted_networks: netList.default([]),
  login_timeout: duration.default(180_000),
  login_max_bad_commands: z.number().int().min(1).default(3),
  login_max_line_length: size.default(8192),
  login_max_literal_size: size.default(8192),
  /** portier: clients not logged in yet from one address (IPv6: per auth_penalty_ipv6_prefix); 0 = no limit. */
  login_max_preauth_per_ip: z.number().int().min(0).default(100),
  /** portier: clients not logged in yet in all; when full the oldest idle one is shed (Dovecot drops its oldest). */
  login_max_preauth: z.number().int().min(0).default(10_000),
  /** Dovecot: proxied sessions per protocol, user and client address; 0 = no limit. */
  mail_max_userip_connections: z.number().int().min(0).default(10),
  login_proxy_timeout: duration.default(30_000),
  login_proxy_max_reconnects: z.number().int().min(0).max(20).default(3),
  login_proxy_idle_timeout: duration.default(30 * 60_000),
  /** Spread client disconnects over this long when a backend drops many sessions at once. */
  login_proxy_max_disconnect_delay: duration.default(0),
  /** A backend failing this long without a success fails new logins at once (one probe at a time). */
  proxy_host_immediate_failure_after: duration.default(30_000),
  /** Addresses to connect to backends from, round-robin; a leading `?` keeps only bindable ones. */
  login_source_ips: wordList('a list of addresses').default([]),
  /** portier: where `proxy_maybe` logins that point at this host are served, per protocol. */
  local_backend: z
    .partialRecord(z.enum(PROTOCOLS), z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[^:[\]]+):\d{1,5}$/, 'expected host:port'))
    .default({}),
  login_proxy_buffer_size: size.default(64 * 1024),
  /** portier: TCP keepalive on client and backend connections after this much silence; 0 = off. */
  tcp_keepalive: duration.default(120_000),
  haproxy_trusted_networks: netList.default([]),
  haproxy_timeout: duration.default(3000),

  // Authentication.
  auth_mechanisms: wordList('a list of SASL mechanisms').default(['plain', 'login']),
  auth_master_user_separator: z.string().max(1).default(''),
  auth_username_format: z.string().default('%Lu'),
  auth_username_chars: z
    .string()
    .default('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ01234567890.-_@'),
  auth_failure_delay: duration.default(2000),
  auth_proxy_self: wordList('a list of addresses').default([]),
  disable_plaintext_auth: yesNo.default(true),
  default_pass_scheme: z.string().default('CRYPT'),
  passdb: z.array(passdbSchema).default([]),
  /** Dovecot's auth cache: bytes (approximate) of cached passdb results; 0 = off. */
  auth_cache_size: size.default(0),
  auth_cache_ttl: duration.default(3_600_000),
  auth_cache_negative_ttl: duration.default(3_600_000),
  /** portier: while the passdbs fail temporarily, answer from expired positive entries (Dovecot always does). */
  auth_cache_serve_stale_on_failure: yesNo.default(true),
  /** portier: failure penalty per client IP (Dovecot's anvil): delay = min(initial × 2^penalty, max). */
  auth_penalty_initial_delay: duration.default(2000),
  /** 0 switches the penalty off. */
  auth_penalty_max_delay: duration.default(15_000),
  /** IPv6 clients share a penalty per prefix of this length (Dovecot: 48; /64 is one site). */
  auth_penalty_ipv6_prefix: z.number().int().min(0).max(128).default(64),
  /** `redis://...`: share penalties between replicas; in-memory when unset or unreachable. */
  auth_penalty_redis: z.string().optional(),
  /** Logins need a client certificate that ssl_ca verifies (needs ssl_verify_client_cert). */
  auth_ssl_require_client_cert: yesNo.default(false),
  /** The user name comes from the verified client certificate (ssl_cert_username_field), for any mechanism. */
  auth_ssl_username_from_cert: yesNo.default(false),

  // TLS (Dovecot ssl_* settings).
  ssl: z
    .union([z.boolean(), z.enum(['yes', 'no', 'required'])])
    .transform((v) => (v === true ? 'yes' : v === false ? 'no' : v))
    .default('yes'),
  ssl_cert: filePath.optional(),
  ssl_key: filePath.optional(),
  ssl_key_password: z.string().optional(),
  ssl_alt_cert: filePath.optional(),
  ssl_alt_key: filePath.optional(),
  ssl_min_protocol: z.enum(['TLSv1.2', 'TLSv1.3']).default('TLSv1.2'),
  /** TLS 1.2 ciphers (OpenSSL syntax); default: Node's list (ECDHE with AEAD first). */
  ssl_cipher_list: z.string().optional(),
  /** TLS 1.3 suites; default: Node's list. */
  ssl_cipher_suites: z.string().optional(),
  /** Key exchange groups, e.g. `X25519:P-256`; default: Node's. */
  ssl_curve_list: z.string().optional(),
  ssl_prefer_server_ciphers: yesNo.default(true),
  /** CA certificates (and CRLs) that client certificates must chain to. */
  ssl_ca: filePath.optional(),
  /** Ask clients for a certificate and verify it against ssl_ca (a missing one is not an error by itself). */
  ssl_verify_client_cert: yesNo.default(false),
  /** Subject field that names the user (auth_ssl_username_from_cert); OpenSSL long or short names. */
  ssl_cert_username_field: z.string().default('commonName'),
  /** portier: refuse TLS handshakes for server names no certificate is configured for. */
  ssl_sni_strict: yesNo.default(false),
  /** portier: reload certificates when their files change (SIGHUP reloads them too). */
  ssl_watch_files: yesNo.default(true),
  /** portier: a secret (at least 32 bytes) shared by replicas so each resumes the others' TLS sessions. */
  ssl_session_ticket_key_file: filePath.optional(),
  ssl_client_ca_file: filePath.optional(),
  ssl_client_ca_dir: filePath.optional(),
  ssl_client_cert: filePath.optional(),
  ssl_client_key: filePath.optional(),
  local_name: z.record(z.string(), localNameSchema).default({}),

  // IMAP.
  imap_capability: z.string().optional(),
  imap_id_retain: yesNo.default(false),

  // LMTP (docs/lmtp.md).
  /** Dovecot: characters that start a recipient's detail (`user+detail`); the first one found counts. */
  recipient_delimiter: z.string().default('+'),
  /** portier: the largest message LMTP takes, advertised as SIZE (Dovecot 2.4 uses quota_mail_size). */
  lmtp_max_mail_size: size.refine((n) => n > 0, 'must be more than 0').default(64 * 1024 * 1024),
  /**
   * portier: backend connections per backend kept open after their client LMTP sessions end,
   * for the next session (XCLIENT with its facts instead of a new connection); 0 turns it off.
   * Small by default: each holds one of the backend's LMTP processes (Dovecot: client_limit 1).
   */
  lmtp_proxy_idle_connections: z.number().int().min(0).max(1000).default(2),
  /** Dovecot: where LMTP keeps a message too big for memory while it is delivered (unlinked at once). */
  mail_temp_dir: filePath.default('/tmp'),
});

export type Config = z.output<typeof configSchema>;

/** Keys whose values are secrets: printed masked, never logged. */
export const SECRET_KEYS: ReadonlySet<string> = new Set(['ssl_key_password', 'password', 'pass', 'connect', 'auth_penalty_redis']);

/** Settings printed back as durations / sizes by check-config. */
export const DURATION_KEYS: ReadonlySet<string> = new Set([
  'shutdown_timeout', 'proxy_host_immediate_failure_after', 'login_proxy_max_disconnect_delay', 'login_timeout', 'login_proxy_timeout', 'login_proxy_idle_timeout', 'haproxy_timeout', 'tcp_keepalive', 'auth_failure_delay',
  'auth_cache_ttl', 'auth_cache_negative_ttl', 'auth_penalty_initial_delay', 'auth_penalty_max_delay',
]);
export const SIZE_KEYS: ReadonlySet<string> = new Set(['login_max_line_length', 'login_max_literal_size', 'login_proxy_buffer_size', 'auth_cache_size', 'lmtp_max_mail_size']);
