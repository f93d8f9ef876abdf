/**
 * R26, differential tests against the reference proxy: the same scripted client sessions run
 * against portier and against Dovecot 2.3 running as a proxy, both in front of one real
 * Dovecot backend, and the response class of every step must match: tagged OK / NO / BAD,
 * untagged BAD / BYE, `+` continuation, connection closed (POP3: +OK / -ERR / `+` / close).
 * Where portier differs on purpose, the case is in KNOWN_DIFFERENCES with its reason and the
 * doc section that says why, and portier's own class is asserted there instead.
 *
 * Addresses: client 127.0.0.5, backend 127.0.0.2, Dovecot proxy 127.0.0.3, portier 127.0.0.4
 * (a server that sees its own address as the client's treats the connection as secured).
 * Both proxies use the same passwd-file lines (`<dir>/<service>-users`), and the backend trusts
 * both the same way (login_trusted_networks: the address they connect from).
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { CLIENT_IP } from '../support/clients.js';
import { passdbEntry, testConfig } from '../support/config.js';
import { startDovecot, type DovecotBackend } from '../support/dovecot.js';
import { LineClient } from '../support/lines.js';
import { freePort, freePorts } from '../support/ports.js';
import { startPortier, type RunningPortier } from '../support/portier.js';
import { makeTempDir } from '../support/tmp.js';

const BACKEND_IP = '127.0.0.2';
const DOVECOT_PROXY_IP = '127.0.0.3';
const PORTIER_IP = '127.0.0.4';
/** Where both proxies connect to the backend from (the kernel's source for 127.0.0.2). */
const PROXY_SOURCE_IP = '127.0.0.1';
/** One wait for one line; generous, so a loaded machine is slow, not failing. */
const LINE_TIMEOUT_MS = 10_000;

