/**
 * Dovecot's SQL settings turned into safe PostgreSQL calls: the libpq `connect` string and the
 * `password_query` template. Every `%` variable becomes a bound parameter ($1, $2, ...); a quoted
 * literal holding variables (`'%u'`, `'%n@%d'`) becomes ONE parameter with the expanded text, so
 * no user-supplied byte is ever part of the SQL text.
 */
import { readFileSync } from 'node:fs';
import type { PoolConfig } from 'pg';
import { PortierError } from '../errors.js';
import { parseTemplate, varValue, type TemplateToken, type VarName, type VarValues } from './vars.js';

type VarToken = Extract<TemplateToken, { kind: 'var' }>;
type Piece = { readonly text: string } | { readonly token: VarToken };

export interface CompiledQuery {
  /** SQL text with $n placeholders; contains no expanded variable. */
  readonly text: string;
  /** One entry per placeholder: the literal's pieces, concatenated at run time. */
  readonly params: readonly (readonly Piece[])[];
  /** Variables the query uses (part of the auth cache key). */
  readonly vars: ReadonlySet<VarName>;
}

/** Parse once at start; throws PortierError PASSDB_CONFIG for unknown variables or bad quoting. */
export function compileQuery(template: string): CompiledQuery {
  let tokens: TemplateToken[];
  try {
    tokens = parseTemplate(template);
  } catch (err) {
    throw new PortierError('PASSDB_CONFIG', `password_query: ${(err as Error).message}`);
  }
  const params: Piece[][] = [];
  const vars = new Set<VarName>();
  let sql = '';
  let quoted: Piece[] | null = null;
  let quotedRaw = '';
  let inIdent = false;
  let inComment = false;
  const param = (pieces: Piece[]): string => {
    params.push(pieces);
    return `$${params.length}`;
  };
  for (const token of tokens) {
    if (token.kind === 'var') {
      if (inComment) continue;
      vars.add(token.name);
      if (inIdent) throw new PortierError('PASSDB_CONFIG', `password_query: %${token.name} inside a "quoted identifier" cannot be bound`);
      if (quoted !== null) quoted.push({ token });
      else sql += param([{ token }]);
      continue;
    }
    const t = token.text;
    for (let i = 0; i < t.length; i++) {
      const c = t[i] ?? '';
      if (inComment) {
        // `-- ...` to the end of the line: dropped, so a quote in it cannot confuse the scan.
        if (c === '\n') {
          inComment = false;
          sql += c;
        }
      } else if (quoted !== null) {
        if (c === "'" && t[i + 1] === "'") {
          quoted.push({ text: "'" });
          quotedRaw += "''";
          i++;
        } else if (c === "'") {
          const hasVar = quoted.some((p) => 'token' in p);
          sql += hasVar ? param(quoted) : `'${quotedRaw}'`;
          quoted = null;
        } else {
          quoted.push({ text: c });
          quotedRaw += c;
        }
      } else if (inIdent) {
        sql += c;
        if (c === '"') inIdent = false;
      } else if (c === "'") {
        quoted = [];
        quotedRaw = '';
      } else if (c === '-' && t[i + 1] === '-') {
        inComment = true;
        i++;
      } else {
        sql += c;
        if (c === '"') inIdent = true;
      }
    }
  }
  if (quoted !== null) throw new PortierError('PASSDB_CONFIG', 'password_query: unterminated quoted string');
  return { text: sql.trim(), params: params.map(mergeText), vars };
}

function mergeText(pieces: Piece[]): Piece[] {
  const out: Piece[] = [];
  for (const p of pieces) {
    const last = out.at(-1);
    if ('text' in p && last !== undefined && 'text' in last) out[out.length - 1] = { text: last.text + p.text };
    else out.push(p);
  }
  return out;
}

/** The parameter values for one request. */
export function queryValues(q: CompiledQuery, values: VarValues): string[] {
  return q.params.map((pieces) => pieces.map((p) => ('text' in p ? p.text : varValue(p.token, values))).join(''));
}

export interface PgSettings {
  readonly pool: PoolConfig;
  /** host:port/db for logs (never the password). */
  readonly label: string;
}

/**
 * libpq `key=value` pairs as Dovecot passes them (`host=... dbname=... user=... password=...
 * port=...`, values optionally 'quoted'), plus Dovecot's `maxconns`; or a postgres:// URL.
 */
