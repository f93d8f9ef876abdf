// Shared by scripts/test-deps.mjs and scripts/bench-deps.mjs: finding commands and installing
// Debian packages with apt-get. Dependency-free (node: modules only), so it runs before
// `npm ci` has put anything in node_modules.
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, rmSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/** PATH, plus the sbin/bin directories a non-login root shell may lack. */
export const PATH_DIRS = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/bin', '/sbin', '/bin'].filter(Boolean);

export function executable(p) {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The full path of a command found in PATH_DIRS, or undefined. */
export function which(cmd) {
  for (const dir of PATH_DIRS) {
    const p = join(dir, cmd);
    if (executable(p)) return p;
  }
  return undefined;
}

/** The command line to give a user who is not root. */
export const aptCommand = (pkgs) =>
  `sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${pkgs.join(' ')}`;

/**
 * apt-get install (after an apt-get update if the first try fails); true when it worked.
 * `script` (e.g. `test-deps`) prefixes messages and names the temporary policy-rc.d.
 */
export function aptInstall(pkgs, script) {
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = () =>
    spawnSync('apt-get', ['install', '-y', '--no-install-recommends', '-o', 'Dpkg::Options::=--force-confold', ...pkgs], {
      stdio: ['ignore', 'inherit', 'inherit'],
      env,
    }).status === 0;
  // Keep package scripts from starting Dovecot/Redis/PostgreSQL/nginx as services on standard
  // ports; only when no policy is in place already, and removed again afterwards.
  const policy = '/usr/sbin/policy-rc.d';
  const ownPolicy = !existsSync(policy);
  if (ownPolicy) writeFileSync(policy, `#!/bin/sh\n# temporary, from portier scripts/${script}.mjs\nexit 101\n`, { mode: 0o755 });
  try {
    if (install()) return true;
    console.error(`${script}: apt-get install failed; running apt-get update and retrying`);
    if (spawnSync('apt-get', ['update'], { stdio: ['ignore', 'inherit', 'inherit'], env }).status !== 0) return false;
    return install();
  } finally {
    if (ownPolicy) rmSync(policy, { force: true });
  }
}