/** A user whose name and password need quoting (nginx-tests mail_imap.t "quoted strings"). */
const QUOTED_USER = 'qu"o\\te';
const QUOTED_PASS = 'pa\\ss"wd';

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');
const plain = (user: string, pass: string): string => b64(`\0${user}\0${pass}`);
const imapQuote = (s: string): string => `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;

// ---------------------------------------------------------------------------------------
// Scripts

interface Step {
  /** Bytes sent as written (CRLF included); '' sends nothing and only reads. */
  readonly send: string;
  /** IMAP: the tag whose tagged reply ends the step; without one, the first reply of any class does. */
  readonly tag?: string;
  /** POP3: replies to read (pipelined lines); default 1. */
  readonly replies?: number;
  /** POP3: a +OK reply to this step is multi-line, ended by `.`. */
  readonly multiline?: boolean;
  /** Send it again (every 100 ms) until the server closes; runs of equal classes count once. */
  readonly repeatUntilClosed?: boolean;
}

interface Case {
  readonly name: string;
  readonly steps: readonly Step[];
}

const cmd = (tag: string, rest: string): Step => ({ send: `${tag} ${rest}\r\n`, tag });
const cont = (line: string, tag: string): Step => ({ send: `${line}\r\n`, tag });
const pop = (line: string, o: { multiline?: boolean } = {}): Step => ({ send: `${line}\r\n`, ...o });

const IMAP_CASES: readonly Case[] = [
  { name: 'CAPABILITY before login', steps: [cmd('a1', 'CAPABILITY')] },
  { name: 'NOOP before login', steps: [cmd('a1', 'NOOP')] },
  { name: 'LOGOUT before login', steps: [cmd('a1', 'LOGOUT')] },
  { name: 'an unknown command', steps: [cmd('a1', 'FOOBAR')] },
  { name: 'a tag without a command', steps: [{ send: 'a1\r\n', tag: 'a1' }] },
  { name: 'a command without a tag (invalid tag character)', steps: [{ send: '* NOOP\r\n' }] },
  { name: 'an empty line', steps: [{ send: '\r\n' }] },
  { name: 'LOGIN without arguments', steps: [cmd('a1', 'LOGIN')] },
  { name: 'LOGIN with one argument', steps: [cmd('a1', 'LOGIN alice')] },
  { name: 'lower-case commands', steps: [cmd('a1', 'noop'), cmd('a2', 'login alice alice-pw')] },
  { name: 'ID before login', steps: [cmd('a1', 'ID ("name" "differential")'), cmd('a2', 'ID NIL')] },
  { name: 'STARTTLS without TLS configured', steps: [cmd('a1', 'STARTTLS'), cmd('a2', 'NOOP')] },
  {
    name: 'four wrong passwords in a row',
    steps: [cmd('a1', 'LOGIN alice wrong1'), cmd('a2', 'LOGIN alice wrong2'), cmd('a3', 'LOGIN alice wrong3'), cmd('a4', 'LOGIN alice wrong4')],
  },
  {
    name: 'LOGIN good, then SELECT INBOX and LOGOUT go through',
    steps: [cmd('a1', 'LOGIN alice alice-pw'), cmd('a2', 'SELECT INBOX'), cmd('a3', 'LOGOUT')],
  },
  {
    name: 'LOGIN wrong password (checked by the proxy), then right on the same connection',
    steps: [cmd('a1', 'LOGIN alice wrong'), cmd('a2', 'LOGIN alice alice-pw')],
  },
  {
    name: 'LOGIN wrong password (nopassword: the backend decides), then right',
    steps: [cmd('a1', 'LOGIN fwd wrong'), cmd('a2', 'LOGIN fwd fwd-pw')],
  },
  { name: 'LOGIN of an unknown user', steps: [cmd('a1', 'LOGIN nosuchuser whatever')] },
  { name: 'LOGIN with quoted strings and escapes', steps: [cmd('a1', `LOGIN ${imapQuote(QUOTED_USER)} ${imapQuote(QUOTED_PASS)}`)] },
  {
    name: 'LOGIN with synchronising literals {5}',
    steps: [cmd('a1', 'LOGIN {5}'), cont('alice {8}', 'a1'), cont('alice-pw', 'a1')],
  },
  { name: 'LOGIN with non-synchronising literals {5+}', steps: [{ send: 'a1 LOGIN {5+}\r\nalice {8+}\r\nalice-pw\r\n', tag: 'a1' }] },
  { name: 'AUTHENTICATE PLAIN with SASL-IR', steps: [cmd('a1', `AUTHENTICATE PLAIN ${plain('alice', 'alice-pw')}`)] },
  {
    name: 'AUTHENTICATE PLAIN with a continuation',
    steps: [cmd('a1', 'AUTHENTICATE PLAIN'), cont(plain('alice', 'alice-pw'), 'a1')],
  },
  { name: 'AUTHENTICATE PLAIN with a wrong password', steps: [cmd('a1', `AUTHENTICATE PLAIN ${plain('alice', 'wrong')}`), cmd('a2', 'NOOP')] },
  {
    name: 'AUTHENTICATE LOGIN step by step',
    steps: [cmd('a1', 'AUTHENTICATE LOGIN'), cont(b64('alice'), 'a1'), cont(b64('alice-pw'), 'a1')],
  },
  { name: 'AUTHENTICATE cancelled with *', steps: [cmd('a1', 'AUTHENTICATE PLAIN'), cont('*', 'a1'), cmd('a2', 'NOOP')] },
  { name: 'AUTHENTICATE with an unknown mechanism', steps: [cmd('a1', 'AUTHENTICATE X-UNKNOWN')] },
  { name: 'AUTHENTICATE without arguments', steps: [cmd('a1', 'AUTHENTICATE')] },
  { name: 'AUTHENTICATE with malformed base64 in the continuation', steps: [cmd('a1', 'AUTHENTICATE PLAIN'), cont('!!!not-base64!!!', 'a1'), cmd('a2', 'NOOP')] },
  { name: 'AUTHENTICATE with malformed base64 as SASL-IR', steps: [cmd('a1', 'AUTHENTICATE PLAIN !!!not-base64!!!'), cmd('a2', 'NOOP')] },
  { name: 'pipelined commands in one packet', steps: [{ send: 'a1 NOOP\r\na2 CAPABILITY\r\na3 NOOP\r\n', tag: 'a3' }] },
  { name: 'pipelined invalid command, then NOOP', steps: [{ send: 'a1 INVALID COMMAND WITH ARGUMENTS\r\na2 NOOP\r\n', tag: 'a2' }] },
  {
    name: 'an invalid command with a non-synchronising literal: the literal is not a command',
    steps: [{ send: 'a1 FOOBAR {10+}\r\ntest test \r\na2 NOOP\r\n', tag: 'a2' }],
  },
  { name: 'pipelined LOGIN and LOGOUT', steps: [{ send: 'a1 LOGIN alice alice-pw\r\na2 LOGOUT\r\n', tag: 'a2' }] },
  { name: 'three bad commands in a row', steps: [cmd('x1', 'FOO'), cmd('x2', 'FOO'), cmd('x3', 'FOO')] },
  // IMAP relays a backend NO with a response code other than AUTHENTICATIONFAILED, as Dovecot does.
  { name: 'LOGIN of a user the backend refuses with its own text', steps: [cmd('a1', 'LOGIN gone gone-pw'), cmd('a2', 'NOOP')] },
  { name: 'LOGIN of a user whose backend is down', steps: [cmd('a1', 'LOGIN down down-pw'), cmd('a2', 'NOOP')] },
];

const POP3_CASES: readonly Case[] = [
  { name: 'CAPA', steps: [pop('CAPA', { multiline: true })] },
  { name: 'USER/PASS good, then STAT and QUIT go through', steps: [pop('USER alice'), pop('PASS alice-pw'), pop('STAT'), pop('QUIT')] },
  { name: 'USER/PASS wrong password (checked by the proxy), then right', steps: [pop('USER alice'), pop('PASS wrong'), pop('USER alice'), pop('PASS alice-pw')] },
  { name: 'USER/PASS wrong password (nopassword: the backend decides), then right', steps: [pop('USER fwd'), pop('PASS wrong'), pop('USER fwd'), pop('PASS fwd-pw')] },
  { name: 'USER/PASS of an unknown user', steps: [pop('USER nosuchuser'), pop('PASS whatever')] },
  { name: 'PASS before USER', steps: [pop('PASS alice-pw')] },
  { name: 'USER without a name', steps: [pop('USER')] },
  { name: 'lower-case commands', steps: [pop('capa', { multiline: true }), pop('user alice'), pop('pass alice-pw')] },
  { name: 'AUTH without arguments lists the mechanisms', steps: [pop('AUTH', { multiline: true })] },
  { name: 'STLS without TLS configured', steps: [pop('STLS')] },
  { name: 'APOP when it is not offered', steps: [pop('APOP alice 0123456789abcdef0123456789abcdef')] },
  {
    name: 'four wrong passwords in a row',
    steps: [pop('USER alice'), pop('PASS wrong1'), pop('USER alice'), pop('PASS wrong2'), pop('USER alice'), pop('PASS wrong3'), pop('USER alice'), pop('PASS wrong4')],
  },
  { name: 'an unknown command', steps: [pop('FOOBAR')] },
  { name: 'AUTH PLAIN with an initial response', steps: [pop(`AUTH PLAIN ${plain('alice', 'alice-pw')}`)] },
  { name: 'AUTH PLAIN with a continuation', steps: [pop('AUTH PLAIN'), pop(plain('alice', 'alice-pw'))] },
  { name: 'AUTH PLAIN with a wrong password', steps: [pop(`AUTH PLAIN ${plain('alice', 'wrong')}`)] },
  { name: 'AUTH cancelled with *', steps: [pop('AUTH PLAIN'), pop('*')] },
  { name: 'AUTH with an unknown mechanism', steps: [pop('AUTH X-UNKNOWN')] },
  { name: 'AUTH with malformed base64', steps: [pop('AUTH PLAIN !!!not-base64!!!')] },
  { name: 'pipelined USER, PASS and STAT', steps: [{ send: 'USER alice\r\nPASS alice-pw\r\nSTAT\r\n', replies: 3 }] },
  { name: 'QUIT before login', steps: [pop('QUIT')] },
  { name: 'four bad commands in a row', steps: [pop('FOO'), pop('FOO'), pop('FOO'), pop('FOO')] },
  { name: 'USER/PASS of a user the backend refuses with its own text', steps: [pop('USER gone'), pop('PASS gone-pw')] },
  { name: 'USER/PASS of a user whose backend is down', steps: [pop('USER down'), pop('PASS down-pw')] },
];

// ---------------------------------------------------------------------------------------
// Running a script and classifying what comes back

type Protocol = 'imap' | 'pop3';

interface StepResult {
  readonly sent: string;
  readonly lines: string[];
  readonly classes: string[];
  /** For the transcript only: nothing asserts on time. */
  readonly ms: number;
}

/** One line's class, or null for untagged data that says nothing about the outcome. */
function imapClass(line: string): string | null {
  if (line === '+' || line.startsWith('+ ')) return '+';
  if (line.startsWith('* ')) {
    const status = /^\* (BYE|BAD)\b/i.exec(line)?.[1];
    return status === undefined ? null : `* ${status.toUpperCase()}`;
  }
  const m = /^(\S+) (OK|NO|BAD)\b/i.exec(line);
  return m === null ? `? ${line.slice(0, 40)}` : `${m[1] ?? ''} ${(m[2] ?? '').toUpperCase()}`;
}

async function readImapStep(c: LineClient, step: Step): Promise<Omit<StepResult, 'sent' | 'ms'>> {
  const lines: string[] = [];
  const classes: string[] = [];
  let bye = false;
  for (;;) {
    let line: string;
    try {
      line = await c.line(LINE_TIMEOUT_MS);
    } catch (err) {
      if (!c.closed) throw err;
      classes.push('close');
      return { lines, classes };
    }
    lines.push(line);
    const cls = imapClass(line);
    if (cls === null) continue;
    classes.push(cls);
    if (cls === '* BYE') {
      bye = true;
      continue;
    }
    if (cls === '+' && !bye) return { lines, classes };
    const final = step.tag === undefined || cls.startsWith(`${step.tag} `);
    if (!final) continue;
    if (bye) {
      await c.waitClosed(LINE_TIMEOUT_MS);
      classes.push('close');
    }
    return { lines, classes };
  }
}

async function readPop3Step(c: LineClient, step: Step): Promise<Omit<StepResult, 'sent' | 'ms'>> {
  const lines: string[] = [];
  const classes: string[] = [];
  for (let i = 0; i < (step.replies ?? 1); i++) {
    let line: string;
    try {
      line = await c.line(LINE_TIMEOUT_MS);
    } catch (err) {
      if (!c.closed) throw err;
      classes.push('close');
      return { lines, classes };
    }
    lines.push(line);
    if (line.startsWith('+OK')) {
      classes.push('+OK');
      if (step.multiline === true) {
        for (let l = await c.line(LINE_TIMEOUT_MS); l !== '.'; l = await c.line(LINE_TIMEOUT_MS)) lines.push(l);
        lines.push('.');
      }
    } else if (line.startsWith('-ERR')) classes.push('-ERR');
    else if (line === '+' || line.startsWith('+ ')) classes.push('+');
    else classes.push(`? ${line.slice(0, 40)}`);
  }
  return { lines, classes };
}

/**
 * Every script ends with a probe, so a connection the server closed (or is closing) after the
 * last step shows as such: IMAP NOOP (OK before and after login), POP3 NOOP (-ERR before login,
 * +OK after: it is not a pre-login command).
 */
const PROBE: Readonly<Record<Protocol, Step>> = { imap: cmd('zz', 'NOOP'), pop3: pop('NOOP') };

async function runScript(protocol: Protocol, host: string, port: number, steps: readonly Step[]): Promise<StepResult[]> {
  const c = await LineClient.connect(port, { host, localAddress: CLIENT_IP });
  const read = protocol === 'imap' ? readImapStep : readPop3Step;
  const out: StepResult[] = [];
  try {
    const greeting = await c.line(LINE_TIMEOUT_MS);
    out.push({ sent: '(greeting)', ms: 0, lines: [greeting], classes: [protocol === 'imap' ? (/^\* OK /.test(greeting) ? '* OK' : `? ${greeting}`) : greeting.startsWith('+OK') ? '+OK' : `? ${greeting}`] });
    for (const step of [...steps, PROBE[protocol]]) {
      if (c.closed && c.pending() === '') {
        // Closed is closed, whether the previous step saw it or this one would have.
        out.push({ sent: step.send, lines: [], classes: ['close'], ms: 0 });
        continue;
      }
      const t0 = performance.now();
      if (step.send !== '') c.write(step.send);
      const r = await read(c, step);
      if (step.repeatUntilClosed === true) {
        for (let i = 0; !r.classes.includes('close'); i++) {
          if (i > 300) throw new Error(`still open after ${i} repeats of ${JSON.stringify(step.send)}`);
          await sleep(100);
          if (c.closed && c.pending() === '') r.classes.push('close');
          else {
            c.write(step.send);
            const more = await read(c, step);
            r.lines.push(...more.lines);
            for (const cls of more.classes) if (cls !== r.classes.at(-1)) r.classes.push(cls);
          }
        }
      }
      out.push({ sent: step.send, ...r, ms: Math.round(performance.now() - t0) });
    }
  } finally {
    c.close();
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Known differences: portier's class is asserted, and Dovecot's as observed, so an entry
// fails when either side changes.

interface KnownDifference {
  readonly protocol: Protocol;
  readonly case: string;
  /** Index into the script's results (0 is the greeting, the last one the probe). */
  readonly step: number;
  /** portier's classes at that step. */
  readonly portier: readonly string[];
  /** Dovecot's, as observed; null: the case runs against portier only (the reason says why). */
  readonly dovecot: readonly string[] | null;
  /** Where the classes agree and the words differ: portier's reply line, and Dovecot's. */
  readonly text?: { readonly portier: string; readonly dovecot: RegExp };
  readonly reason: string;
  readonly doc: string;
}

const IMAP_DIFFS = 'docs/imap.md#where-portier-differs-from-dovecot';
const POP3_DIFFS = 'docs/pop3.md#where-portier-differs-from-dovecot';

const KNOWN_DIFFERENCES: readonly KnownDifference[] = [
  {
    protocol: 'imap', case: 'AUTHENTICATE with malformed base64 in the continuation', step: 2,
    portier: ['a1 BAD'], dovecot: ['a1 NO'],
    reason: 'RFC 9051 §6.2.2: an undecodable response MUST get a tagged BAD; Dovecot 2.3 says NO [ALERT]',
    doc: IMAP_DIFFS,
  },
  {
    protocol: 'pop3', case: 'USER/PASS of a user the backend refuses with its own text', step: 2,
    portier: ['-ERR'], dovecot: ['-ERR'],
    text: { portier: '-ERR [AUTH] Authentication failed.', dovecot: /Moved-to-mx9/ },
    reason: 'generic refusal texts: Dovecot relays any backend -ERR, which can tell users apart',
    doc: POP3_DIFFS,
  },
  {
    protocol: 'pop3', case: 'USER without a name', step: 1,
    portier: ['-ERR'], dovecot: ['+OK'],
    reason: 'RFC 1939 §7: USER takes a name; an empty one is refused (and counted as invalid) rather than accepted for PASS to fail',
    doc: POP3_DIFFS,
  },
  {
    protocol: 'pop3', case: 'four bad commands in a row', step: 3,
    portier: ['-ERR'], dovecot: ['-ERR'],
    text: { portier: '-ERR Too many invalid commands.', dovecot: /^-ERR Unknown command\.$/ },
    reason: 'login_max_bad_commands (3) ends the connection at the third in POP3 as in IMAP; Dovecot\'s pop3-login allows a fourth',
    doc: POP3_DIFFS,
  },
  {
    protocol: 'pop3', case: 'four bad commands in a row', step: 4,
    portier: ['close'], dovecot: ['-ERR'],
    reason: 'the same: Dovecot closes only after the fourth (-ERR Too many invalid bad commands.)',
    doc: POP3_DIFFS,
  },
  {
    protocol: 'imap', case: 'LOGIN of a user whose backend is down', step: 1,
    portier: ['a1 NO'], dovecot: ['a1 NO'],
    text: { portier: 'a1 NO [UNAVAILABLE] Account is temporarily unavailable.', dovecot: /^a1 NO \[UNAVAILABLE\] / },
    reason: 'retries: portier backs off 100/200/400 ms inside proxy_timeout, Dovecot retries 3 times a second apart (time is not asserted)',
    doc: IMAP_DIFFS,
  },
  {
    protocol: 'pop3', case: 'USER/PASS of a user whose backend is down', step: 2,
    portier: ['-ERR'], dovecot: ['-ERR'],
    text: { portier: '-ERR [SYS/TEMP] Account is temporarily unavailable.', dovecot: /^-ERR \[SYS\/TEMP\] / },
    reason: 'retries, as for IMAP',
    doc: IMAP_DIFFS,
  },
  {
    protocol: 'imap', case: 'login_timeout is a deadline, not an idle timer', step: 1,
    portier: ['k OK', '* BYE', 'close'], dovecot: null,
    reason: 'Dovecot\'s pre-login timeout is a fixed 3-minute idle timer (not run: 3 minutes); a client busy with NOOPs is still cut at login_timeout',
    doc: IMAP_DIFFS,
  },
  {
    protocol: 'pop3', case: 'login_timeout is a deadline, not an idle timer', step: 1,
    portier: ['+OK', '-ERR', 'close'], dovecot: null,
    reason: 'the same for POP3',
    doc: IMAP_DIFFS,
  },
];

/** Run against a portier with login_timeout: 1s only (Dovecot's timeout cannot be shortened). */
const PORTIER_ONLY_CASES: Readonly<Record<Protocol, Case>> = {
  imap: { name: 'login_timeout is a deadline, not an idle timer', steps: [{ ...cmd('k', 'NOOP'), repeatUntilClosed: true }] },
  pop3: { name: 'login_timeout is a deadline, not an idle timer', steps: [{ ...pop('USER alice'), repeatUntilClosed: true }] },
};

function knownFor(protocol: Protocol, name: string): KnownDifference[] {
  return KNOWN_DIFFERENCES.filter((k) => k.protocol === protocol && k.case === name);
}

function transcript(label: string, r: readonly StepResult[]): string {
  return `--- ${label}\n` + r.map((s, i) => `#${i} > ${JSON.stringify(s.sent)} (${s.ms} ms)\n${s.lines.map((l) => `   < ${l}`).join('\n')}\n   = ${s.classes.join(', ')}`).join('\n');
}

