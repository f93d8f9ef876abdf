/**
 * The checkpassword driver against real programs: a bash script speaking the qmail interface,
 * portier's bin/checkpassword-reply and Dovecot's own checkpassword-reply (installed with the
 * test peers), exit codes 1/2/111, a hanging program (its whole process group is killed),
 * lookups without a password (AUTHORIZED=1), the environment, and the concurrency bound.
 */
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { CheckpasswordPassdb, parseReply, tabEscape, tabUnescape } from '../../../src/passdb/checkpassword.js';
import type { AuthRequest } from '../../../src/passdb/types.js';
import { silentLogger } from '../../../src/telemetry/log.js';
import { makeTempDir } from '../../support/tmp.js';

const DOVECOT_REPLY = '/usr/lib/dovecot/checkpassword-reply';

const SCRIPT = `#!/bin/bash
IFS= read -r -d '' user <&3
IFS= read -r -d '' pass <&3
exec 3<&-
dir=$(dirname "$0")
case "$user" in
  alice)
    [ "$pass" = "secret" ] || exit 1
    export proxy=y host=127.0.0.2 port=1143 destuser=alice2 odd=$'tab\\there'
    export EXTRA="proxy host port destuser odd"
    exec "$@" ;;
  misuse) exit 2 ;;
  temp) exit 111 ;;
  vpop) exit 12 ;;
  noreply) exit 0 ;;
  hang)
    sleep 30 &
    echo $! > "$dir/hang.pid"
    wait ;;
  slow) sleep 0.4; export EXTRA=""; exec "$@" ;;
  env)
    export LEAK=$(env | grep -c -- "$pass" || true)
    export DUMP="$SERVICE|$PROTO|$TCPREMOTEIP|$TCPLOCALPORT|$AUTH_USER|$AUTH_DOMAIN|\${MASTER_USER:-}|\${AUTHORIZED:-}|$pass"
    export EXTRA="DUMP LEAK"
    exec "$@" ;;
  lookup|lookup@example.org)
    if [ "$AUTHORIZED" = 1 ]; then export AUTHORIZED=2 proxy=y host=10.1.1.1 EXTRA="proxy host"; exec "$@"; fi
    exit 1 ;;
  *) [ "$AUTHORIZED" = 1 ] && exit 3; exit 1 ;;
esac
`;

let dir: string;
let script: string;

const req = (user: string, password?: string): AuthRequest => ({
  protocol: 'imap', user, origUser: user, mech: 'PLAIN', sessionId: 's', remoteIp: '192.0.2.7', remotePort: 4242,
  localIp: '192.0.2.2', localPort: 143, realRemoteIp: '192.0.2.7', realLocalIp: '192.0.2.2', secured: true,
  password: password === undefined ? undefined : Buffer.from(password),
});

function db(opts: { replyPath?: string | undefined; timeoutMs?: number; maxConcurrency?: number; args?: string } = {}): CheckpasswordPassdb {
  return new CheckpasswordPassdb({
    name: 'cp', args: opts.args ?? script, replyPath: opts.replyPath, timeoutMs: opts.timeoutMs ?? 5000,
    maxConcurrency: opts.maxConcurrency ?? 8, log: silentLogger(),
  });
}

beforeAll(async () => {
  dir = await makeTempDir('portier-cp-');
  script = join(dir, 'checkpassword.sh');
  writeFileSync(script, SCRIPT);
  chmodSync(script, 0o755);
});

describe('reply parsing', () => {
  test("Dovecot's tab escaping round-trips; LF is refused", () => {
    const raw = 'a\tb\x01c\nd\re\0f';
    expect(tabUnescape(tabEscape(raw))).toBe(raw);
    expect(tabEscape(raw)).not.toMatch(/[\t\n\r\0]/);
    const f = parseReply(Buffer.from(`user=bob\tproxy=y\thost=h\tx=${tabEscape('1\t2')}\tflag\t`));
    expect(f).toEqual(new Map([['user', 'bob'], ['proxy', 'y'], ['host', 'h'], ['x', '1\t2'], ['flag', '']]));
    expect(parseReply(Buffer.from('a=1\nb=2\t'))).toMatch(/LF/);
    expect(parseReply(Buffer.alloc(0))).toMatch(/no reply/);
  });
});

