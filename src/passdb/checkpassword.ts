/**
 * Dovecot's checkpassword passdb: the program gets the reply program as its last argument and
 * reads `user\0password\0\0` on fd 3 (the timestamp is empty, as in Dovecot); on success it
 * execs the reply program, which writes the fields named in EXTRA to fd 4, tab-separated.
 * Exit 1 (and vpopmail's failure codes): wrong password; 2: misuse; 111 or anything else:
 * temporary failure. A lookup without a password sets AUTHORIZED=1 and expects exit 2 (3 =
 * unknown user). Runs are bounded in time (the whole process group is killed) and in number.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { errorText, PortierError } from '../errors.js';
import type { Logger } from '../telemetry/log.js';
import { requestVars } from './passwd-file.js';
import type { AuthRequest, Fields, Passdb, PassdbLookup } from './types.js';
import { expandTokens, parseTemplate, TemplateError, type TemplateToken, type VarName } from './vars.js';

/** Dovecot's CHECKPASSWORD_MAX_REQUEST_LEN: longer user+password is a failed login. */
export const CHECKPASSWORD_MAX_REQUEST = 512;
/** Bytes of reply (fd 4) and of stderr kept; a reply beyond this is refused. */
const MAX_REPLY = 64 * 1024;
const MAX_STDERR = 4096;
/** Requests waiting for a free slot, per concurrency slot. */
const QUEUE_PER_SLOT = 16;

/** vpopmail's failure codes, which Dovecot also reads as "login failed" (db-checkpassword.c). */
const FAILURE_CODES = new Set([1, 3, 12, 13, 15, 20, 21, 22, 23]);

export const DEFAULT_REPLY_PATH = fileURLToPath(new URL('../../bin/checkpassword-reply', import.meta.url));

export interface CheckpasswordOptions {
  readonly name: string;
  readonly args: string;
  readonly replyPath?: string | undefined;
  readonly timeoutMs: number;
  readonly maxConcurrency: number;
  readonly log: Logger;
}

interface RunResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly reply: Buffer;
  readonly timedOut: boolean;
}

export class CheckpasswordPassdb implements Passdb {
  readonly name: string;
  readonly driver = 'checkpassword';
  readonly templateVars: ReadonlySet<VarName>;
  readonly #words: TemplateToken[][];
  readonly #replyPath: string;
  readonly #timeoutMs: number;
  readonly #max: number;
  readonly #log: Logger;
  #running = 0;
  readonly #queue: (() => void)[] = [];