// ---------------------------------------------------------------------------------------
// Peers

let backend: DovecotBackend;
let dovecotProxy: DovecotBackend;
let px: RunningPortier;
/** The same, with login_timeout: 1s, for the portier-only cases. */
let pxShort: RunningPortier;

function usersFile(backendPort: number, downPort: number): string {
  const to = `proxy=y host=${BACKEND_IP} port=${backendPort}`;
  return [
    `alice:{PLAIN}alice-pw::::::${to}`,
    `fwd:::::::${to} nopassword=y`,
    `${QUOTED_USER}:{PLAIN}${QUOTED_PASS}::::::${to}`,
    `gone:{PLAIN}gone-pw::::::${to}`,
    `down:{PLAIN}down-pw::::::proxy=y host=${BACKEND_IP} port=${downPort}`,
    '',
  ].join('\n');
}

async function dirWith(prefix: string, files: Record<string, string>): Promise<string> {
  const dir = await makeTempDir(prefix);
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text, { mode: 0o644 });
  return dir;
}

function portierConfig(imapPort: number, pop3Port: number, settings: Record<string, string> = {}): string {
  return testConfig(['imap', 'pop3'], {
    settings: { listen: PORTIER_IP, ...settings },
    ports: { imap: imapPort, pop3: pop3Port },
    passdb: passdbEntry('passwd-file', { args: "'scheme=PLAIN {{dir}}/%s-users'" }),
  });
}