export function parseConnect(text: string): PgSettings {
  const value = text.trim();
  if (/^postgres(ql)?:\/\//i.test(value)) {
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      throw new PortierError('PASSDB_CONFIG', 'sql connect: not a valid postgres:// URL');
    }
    const max = url.searchParams.get('maxconns');
    url.searchParams.delete('maxconns');
    return {
      pool: { connectionString: url.toString(), ...(max !== null && /^\d+$/.test(max) ? { max: Number(max) } : {}) },
      label: `${url.hostname}:${url.port || '5432'}${url.pathname}`,
    };
  }
  const pairs = parseKeyValues(value);
  const pool: PoolConfig = {};
  const ssl: { mode?: string; rootcert?: string; cert?: string; key?: string } = {};
  for (const [key, v] of pairs) {
    switch (key) {
      case 'host':
      case 'hostaddr':
        if (pool.host !== undefined) throw new PortierError('PASSDB_CONFIG', 'sql connect: more than one host= (use one address, e.g. a pgbouncer or a service name)');
        pool.host = v;
        break;
      case 'port':
        pool.port = intValue(key, v);
        break;
      case 'dbname':
        pool.database = v;
        break;
      case 'user':
        pool.user = v;
        break;
      case 'password':
        pool.password = v;
        break;
      case 'connect_timeout':
        pool.connectionTimeoutMillis = intValue(key, v) * 1000;
        break;
      case 'maxconns':
        pool.max = intValue(key, v);
        break;
      case 'application_name':
        pool.application_name = v;
        break;
      case 'sslmode':
        ssl.mode = v;
        break;
      case 'sslrootcert':
        ssl.rootcert = v;
        break;
      case 'sslcert':
        ssl.cert = v;
        break;
      case 'sslkey':
        ssl.key = v;
        break;
      default:
        throw new PortierError('PASSDB_CONFIG', `sql connect: unsupported parameter "${key}"`);
    }
  }
  const tls = sslOptions(ssl);
  if (tls !== undefined) pool.ssl = tls;
  return { pool, label: `${pool.host ?? 'localhost'}:${pool.port ?? 5432}/${pool.database ?? ''}` };
}

function intValue(key: string, v: string): number {
  if (!/^\d+$/.test(v)) throw new PortierError('PASSDB_CONFIG', `sql connect: ${key} must be a number`);
  return Number(v);
}

/** libpq sslmode: disable/allow/prefer → no TLS (no fallback logic), require → TLS without checks, verify-ca/verify-full → checked. */
function sslOptions(s: { mode?: string; rootcert?: string; cert?: string; key?: string }): PoolConfig['ssl'] {
  const mode = s.mode ?? 'disable';
  const read = (path: string | undefined): string | undefined => (path === undefined ? undefined : readFileSync(path, 'utf8'));
  const common = { ...(s.rootcert ? { ca: read(s.rootcert) } : {}), ...(s.cert ? { cert: read(s.cert) } : {}), ...(s.key ? { key: read(s.key) } : {}) };
  switch (mode) {
    case 'disable':
    case 'allow':
    case 'prefer':
      return undefined;
    case 'require':
      return { ...common, rejectUnauthorized: false };
    case 'verify-ca':
      return { ...common, rejectUnauthorized: true, checkServerIdentity: () => undefined };
    case 'verify-full':
      return { ...common, rejectUnauthorized: true };
    default:
      throw new PortierError('PASSDB_CONFIG', `sql connect: unknown sslmode "${mode}"`);
  }
}

function parseKeyValues(text: string): [string, string][] {
  const out: [string, string][] = [];
  let i = 0;
  const skip = (): void => {
    while (i < text.length && /\s/.test(text[i] ?? '')) i++;
  };
  while (true) {
    skip();
    if (i >= text.length) return out;
    const start = i;
    while (i < text.length && /[A-Za-z0-9_]/.test(text[i] ?? '')) i++;
    const key = text.slice(start, i);
    skip();
    if (key === '' || text[i] !== '=') throw new PortierError('PASSDB_CONFIG', 'sql connect: expected key=value pairs');
    i++;
    skip();
    let v = '';
    if (text[i] === "'") {
      i++;
      while (i < text.length && text[i] !== "'") {
        if (text[i] === '\\' && i + 1 < text.length) i++;
        v += text[i];
        i++;
      }
      if (text[i] !== "'") throw new PortierError('PASSDB_CONFIG', 'sql connect: unterminated quoted value');
      i++;
    } else {
      while (i < text.length && !/\s/.test(text[i] ?? '')) {
        if (text[i] === '\\' && i + 1 < text.length) i++;
        v += text[i];
        i++;
      }
    }
    out.push([key, v]);
  }
}

export interface SqlConfFile {
  readonly connect?: string;
  readonly password_query?: string;
  readonly default_pass_scheme?: string;
}

/**
 * A dovecot-sql.conf.ext as operators already have it: `key = value`, `#` comments, a trailing
 * `\` continues the value on the next line. Only `driver = pgsql` is supported; user_query and
 * iterate_query are for userdbs and ignored.
 */
export function parseSqlConfFile(text: string, file: string): SqlConfFile {
  const values = new Map<string, string>();
  const lines = text.split('\n');
  for (let n = 0; n < lines.length; n++) {
    let line = (lines[n] ?? '').replace(/\r$/, '');
    while (line.endsWith('\\') && n + 1 < lines.length) line = `${line.slice(0, -1).trimEnd()} ${(lines[++n] ?? '').replace(/\r$/, '').trim()}`;
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    const eq = trimmed.indexOf('=');
    if (eq <= 0) throw new PortierError('PASSDB_CONFIG', `${file}:${n + 1}: expected key = value`);
    let v = trimmed.slice(eq + 1).trim();
    if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1);
    values.set(trimmed.slice(0, eq).trim(), v);
  }
  const driver = values.get('driver');
  if (driver !== undefined && driver !== 'pgsql') {
    throw new PortierError('PASSDB_CONFIG', `${file}: driver = ${driver} is not supported (portier speaks pgsql)`);
  }
  const out: { connect?: string; password_query?: string; default_pass_scheme?: string } = {};
  const connect = values.get('connect');
  const query = values.get('password_query');
  const scheme = values.get('default_pass_scheme');
  if (connect !== undefined) out.connect = connect;
  if (query !== undefined) out.password_query = query;
  if (scheme !== undefined) out.default_pass_scheme = scheme;
  return out;
}
