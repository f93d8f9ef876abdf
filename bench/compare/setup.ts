/**
 * Files for the compare run: users, seeded maildirs, certificates, and the configuration of
 * every peer (Dovecot backend, Dovecot proxy, nginx mail, portier), all on loopback
 * addresses of their own, so nothing collides with a service on the usual ports.
 */
import { chownSync, existsSync, linkSync, mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { rfc822Message } from '../lib/protocols.js';
import { runCommand } from './procs.js';

/** Where everything listens; each proxy on its own address with the protocols' usual ports. */
export const ADDR = {
  client: '127.0.0.5',
  dovecotBackend: '127.0.2.2',
  instant: '127.0.2.3',
  portier: '127.0.2.7',
  dovecotProxy: '127.0.2.8',
  nginx: '127.0.2.9',
  authHttp: '127.0.2.10',
  /** bench/floor-proxy.ts, the Node floor (`--with-floor`). */
  floor: '127.0.2.11',
} as const;

export const PORTS = { imap: 143, imaps: 993, pop3: 110, pop3s: 995, lmtp: 24, authHttp: 8080 } as const;

export const USERS = 10_000;
/** Users on the Dovecot backend are userN (password passN); on the instant backend iuserN. */
export const DOVECOT_USERS = 'user%d';
export const INSTANT_USERS = 'iuser%d';
export const PASSWORD = 'pass%d';

export interface Files {
  dir: string;
  ecdsa: { cert: string; key: string };
  rsa: { cert: string; key: string };
  /** passwd-file for the Dovecot backend: userN:{PLAIN}passN. */
  backendUsers: string;
  /** passwd-file for the proxies: userN → Dovecot backend, iuserN → instant backend, nopassword. */
  proxyUsers: string;
  messageSize: number;
}

/** A self-signed certificate for the bench's loopback addresses (`newkey`: openssl's -newkey arguments). */
export async function makeCert(dir: string, name: string, newkey: string[]): Promise<{ cert: string; key: string }> {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  const san = `subjectAltName=DNS:bench.invalid,${Object.values(ADDR).map((a) => `IP:${a}`).join(',')}`;
  const r = await runCommand('openssl', ['req', '-x509', ...newkey, '-nodes', '-keyout', key, '-out', cert, '-days', '30', '-subj', '/CN=bench.invalid', '-addext', san]);
  if (r.code !== 0) throw new Error(`openssl (${name}) failed: ${r.out}`);
  return { cert, key };
}

/** Users, certificates and 10,000 maildirs (user1 holds the large message FETCH reads). */
export async function prepareFiles(dir: string, messageSize: number): Promise<Files> {
  mkdirSync(dir, { recursive: true });
  const ecdsa = await makeCert(dir, 'ecdsa', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256']);
  const rsa = await makeCert(dir, 'rsa', ['-newkey', 'rsa:2048']);
  const backend: string[] = [];
  const proxy: string[] = [];
  for (let i = 1; i <= USERS; i++) {
    backend.push(`user${i}:{PLAIN}pass${i}`);
    proxy.push(`user${i}:::::::proxy=y host=${ADDR.dovecotBackend} nopassword=y`, `iuser${i}:::::::proxy=y host=${ADDR.instant} nopassword=y`);
  }
  const backendUsers = join(dir, 'backend-users');
  const proxyUsers = join(dir, 'proxy-users');
  writeFileSync(backendUsers, `${backend.join('\n')}\n`);
  writeFileSync(proxyUsers, `${proxy.join('\n')}\n`);

  // Maildirs owned by the mail user (uid 8 on Debian), one small message each, hard-linked.
  const mail = join(dir, 'mail');
  const uid = 8;
  const gid = 8;
  mkdirSync(mail, { recursive: true });
  chownSync(mail, uid, gid);
  const small = join(dir, 'small.eml');
  writeFileSync(small, rfc822Message(2048));
  chownSync(small, uid, gid);
  const large = join(dir, 'large.eml');
  writeFileSync(large, rfc822Message(messageSize));
  chownSync(large, uid, gid);
  for (let i = 1; i <= USERS; i++) {
    const home = join(mail, `user${i}`);
    const md = join(home, 'Maildir');
    for (const d of [home, md, join(md, 'cur'), join(md, 'new'), join(md, 'tmp')]) {
      mkdirSync(d, { recursive: true });
      chownSync(d, uid, gid);
    }
    const seed = i === 1 ? large : small;
    const target = join(md, 'cur', `1700000000.M1P1.bench,S=${i === 1 ? messageSize : 2048}:2,S`);
    if (!existsSync(target)) linkSync(seed, target);
  }
  return { dir, ecdsa, rsa, backendUsers, proxyUsers, messageSize };
}

function dovecotCommon(name: string, dir: string, f: Files): string[] {
  return [
    `instance_name = ${name}`,
    `base_dir = ${dir}/run`,
    `state_dir = ${dir}/state`,
    `log_path = ${dir}/dovecot.log`,
    `info_log_path = ${dir}/dovecot.log`,
    `debug_log_path = ${dir}/dovecot.log`,
    'ssl = yes',
    `ssl_cert = <${f.ecdsa.cert}`,
    `ssl_key = <${f.ecdsa.key}`,
    `ssl_alt_cert = <${f.rsa.cert}`,
    `ssl_alt_key = <${f.rsa.key}`,
    'ssl_min_protocol = TLSv1.2',
    'disable_plaintext_auth = no',
    'auth_mechanisms = plain login',
    'mail_uid = mail',
    'mail_gid = mail',
    'first_valid_uid = 1',
    'first_valid_gid = 1',
    'default_vsz_limit = 2G',
    'service anvil {\n  unix_listener anvil-auth-penalty {\n    mode = 0\n  }\n}',
    'service submission-login {\n  inet_listener submission {\n    port = 0\n  }\n}',
  ];
}

/** Dovecot's high-performance login mode, as the issue asks: service_count = 0, process_min_avail = cores. */
function loginService(service: string, addr: string, plain: number, tls: number): string {
  return `service ${service} {\n  inet_listener ${service.replace('-login', '')} {\n    address = ${addr}\n    port = ${plain}\n  }\n` +
    `  inet_listener ${service.replace('-login', '')}s {\n    address = ${addr}\n    port = ${tls}\n    ssl = yes\n  }\n` +
    `  service_count = 0\n  process_min_avail = ${availableParallelism()}\n  client_limit = 12000\n  vsz_limit = 2G\n}`;
}

export function dovecotBackendConf(dir: string, f: Files): string {
  const a = ADDR.dovecotBackend;
  return [
    ...dovecotCommon('bench-backend', dir, f),
    'protocols = imap pop3 lmtp',
    `listen = ${a}`,
    'login_trusted_networks = 127.0.0.0/8',
    'mail_location = maildir:~/Maildir',
    'mail_save_crlf = yes',
    'lmtp_add_received_header = no',
    `passdb {\n  driver = passwd-file\n  args = scheme=PLAIN ${f.backendUsers}\n}`,
    `userdb {\n  driver = static\n  args = uid=mail gid=mail home=${f.dir}/mail/%u\n}`,
    loginService('imap-login', a, PORTS.imap, PORTS.imaps),
    loginService('pop3-login', a, PORTS.pop3, PORTS.pop3s),
    'service imap {\n  process_limit = 2048\n}',
    'service pop3 {\n  process_limit = 2048\n}',
    `service lmtp {\n  inet_listener lmtp {\n    address = ${a}\n    port = ${PORTS.lmtp}\n  }\n  process_limit = 256\n}`,
  ].join('\n') + '\n';
}

export function dovecotProxyConf(dir: string, f: Files): string {
  const a = ADDR.dovecotProxy;
  return [
    ...dovecotCommon('bench-dproxy', dir, f),
    'protocols = imap pop3 lmtp',
    `listen = ${a}`,
    'lmtp_proxy = yes',
    `passdb {\n  driver = passwd-file\n  args = ${f.proxyUsers}\n}`,
    `userdb {\n  driver = static\n  args = uid=mail gid=mail home=${dir}/nohome\n}`,
    loginService('imap-login', a, PORTS.imap, PORTS.imaps),
    loginService('pop3-login', a, PORTS.pop3, PORTS.pop3s),
    `service lmtp {\n  inet_listener lmtp {\n    address = ${a}\n    port = ${PORTS.lmtp}\n  }\n  process_limit = 256\n}`,
  ].join('\n') + '\n';
}

/** nginx's mail proxy with Debian's module; the auth_http server is bench/compare/auth-http.ts. */
export function nginxConf(dir: string, f: Files): string {
  const a = ADDR.nginx;
  return `load_module /usr/lib/nginx/modules/ngx_mail_module.so;
daemon off;
master_process on;
worker_processes ${availableParallelism()};
worker_rlimit_nofile 20000;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events {
  worker_connections 19900;
}
mail {
  server_name bench.invalid;
  auth_http ${ADDR.authHttp}:${PORTS.authHttp}/auth;
  ssl_certificate ${f.ecdsa.cert};
  ssl_certificate_key ${f.ecdsa.key};
  ssl_certificate ${f.rsa.cert};
  ssl_certificate_key ${f.rsa.key};
  ssl_protocols TLSv1.2 TLSv1.3;
  server { listen ${a}:${PORTS.imap}; protocol imap; }
  server { listen ${a}:${PORTS.imaps} ssl; protocol imap; }
  server { listen ${a}:${PORTS.pop3}; protocol pop3; }
  server { listen ${a}:${PORTS.pop3s} ssl; protocol pop3; }
}
`;
}

export function portierConf(f: Files, workers: number | 'auto', lmtp: boolean): string {
  const a = ADDR.portier;
  return `instance_name: bench-portier
protocols: imap pop3${lmtp ? ' lmtp' : ''}
listen: ${a}
workers: ${workers}
admin_socket: ""
log_level: warn
service:
  imap-login:
    inet_listener:
      imap: { port: ${PORTS.imap} }
      imaps: { port: ${PORTS.imaps}, ssl: yes }
  pop3-login:
    inet_listener:
      pop3: { port: ${PORTS.pop3} }
      pop3s: { port: ${PORTS.pop3s}, ssl: yes }
${lmtp ? `  lmtp:\n    inet_listener:\n      lmtp: { port: ${PORTS.lmtp} }\n` : ''}ssl: yes
ssl_cert: ${f.ecdsa.cert}
ssl_key: ${f.ecdsa.key}
ssl_alt_cert: ${f.rsa.cert}
ssl_alt_key: ${f.rsa.key}
disable_plaintext_auth: no
auth_penalty_max_delay: 0
# Equivalent to the peers: Dovecot 2.3 and nginx limit neither clients per address before
# login nor proxied sessions per user and address (every generator client is 127.0.0.5,
# idle sessions are all user1).
login_max_preauth_per_ip: 0
mail_max_userip_connections: 0
passdb:
  - driver: passwd-file
    args: ${f.proxyUsers}
`;
}

export function writeConf(path: string, text: string): string {
  writeFileSync(path, text);
  return path;
}