beforeAll(async () => {
  // gone: the password is right, then the backend refuses with words of its own (nologin + reason).
  const backendDir = await dirWith('portier-dovecot-', { 'refused-users': 'gone:{PLAIN}gone-pw::::::nologin=y reason=Moved-to-mx9.example.org\n' });
  backend = await startDovecot({
    address: BACKEND_IP,
    dir: backendDir,
    users: [
      { user: 'alice', password: 'alice-pw' },
      { user: 'fwd', password: 'fwd-pw' },
      { user: QUOTED_USER, password: QUOTED_PASS },
    ],
    trustedNetworks: [PROXY_SOURCE_IP],
    extraConf: `passdb {\n  driver = passwd-file\n  args = scheme=PLAIN ${backendDir}/refused-users\n}\n`,
  });
  const downPort = await freePort(BACKEND_IP);
  const files = { 'imap-users': usersFile(backend.ports.imap, downPort), 'pop3-users': usersFile(backend.ports.pop3, downPort) };

  // Dovecot as the reference proxy, on the same passdb lines (the harness's own users file is empty).
  const proxyDir = await dirWith('portier-dovecot-proxy-', files);
  dovecotProxy = await startDovecot({
    address: DOVECOT_PROXY_IP,
    dir: proxyDir,
    protocols: ['imap', 'pop3'],
    extraConf: `passdb {\n  driver = passwd-file\n  args = scheme=PLAIN ${proxyDir}/%s-users\n}\n`,
  });

  const ports = await freePorts(4, PORTIER_IP);
  px = await startPortier(portierConfig(ports[0] ?? 0, ports[1] ?? 0), files);
  pxShort = await startPortier(portierConfig(ports[2] ?? 0, ports[3] ?? 0, { login_timeout: '1s' }), files);
});

