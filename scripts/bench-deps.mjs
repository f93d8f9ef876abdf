#!/usr/bin/env node
// Makes sure the peers `npm run bench:compare` measures against are installed: Dovecot (the
// backend and the reference proxy) and nginx's mail proxy (Debian nginx-light +
// libnginx-mod-mail). Installs the Debian packages when run as root, otherwise says how.
// Idempotent and fast when everything is present: only file existence checks.
import { existsSync } from 'node:fs';
import { aptCommand, aptInstall, which } from './apt.mjs';

const NEEDS = [
  { file: 'dovecot', pkg: 'dovecot-core' },
  { file: '/usr/lib/dovecot/imap', pkg: 'dovecot-imapd' },
  { file: '/usr/lib/dovecot/pop3', pkg: 'dovecot-pop3d' },
  { file: '/usr/lib/dovecot/lmtp', pkg: 'dovecot-lmtpd' },
  { file: 'nginx', pkg: 'nginx-light' },
  { file: '/usr/lib/nginx/modules/ngx_mail_module.so', pkg: 'libnginx-mod-mail' },
  { file: 'openssl', pkg: 'openssl' },
];

function present(file) {
  if (file.startsWith('/')) return existsSync(file);
  return which(file) !== undefined;
}

function missing() {
  return NEEDS.filter((n) => !present(n.file));
}

let lack = missing();
if (lack.length > 0) {
  const pkgs = [...new Set(lack.map((n) => n.pkg))];
  const isRoot = process.getuid?.() === 0;
  const hasApt = which('apt-get') !== undefined;
  if (!isRoot || !hasApt) {
    console.error(`bench-deps: missing: ${lack.map((n) => n.file).join(', ')}`);
    console.error(
      hasApt
        ? `bench-deps: not root; install them with:\n  ${aptCommand(pkgs)}`
        : `bench-deps: no apt-get here; install the equivalents of these Debian packages: ${pkgs.join(' ')}`,
    );
    process.exit(1);
  }
  console.log(`bench-deps: installing ${pkgs.join(' ')}`);
  if (!aptInstall(pkgs, 'bench-deps')) {
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