  constructor(opts: CheckpasswordOptions) {
    this.name = opts.name;
    this.#replyPath = opts.replyPath ?? DEFAULT_REPLY_PATH;
    this.#timeoutMs = opts.timeoutMs;
    this.#max = opts.maxConcurrency;
    this.#log = opts.log;
    // Split before expanding: a user name can never add arguments.
    try {
      this.#words = opts.args.trim().split(/\s+/).map((w) => parseTemplate(w));
    } catch (err) {
      throw new PortierError('PASSDB_CONFIG', `${opts.name}: args: ${err instanceof TemplateError ? err.message : errorText(err)}`);
    }
    this.templateVars = new Set(this.#words.flat().flatMap((t) => (t.kind === 'var' ? [t.name] : [])));
  }

  async lookup(req: AuthRequest): Promise<PassdbLookup> {
    const password = req.password;
    const user = Buffer.from(req.user, 'utf8');
    if (password !== undefined) {
      // A NUL would cut the password short on fd 3; too long cannot be sent (Dovecot: failure).
      if (password.includes(0) || user.length + password.length + 3 > CHECKPASSWORD_MAX_REQUEST) {
        return { kind: 'verified', ok: false, fields: new Map() };
      }
    } else if (user.length + 3 > CHECKPASSWORD_MAX_REQUEST) {
      return { kind: 'unknown' };
    }
    const deadline = Date.now() + this.#timeoutMs;
    if (!(await this.#acquire(deadline))) {
      this.#log.error({ passdb: this.name, running: this.#running, queued: this.#queue.length }, 'checkpassword: too many requests waiting');
      return { kind: 'tempfail', reason: `${this.name}: busy` };
    }
    let run: RunResult;
    try {
      run = await this.#run(req, Buffer.concat([user, Buffer.from([0]), password ?? Buffer.alloc(0), Buffer.from([0, 0])]), deadline);
    } catch (err) {
      this.#log.error({ passdb: this.name, err: errorText(err) }, 'checkpassword: cannot run the program');
      return { kind: 'tempfail', reason: `${this.name}: cannot run` };
    } finally {
      this.#release();
    }
    return this.#interpret(req, run, password !== undefined);
  }

  #interpret(req: AuthRequest, run: RunResult, authenticating: boolean): PassdbLookup {
    const log = this.#log;
    if (run.timedOut) {
      log.error({ passdb: this.name, user: req.user, timeout_ms: this.#timeoutMs }, 'checkpassword: the program did not finish in time; killed');
      return { kind: 'tempfail', reason: `${this.name}: timeout` };
    }
    if (run.code === null) {
      log.error({ passdb: this.name, user: req.user, signal: run.signal }, 'checkpassword: the program died by a signal');
      return { kind: 'tempfail', reason: `${this.name}: killed by ${run.signal ?? 'signal'}` };
    }
    const code = run.code;
    const parsed = parseReply(run.reply);
    if (authenticating) {
      if (FAILURE_CODES.has(code)) {
        log.info({ passdb: this.name, user: req.user, status: code }, 'checkpassword: login failed');
        return { kind: 'verified', ok: false, fields: new Map() };
      }
      if (code === 2) {
        log.error({ passdb: this.name, status: code }, 'checkpassword: the program exited 2 (misuse; a userdb-only program used as passdb?)');
        return { kind: 'tempfail', reason: `${this.name}: exit 2` };
      }
      if (code !== 0) {
        log.error({ passdb: this.name, user: req.user, status: code }, 'checkpassword: temporary failure');
        return { kind: 'tempfail', reason: `${this.name}: exit ${code}` };
      }
    } else {
      if (code === 3) return { kind: 'unknown' };
      if (code !== 2) {
        log.error({ passdb: this.name, user: req.user, status: code }, 'checkpassword: lookup without a password failed (the program must support AUTHORIZED=1 and exit 2)');
        return { kind: 'tempfail', reason: `${this.name}: exit ${code}` };
      }
    }
    if (typeof parsed === 'string') {
      log.error({ passdb: this.name, user: req.user, problem: parsed }, 'checkpassword: unusable reply');
      return { kind: 'tempfail', reason: `${this.name}: ${parsed}` };
    }
    return authenticating ? { kind: 'verified', ok: true, fields: parsed } : { kind: 'found', fields: parsed };
  }

  #run(req: AuthRequest, input: Buffer, deadline: number): Promise<RunResult> {
    const vars = requestVars(req);
    const argv = this.#words.map((w) => expandTokens(w, vars));
    const [program, ...args] = argv;
    if (program === undefined || program === '') throw new Error('empty program path');
    const child = spawn(program, [...args, this.#replyPath], {
      stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'],
      env: childEnv(req, vars),
      detached: true,
    });
    return new Promise<RunResult>((resolve, reject) => {
      const reply: Buffer[] = [];
      let replyBytes = 0;
      let stderr = '';
      let settled = false;
      const finish = (r: RunResult | Error): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (stderr.trim() !== '') this.#log.warn({ passdb: this.name, stderr: stderr.trim().slice(0, MAX_STDERR) }, 'checkpassword: program output on stderr');
        if (r instanceof Error) reject(r);
        else resolve(r);
      };
      const killGroup = (): void => {
        if (child.pid === undefined) return;
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          child.kill('SIGKILL');
        }
      };
      const timer = setTimeout(() => {
        killGroup();
        finish({ code: null, signal: 'SIGKILL', reply: Buffer.alloc(0), timedOut: true });
      }, Math.max(1, deadline - Date.now()));
      child.once('error', (err) => finish(err));
      child.stderr?.on('data', (d: Buffer) => {
        if (stderr.length < MAX_STDERR) stderr += d.toString('utf8');
      });
      const out = child.stdio[3];
      const back = child.stdio[4];
      out?.on('error', () => undefined); // the program may exit without reading fd 3
      if (out !== null && out !== undefined && 'resume' in out) out.resume(); // its end must be read for 'close'
      back?.on('error', () => undefined);
      back?.on('data', (d: Buffer) => {
        replyBytes += d.length;
        if (replyBytes > MAX_REPLY) {
          killGroup();
          finish(new Error('reply on fd 4 too large'));
          return;
        }
        reply.push(d);
      });
      if (out !== null && out !== undefined && 'end' in out) out.end(input);
      child.once('close', (code, signal) => finish({ code, signal, reply: Buffer.concat(reply), timedOut: false }));
    });
  }