afterAll(async () => {
  await px?.stop();
  await pxShort?.stop();
  await dovecotProxy?.stop();
  await backend?.stop();
});

function checkKnown(k: KnownDifference, got: StepResult | undefined, side: 'portier' | 'dovecot', both: string): void {
  const classes = side === 'portier' ? k.portier : k.dovecot;
  expect(got?.classes, `step #${k.step}: ${side}'s class as in KNOWN_DIFFERENCES (${k.reason}; ${k.doc})\n${both}`).toEqual(classes);
  if (k.text === undefined) return;
  const line = got?.lines.at(-1) ?? '';
  if (side === 'portier') expect(line, `step #${k.step}: portier's text (${k.reason})\n${both}`).toBe(k.text.portier);
  else expect(line, `step #${k.step}: Dovecot's text as in KNOWN_DIFFERENCES\n${both}`).toMatch(k.text.dovecot);
}

async function differential(protocol: Protocol, c: Case): Promise<void> {
  const [mine, theirs] = await Promise.all([
    runScript(protocol, PORTIER_IP, px.port(protocol), c.steps),
    runScript(protocol, DOVECOT_PROXY_IP, dovecotProxy.ports[protocol], c.steps),
  ]);
  const both = `${transcript('portier', mine)}\n${transcript('dovecot proxy', theirs)}`;
  if (process.env.DIFF_DUMP === '1') console.log(`=== ${protocol}: ${c.name}\n${both}`);
  const known = knownFor(protocol, c.name);
  expect(mine.length, both).toBe(theirs.length);
  for (let i = 0; i < mine.length; i++) {
    const k = known.find((d) => d.step === i);
    if (k === undefined) {
      expect(mine[i]?.classes, `step #${i} differs\n${both}`).toEqual(theirs[i]?.classes);
      continue;
    }
    checkKnown(k, mine[i], 'portier', both);
    checkKnown(k, theirs[i], 'dovecot', both);
  }
  // Every entry names a step that exists, so a renamed case or a shortened script cannot hide one.
  for (const k of known) expect(k.step, `${c.name}: KNOWN_DIFFERENCES step`).toBeLessThan(mine.length);
}

