/**
 * `doveadm pw` as a test oracle (Dovecot 2.3 is a test prerequisite). Passwords are bytes: they
 * reach doveadm through printf escapes, so non-UTF-8 passwords can be tested too.
 */
import { execFileSync, spawnSync } from 'node:child_process';

const SCRIPT = 'pw="$(printf "%b" "$PORTIER_PW")"; exec doveadm pw "$@" -p "$pw"';

function escaped(password: Buffer): string {
  if (password.length === 0 || password.at(-1) === 0x0a) throw new Error('doveadm helper: password must not be empty or end in a newline');
  return [...password].map((b) => `\\x${b.toString(16).padStart(2, '0')}`).join('');
}

export interface DoveadmOptions {
  readonly user?: string;
  readonly rounds?: number;
}

function extra(opts: DoveadmOptions): string[] {
  const args: string[] = [];
  if (opts.user !== undefined) args.push('-u', opts.user);
  if (opts.rounds !== undefined) args.push('-r', String(opts.rounds));
  return args;
}

/** `doveadm pw -s SCHEME -p PASSWORD`: a fresh stored value. */
export function doveadmHash(scheme: string, password: Buffer, opts: DoveadmOptions = {}): string {
  const out = execFileSync('bash', ['-c', SCRIPT, 'bash', '-s', scheme, ...extra(opts)], {
    env: { ...process.env, PORTIER_PW: escaped(password) },
    encoding: 'utf8',
  });
  return out.trim();
}

/** `doveadm pw -t STORED -p PASSWORD`: does Dovecot accept this stored value for this password? */
export function doveadmVerifies(stored: string, password: Buffer, opts: DoveadmOptions = {}): boolean {
  const res = spawnSync('bash', ['-c', SCRIPT, 'bash', '-t', stored, ...extra(opts)], {
    env: { ...process.env, PORTIER_PW: escaped(password) },
    encoding: 'utf8',
  });
  return res.status === 0 && res.stdout.includes('(verified)');
}
