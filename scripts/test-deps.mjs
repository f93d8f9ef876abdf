#!/usr/bin/env node
// Makes sure the real peers the e2e tests start (Dovecot, PostgreSQL, Redis, openssl, ...)
// are installed; installs the Debian packages when run as root, otherwise says how.
// Idempotent and fast when everything is present: only file existence checks.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { aptCommand, aptInstall, executable, PATH_DIRS, which } from './apt.mjs';

// command -> Debian packages that provide it
const NEEDS = [
  { cmd: 'dovecot', pkgs: ['dovecot-core', 'dovecot-imapd', 'dovecot-pop3d', 'dovecot-lmtpd'] },
  { cmd: 'doveadm', pkgs: ['dovecot-core'] },
  { cmd: 'redis-server', pkgs: ['redis-server'] },
  { cmd: 'openssl', pkgs: ['openssl'] },
  { cmd: 'python3', pkgs: ['python3'] },
  { cmd: 'curl', pkgs: ['curl'] },
  { cmd: 'swaks', pkgs: ['swaks'] },
  // test/e2e/dead-peer.test.ts: a private network namespace with a black-holed address.
  { cmd: 'unshare', pkgs: ['util-linux'] },
  { cmd: 'ip', pkgs: ['iproute2'] },
];
const PG_BINS = ['initdb', 'pg_ctl', 'postgres', 'createdb'];
const PG_PKGS = ['postgresql'];
// Dovecot's imap/pop3/lmtp binaries live outside PATH.
const DOVECOT_LIBEXEC = [
  { file: '/usr/lib/dovecot/imap', pkg: 'dovecot-imapd' },
  { file: '/usr/lib/dovecot/pop3', pkg: 'dovecot-pop3d' },
  { file: '/usr/lib/dovecot/lmtp', pkg: 'dovecot-lmtpd' },
];
// System users the peers run as: mail (maildirs), dovenull/dovecot (Dovecot), postgres.
const USERS = [
  { name: 'mail', pkg: 'base-passwd' },
  { name: 'dovecot', pkg: 'dovecot-core' },
  { name: 'dovenull', pkg: 'dovecot-core' },
  { name: 'postgres', pkg: 'postgresql' },
];

function pgBinDir() {
  if (process.env.PG_BIN_DIR) return PG_BINS.every((b) => executable(join(process.env.PG_BIN_DIR, b))) ? process.env.PG_BIN_DIR : undefined;
  let versions = [];
  try {
    versions = readdirSync('/usr/lib/postgresql').sort((a, b) => Number(b) - Number(a));
  } catch {
    // not installed
  }
  for (const v of versions) {
    const dir = join('/usr/lib/postgresql', v, 'bin');
    if (PG_BINS.every((b) => executable(join(dir, b)))) return dir;
  }
  for (const dir of PATH_DIRS) if (PG_BINS.every((b) => executable(join(dir, b)))) return dir;
  return undefined;
}

function systemUsers() {
  try {
    return new Set(readFileSync('/etc/passwd', 'utf8').split('\n').map((l) => l.split(':')[0]));
  } catch {
    return new Set();
  }
}

function check() {
  const missing = [];
  const pkgs = new Set();
  for (const n of NEEDS) {
    if (which(n.cmd) === undefined) {
      missing.push(n.cmd);
      n.pkgs.forEach((p) => pkgs.add(p));
    }
  }
  for (const d of DOVECOT_LIBEXEC) {
    if (!existsSync(d.file)) {
      missing.push(d.file);
      pkgs.add(d.pkg);
    }
  }
  const pgBin = pgBinDir();
  if (pgBin === undefined) {
    missing.push(PG_BINS.join('+'));
    PG_PKGS.forEach((p) => pkgs.add(p));
  }
  const users = systemUsers();
  for (const u of USERS) {
    if (!users.has(u.name)) {
      missing.push(`user ${u.name}`);
      pkgs.add(u.pkg);
    }
  }
  return { missing, pkgs: [...pkgs], pgBin };
}

const ALL_PKGS = [...new Set([...NEEDS.flatMap((n) => n.pkgs), ...PG_PKGS])];

let state = check();
if (state.missing.length > 0) {
  const isRoot = process.getuid?.() === 0;
  const hasApt = which('apt-get') !== undefined;
  if (!isRoot || !hasApt) {
    console.error(`test-deps: missing test peers: ${state.missing.join(', ')}`);
    console.error(
      hasApt
        ? `test-deps: not root; install them with:\n  ${aptCommand(state.pkgs)}`
        : `test-deps: no apt-get here; install the equivalents of these Debian packages: ${ALL_PKGS.join(' ')}`,
    );
    process.exit(1);
  }
  console.log(`test-deps: installing ${state.pkgs.join(' ')} (missing: ${state.missing.join(', ')})`);
  if (!aptInstall(state.pkgs, 'test-deps')) {
    console.error(`test-deps: installation failed; try:\n  ${aptCommand(state.pkgs)}`);
    process.exit(1);
  }
  state = check();
  if (state.missing.length > 0) {
    console.error(`test-deps: still missing after install: ${state.missing.join(', ')}`);
    process.exit(1);
  }
}
console.log(`test-deps: ok (dovecot, redis-server, postgres in ${state.pgBin}, openssl, python3, curl, swaks, unshare, ip)`);