async function portierOnly(protocol: Protocol): Promise<void> {
  const c = PORTIER_ONLY_CASES[protocol];
  const mine = await runScript(protocol, PORTIER_IP, pxShort.port(protocol), c.steps);
  const both = transcript('portier (login_timeout: 1s)', mine);
  if (process.env.DIFF_DUMP === '1') console.log(`=== ${protocol}: ${c.name}\n${both}`);
  const known = knownFor(protocol, c.name);
  expect(known.length, `${c.name} is listed in KNOWN_DIFFERENCES`).toBeGreaterThan(0);
  for (const k of known) {
    expect(k.dovecot).toBeNull();
    checkKnown(k, mine[k.step], 'portier', both);
  }
}

/** Dovecot's reconnects (~3 s) and its auth failure delay (~0.5 s a failure) make these slow. */
const SLOW = new Set(['LOGIN of a user whose backend is down', 'USER/PASS of a user whose backend is down', 'four wrong passwords in a row']);

describe('IMAP: portier and a Dovecot proxy answer each step with the same class', () => {
  for (const c of IMAP_CASES) if (!SLOW.has(c.name)) test(c.name, () => differential('imap', c));
});

describe('POP3: portier and a Dovecot proxy answer each step with the same class', () => {
  for (const c of POP3_CASES) if (!SLOW.has(c.name)) test(c.name, () => differential('pop3', c));
});