  /** A free slot before the deadline; false when the queue is full or the deadline passes. */
  async #acquire(deadline: number): Promise<boolean> {
    if (this.#running < this.#max) {
      this.#running++;
      return true;
    }
    if (this.#queue.length >= this.#max * QUEUE_PER_SLOT) return false;
    return new Promise<boolean>((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        this.#running++;
        resolve(true);
      };
      const timer = setTimeout(() => {
        const at = this.#queue.indexOf(wake);
        if (at >= 0) this.#queue.splice(at, 1);
        resolve(false);
      }, Math.max(1, deadline - Date.now()));
      this.#queue.push(wake);
    });
  }

  #release(): void {
    this.#running--;
    this.#queue.shift()?.();
  }
}

/** The environment Dovecot gives the program (db-checkpassword.c), without the password. */
function childEnv(req: AuthRequest, vars: ReturnType<typeof requestVars>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env['PATH'] ?? '/usr/local/bin:/usr/bin:/bin',
    PROTO: 'TCP',
    ORIG_UID: String(process.getuid?.() ?? 0),
    SERVICE: req.protocol,
    TCPLOCALIP: req.localIp,
    LOCAL_IP: req.localIp,
    TCPREMOTEIP: req.remoteIp,
    REMOTE_IP: req.remoteIp,
    TCPLOCALPORT: String(req.localPort),
    TCPREMOTEPORT: String(req.remotePort),
  };
  if (process.env['TZ'] !== undefined) env['TZ'] = process.env['TZ'];
  if (req.masterUser !== undefined) env['MASTER_USER'] = req.masterUser;
  if (req.password === undefined) env['AUTHORIZED'] = '1';
  for (const [k, v] of Object.entries(vars)) if (v !== undefined && v !== '') env[`AUTH_${k.toUpperCase()}`] = v;
  for (const [k, v] of Object.entries(env)) if (v?.includes('\0')) delete env[k];
  return env;
}

/**
 * checkpassword-reply's output: `key=value` entries separated by TAB, values in Dovecot's
 * tab-escaping (\001 followed by 1, t, r, n or 0). A LF anywhere is refused, as in Dovecot.
 */
export function parseReply(data: Buffer): Fields | string {
  const text = data.toString('utf8');
  if (text === '') return 'no reply on fd 4 (the reply program did not run)';
  if (text.includes('\n')) return 'LF characters in the reply';
  const fields = new Map<string, string>();
  for (const entry of text.split('\t')) {
    if (entry === '') continue;
    const eq = entry.indexOf('=');
    const key = tabUnescape(eq < 0 ? entry : entry.slice(0, eq));
    fields.set(key, eq < 0 ? '' : tabUnescape(entry.slice(eq + 1)));
  }
  return fields;
}

const UNESCAPE: Record<string, string> = { '1': '\x01', t: '\t', r: '\r', n: '\n', '0': '\0' };

export function tabUnescape(s: string): string {
  if (!s.includes('\x01')) return s;
  return s.replace(/\x01(.?)/gs, (_, c: string) => UNESCAPE[c] ?? c);
}

/** Dovecot's str_append_tabescaped (for bin/checkpassword-reply and tests). */
export function tabEscape(s: string): string {
  return s.replace(/[\x00\x01\t\r\n]/g, (c) => `\x01${c === '\x00' ? '0' : c === '\x01' ? '1' : c === '\t' ? 't' : c === '\r' ? 'r' : 'n'}`);
}
