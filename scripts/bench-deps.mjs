#!/usr/bin/env node
// Makes sure the peers `npm run bench:compare` measures against are installed: Dovecot (the
// backend and the reference proxy) and nginx's mail proxy (Debian nginx-light +
// libnginx-mod-mail). Installs the Debian packages when run as root, otherwise says how.
// Idempotent and fast when everything is present: only file existence checks.
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, rmSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';

const NEEDS = [
  { file: 'dovecot', pkg: 'dovecot-core' },
  { file: '/usr/lib/dovecot/imap', pkg: 'dovecot-imapd' },
  { file: '/usr/lib/dovecot/pop3', pkg: 'dovecot-pop3d' },
  { file: '/usr/lib/dovecot/lmtp', pkg: 'dovecot-lmtpd' },
  { file: 'nginx', pkg: 'nginx-light' },
  { file: '/usr/lib/nginx/modules/ngx_mail_module.so', pkg: 'libnginx-mod-mail' },
  { file: 'openssl', pkg: 'openssl' },
];

const PATH_DIRS = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/bin', '/sbin', '/bin'].filter(Boolean);

function executable(p) {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function present(file) {
  if (file.startsWith('/')) return existsSync(file);
  return PATH_DIRS.some((dir) => executable(join(dir, file)));
}

function missing() {
  return NEEDS.filter((n) => !present(n.file));
}

function aptInstall(pkgs) {
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = () =>
    spawnSync('apt-get', ['install', '-y', '--no-install-recommends', '-o', 'Dpkg::Options::=--force-confold', ...pkgs], {
      stdio: ['ignore', 'inherit', 'inherit'],
      env,
    }).status === 0;
  // Keep package scripts from starting nginx/Dovecot as services on standard ports; only
  // when no policy is in place already, and removed again afterwards.
  const policy = '/usr/sbin/policy-rc.d';
  const ownPolicy = !existsSync(policy);
  if (ownPolicy) writeFileSync(policy, '#!/bin/sh\n# temporary, from portier scripts/bench-deps.mjs\nexit 101\n', { mode: 0o755 });
  try {
    if (install()) return true;
    console.error('bench-deps: apt-get install failed; running apt-get update and retrying');
    if (spawnSync('apt-get', ['update'], { stdio: ['ignore', 'inherit', 'inherit'], env }).status !== 0) return false;
    return install();
  } finally {
    if (ownPolicy) rmSync(policy, { force: true });
  }
}

let lack = missing();
if (lack.length > 0) {
  const pkgs = [...new Set(lack.map((n) => n.pkg))];
  const isRoot = process.getuid?.() === 0;
  const hasApt = PATH_DIRS.some((d) => executable(join(d, 'apt-get')));
  if (!isRoot || !hasApt) {
    console.error(`bench-deps: missing: ${lack.map((n) => n.file).join(', ')}`);
    console.error(
      hasApt
        ? `bench-deps: not root; install them with:\n  sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${pkgs.join(' ')}`
        : `bench-deps: no apt-get here; install the equivalents of these Debian packages: ${pkgs.join(' ')}`,
    );
    process.exit(1);
  }
  console.log(`bench-deps: installing ${pkgs.join(' ')}`);
  if (!aptInstall(pkgs)) {
    console.error('bench-deps: installation failed');
    process.exit(1);
  }
  lack = missing();
  if (lack.length > 0) {
    console.error(`bench-deps: still missing after install: ${lack.map((n) => n.file).join(', ')}`);
    process.exit(1);
  }
}
console.log('bench-deps: ok (dovecot, nginx with the mail module, openssl)');