// Dovecot's reconnects take ~3 s and the login_timeout cases 1 s: these wait side by side.
describe.concurrent('slow cases, run side by side', () => {
  for (const c of IMAP_CASES) if (SLOW.has(c.name)) test(`IMAP: ${c.name}`, () => differential('imap', c));
  for (const c of POP3_CASES) if (SLOW.has(c.name)) test(`POP3: ${c.name}`, () => differential('pop3', c));
  test('IMAP: login_timeout is a deadline, not an idle timer (portier only)', () => portierOnly('imap'));
  test('POP3: login_timeout is a deadline, not an idle timer (portier only)', () => portierOnly('pop3'));
});

test('the backend saw the real client address from both proxies (trusted the same way)', async () => {
  const log = await backend.readLog();
  const logins = (service: string): string[] => log.split('\n').filter((l) => l.includes(`${service}-login: Info: Login: `));
  // IMAP: ID forwards x-connected-ip, so lip tells the proxies apart.
  expect(logins('imap').some((l) => l.includes(`rip=${CLIENT_IP}, lip=${PORTIER_IP},`))).toBe(true);
  expect(logins('imap').some((l) => l.includes(`rip=${CLIENT_IP}, lip=${DOVECOT_PROXY_IP},`))).toBe(true);
  // POP3: XCLIENT forwards no local address; the session id (SESSION=) tells them apart.
  const ours = new Set(px.logs().map((l) => l.session).filter((x) => x !== undefined));
  const pop = logins('pop3').map((l) => ({ rip: /rip=([^,]+)/.exec(l)?.[1], session: /session=<([^>]+)>/.exec(l)?.[1] }));
  expect(pop.some((l) => l.session !== undefined && ours.has(l.session))).toBe(true);
  expect(pop.some((l) => l.session !== undefined && !ours.has(l.session))).toBe(true);
  for (const service of ['imap', 'pop3']) {
    expect(logins(service).length).toBeGreaterThan(0);
    for (const l of logins(service)) expect(l).toContain(`rip=${CLIENT_IP},`);
  }
});
