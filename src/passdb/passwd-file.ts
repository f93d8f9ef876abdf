/**
 * Dovecot's passwd-file passdb: `user:password:uid:gid:gecos:home:shell:extra_fields`.
 * The path may hold `%` variables (per-domain files). Files are re-read when they change
 * (checked at most once a second per file, so ConfigMap symlink swaps are picked up).
 */
import { readFile, stat } from 'node:fs/promises';
import { errorText } from '../errors.js';
import type { Logger } from '../telemetry/log.js';
import { parseExtraFields } from './fields.js';
import type { AuthRequest, Passdb, PassdbLookup } from './types.js';
import { expandTemplate, expandTokens, parseTemplate, splitUser, varValue, type TemplateToken, type VarName, type VarValues } from './vars.js';

const RECHECK_MS = 1000;

interface Entry {
  readonly password: string;
  /**
   * uid, gid, home and the extra fields, and `password` when the entry has one: the lookup's
   * answer as it is when `expand` is false, shared by every lookup of this user (Fields are
   * read-only), so such a login allocates no map.
   */
  readonly fields: ReadonlyMap<string, string>;
  /** Some field other than the password holds a `%` variable: each lookup expands a copy. */
  readonly expand: boolean;
}

interface Loaded {
  readonly entries: ReadonlyMap<string, Entry>;
  readonly stamp: string;
  checkedAt: number;
}

export interface PasswdFileOptions {
  readonly name: string;
  readonly path: string;
  readonly usernameFormat?: string | undefined;
  readonly log: Logger;
}

export class PasswdFilePassdb implements Passdb {
  readonly name: string;
  readonly driver = 'passwd-file';
  readonly #path: TemplateToken[];
  readonly #key: TemplateToken[];
  readonly #files = new Map<string, Promise<Loaded | null>>();
  readonly #log: Logger;
  readonly templateVars: ReadonlySet<VarName>;
  /** The path when it holds no variable. */
  readonly #staticPath: string | undefined;
  /** The key is plain `%u` (the default): the request's user, no variables needed. */
  readonly #keyIsUser: boolean;

  constructor(opts: PasswdFileOptions) {
    this.name = opts.name;
    this.#path = parseTemplate(opts.path);
    this.#key = parseTemplate(opts.usernameFormat ?? '%u');
    this.#log = opts.log;
    this.templateVars = new Set([...this.#path, ...this.#key].flatMap((t) => (t.kind === 'var' ? [t.name] : [])));
    this.#staticPath = this.#path.every((t) => t.kind === 'text') ? this.#path.map((t) => (t.kind === 'text' ? t.text : '')).join('') : undefined;
    const k = this.#key;
    this.#keyIsUser = k.length === 1 && k[0]?.kind === 'var' && k[0].name === 'user' && k[0].modifiers === '';
  }

  async lookup(req: AuthRequest): Promise<PassdbLookup> {
    // The request's variables are built only when a template or a field needs them.
    let values: VarValues | undefined;
    const vars = (): VarValues => (values ??= requestVars(req));
    let path = this.#staticPath;
    if (path === undefined) {
      // A value put into the path must stay one path component: no `/`, no `.`/`..`, no NUL.
      for (const t of this.#path) {
        if (t.kind !== 'var') continue;
        const v = varValue(t, vars());
        if (v.includes('/') || v.includes('\0') || v === '.' || v === '..') return { kind: 'unknown' };
      }
      path = expandTokens(this.#path, vars());
    }
    const file = await this.#load(path);
    if (file === null) return { kind: 'unknown' };
    const entry = file.entries.get(this.#keyIsUser ? req.user : expandTokens(this.#key, vars()));
    if (entry === undefined) return { kind: 'unknown' };
    if (!entry.expand) return { kind: 'found', fields: entry.fields };
    // Dovecot expands `%` variables in passwd-file extra fields (e.g. destuser=%n@%d), not in the password.
    const expandVars = vars();
    const fields = new Map<string, string>();
    for (const [k, v] of entry.fields) fields.set(k, v.includes('%') && !(k === 'password' && entry.password !== '') ? expandTemplate(v, expandVars) : v);
    return { kind: 'found', fields };
  }

  /** The parsed file, re-read when its inode, size or mtime changed; null when absent. */
  async #load(path: string): Promise<Loaded | null> {
    const cached = this.#files.get(path);
    if (cached !== undefined) {
      const loaded = await cached;
      if (loaded === null || Date.now() - loaded.checkedAt < RECHECK_MS) return loaded;
      loaded.checkedAt = Date.now();
      const stamp = await fileStamp(path);
      if (stamp === loaded.stamp) return loaded;
    }
    const pending = this.#read(path);
    this.#files.set(path, pending);
    const loaded = await pending.catch((err: unknown) => {
      this.#files.delete(path);
      throw err;
    });
    if (loaded === null) this.#files.delete(path);
    return loaded;
  }

  async #read(path: string): Promise<Loaded | null> {
    try {
      const stamp = await fileStamp(path);
      const text = await readFile(path, 'utf8');
      const entries = parsePasswdFile(text, (line, problem) =>
        this.#log.warn({ passdb: this.name, file: path, line }, `passwd-file: ${problem}`),
      );
      this.#log.debug({ passdb: this.name, file: path, users: entries.size }, 'passwd-file loaded');
      return { entries, stamp, checkedAt: Date.now() };
    } catch (err) {
      // A missing file is "no such users" (per-domain files); unreadable is an outage.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return null;
      this.#log.error({ passdb: this.name, file: path, err: errorText(err) }, 'passwd-file: cannot read');
      throw err;
    }
  }
}

async function fileStamp(path: string): Promise<string> {
  try {
    const s = await stat(path);
    return `${s.ino}:${s.size}:${s.mtimeMs}`;
  } catch {
    return 'absent';
  }
}

export function parsePasswdFile(
  text: string,
  warn: (line: number, problem: string) => void = () => {},
): Map<string, Entry> {
  const entries = new Map<string, Entry>();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] ?? '').replace(/\r$/, '');
    if (line.trim() === '' || line.trimStart().startsWith('#')) continue;
    const parts = line.split(':');
    const user = parts[0] ?? '';
    if (user === '') {
      warn(i + 1, 'empty user name');
      continue;
    }
    const fields = new Map<string, string>();
    const [, , uid, gid, , home] = parts;
    if (uid) fields.set('uid', uid);
    if (gid) fields.set('gid', gid);
    if (home) fields.set('home', home);
    if (parts.length > 7) for (const [k, v] of parseExtraFields(parts.slice(7).join(':'))) fields.set(k, v);
    if (entries.has(user)) {
      warn(i + 1, `duplicate user ${user}; the first entry wins`);
      continue;
    }
    const password = parts[1] ?? '';
    const expand = [...fields.values()].some((v) => v.includes('%'));
    if (password !== '') fields.set('password', password);
    entries.set(user, { password, fields, expand });
  }
  return entries;
}

export function requestVars(req: AuthRequest): VarValues {
  const { username, domain } = splitUser(req.user);
  return {
    user: req.user,
    username,
    domain,
    service: req.protocol,
    protocol: req.protocol,
    lip: req.localIp,
    rip: req.remoteIp,
    lport: String(req.localPort),
    rport: String(req.remotePort),
    session: req.sessionId,
    real_rip: req.realRemoteIp,
    real_lip: req.realLocalIp,
    local_name: req.localName ?? '',
    orig_user: req.origUser,
    master_user: req.masterUser ?? '',
    pid: String(process.pid),
  };
}