describe('checkpassword passdb', () => {
  for (const [label, replyPath] of [['portier bin/checkpassword-reply', undefined], ["Dovecot's checkpassword-reply", DOVECOT_REPLY]] as const) {
    test(`right password: verified, with the EXTRA fields (${label})`, async () => {
      if (replyPath !== undefined) expect(existsSync(replyPath)).toBe(true);
      const r = await db({ replyPath }).lookup(req('alice', 'secret'));
      expect(r.kind).toBe('verified');
      if (r.kind !== 'verified') return;
      expect(r.ok).toBe(true);
      expect(Object.fromEntries(r.fields)).toMatchObject({ proxy: 'y', host: '127.0.0.2', port: '1143', destuser: 'alice2', odd: 'tab\there' });
      expect(r.fields.get('userdb_uid')).toBe(String(process.getuid?.()));
    });
  }

  test('wrong password (exit 1) and vpopmail failure codes: a verified mismatch', async () => {
    expect(await db().lookup(req('alice', 'nope'))).toEqual({ kind: 'verified', ok: false, fields: new Map() });
    expect(await db().lookup(req('vpop', 'x'))).toMatchObject({ kind: 'verified', ok: false });
  });

  test('exit 2 (misuse), 111 and exit 0 without a reply are temporary failures', async () => {
    expect(await db().lookup(req('misuse', 'x'))).toMatchObject({ kind: 'tempfail', reason: 'cp: exit 2' });
    expect(await db().lookup(req('temp', 'x'))).toMatchObject({ kind: 'tempfail', reason: 'cp: exit 111' });
    expect(await db().lookup(req('noreply', 'x'))).toMatchObject({ kind: 'tempfail' });
  });

  test('a hanging program: temporary failure at the timeout, its process group killed', async () => {
    const started = Date.now();
    const r = await db({ timeoutMs: 700 }).lookup(req('hang', 'x'));
    const took = Date.now() - started;
    expect(r).toMatchObject({ kind: 'tempfail', reason: 'cp: timeout' });
    expect(took).toBeGreaterThanOrEqual(600);
    expect(took).toBeLessThan(5000);
    const pid = Number(readFileSync(join(dir, 'hang.pid'), 'utf8'));
    let alive = true;
    for (let i = 0; i < 40 && alive; i++) {
      try {
        process.kill(pid, 0);
        await new Promise((r2) => setTimeout(r2, 50));
      } catch {
        alive = false;
      }
    }
    expect(alive).toBe(false);
  });

  test("Dovecot's environment for the program; the password is only on fd 3", async () => {
    const r = await db().lookup(req('env', 'pw-in-fd3-only'));
    expect(r.kind).toBe('verified');
    if (r.kind !== 'verified') return;
    expect(r.fields.get('dump')).toBe('imap|TCP|192.0.2.7|143|env||||pw-in-fd3-only');
    expect(r.fields.get('leak')).toBe('0');
  });

  test('lookup without a password: AUTHORIZED=1, exit 2 with fields = found, exit 3 = unknown', async () => {
    const found = await db().lookup(req('lookup'));
    expect(found.kind).toBe('found');
    if (found.kind === 'found') expect(found.fields.get('host')).toBe('10.1.1.1');
    expect(await db().lookup(req('ghost'))).toEqual({ kind: 'unknown' });
    expect(await db().lookup(req('temp'))).toMatchObject({ kind: 'tempfail' });
  });

  test('arguments are split before expansion: a user name cannot add arguments', async () => {
    const argScript = join(dir, 'args.sh');
    writeFileSync(argScript, '#!/bin/bash\ncat <&3 >/dev/null\nexport ARGC=$# FIRST="$1" EXTRA="ARGC FIRST"\nexec "${@: -1}"\n');
    chmodSync(argScript, 0o755);
    const r = await db({ args: `${argScript} --user=%u` }).lookup(req('a b --evil', 'x'));
    expect(r.kind).toBe('verified');
    if (r.kind !== 'verified') return;
    expect(r.fields.get('argc')).toBe('2');
    expect(r.fields.get('first')).toBe('--user=a b --evil');
  });

  test('too long user+password (Dovecot: 512 bytes) or a NUL in the password fail without running anything', async () => {
    expect(await db().lookup(req('alice', 'x'.repeat(600)))).toMatchObject({ kind: 'verified', ok: false });
    expect(await db().lookup(req('alice', 'sec\0ret'))).toMatchObject({ kind: 'verified', ok: false });
  });

  test('max_concurrency bounds programs running at once; the rest wait', async () => {
    const d = db({ maxConcurrency: 2 });
    const started = Date.now();
    const results = await Promise.all(Array.from({ length: 6 }, () => d.lookup(req('slow', 'x'))));
    expect(results.every((r) => r.kind === 'verified' && r.ok)).toBe(true);
    // 6 runs of ≥0.4 s, two at a time: at least three rounds.
    expect(Date.now() - started).toBeGreaterThanOrEqual(1150);
  });

  test('a queue wait counts against the timeout', async () => {
    // Runs of ≥0.4 s one at a time: the fifth would end at ≥2 s, past the 1.5 s bound.
    const d = db({ maxConcurrency: 1, timeoutMs: 1500 });
    const results = await Promise.all(Array.from({ length: 5 }, () => d.lookup(req('slow', 'x'))));
    expect(results.map((r) => r.kind)).toContain('tempfail');
    expect(results[0]).toMatchObject({ kind: 'verified', ok: true });
  });
});
