/**
 * Dovecot's sql passdb on PostgreSQL (`pg` pool). The query is compiled once (sql-query.ts):
 * variables are bound parameters. One row = found, none = unknown user, more than one or no
 * `password` column = a configuration error (temporary failure, logged), as in Dovecot.
 * Database trouble (down, slow, refused) is a temporary failure; the pool reconnects by itself.
 */
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { errorText, PortierError } from '../errors.js';
import type { Logger } from '../telemetry/log.js';
import { requestVars } from './passwd-file.js';
import { compileQuery, parseConnect, parseSqlConfFile, queryValues, type CompiledQuery } from './sql-query.js';
import { fieldsFromRecord } from './store-fields.js';
import type { AuthRequest, Passdb, PassdbLookup } from './types.js';
import type { VarName } from './vars.js';

export interface SqlPassdbOptions {
  readonly name: string;
  /** Path of a dovecot-sql.conf.ext; its values fill in what is not set directly. */
  readonly args?: string | undefined;
  readonly connect?: string | undefined;
  readonly passwordQuery?: string | undefined;
  readonly defaultScheme: string;
  readonly queryTimeoutMs: number;
  readonly log: Logger;
}

/** Dovecot's default pool size per pgsql connect string (`maxconns`). */
const DEFAULT_MAXCONNS = 5;

export class SqlPassdb implements Passdb {
  readonly name: string;
  readonly driver = 'sql';
  readonly templateVars: ReadonlySet<VarName>;
  /** The scheme for stored passwords without a prefix (the file's default_pass_scheme wins). */
  readonly defaultScheme: string;
  readonly #query: CompiledQuery;
  readonly #pool: pg.Pool;
  readonly #label: string;
  readonly #log: Logger;
  #failing = false;

  constructor(opts: SqlPassdbOptions) {
    this.name = opts.name;
    this.#log = opts.log;
    let connect = opts.connect;
    let query = opts.passwordQuery;
    let scheme = opts.defaultScheme;
    if (opts.args !== undefined) {
      let text: string;
      try {
        text = readFileSync(opts.args, 'utf8');
      } catch (err) {
        throw new PortierError('PASSDB_CONFIG', `${opts.name}: cannot read ${opts.args}: ${errorText(err)}`);
      }
      const file = parseSqlConfFile(text, opts.args);
      connect ??= file.connect;
      query ??= file.password_query;
      if (file.default_pass_scheme !== undefined) scheme = file.default_pass_scheme;
    }
    if (connect === undefined || query === undefined) {
      throw new PortierError('PASSDB_CONFIG', `${opts.name}: sql needs connect and password_query`);
    }
    this.defaultScheme = scheme;
    this.#query = compileQuery(query);
    this.templateVars = this.#query.vars;
    const settings = parseConnect(connect);
    this.#label = settings.label;
    this.#pool = new pg.Pool({
      max: DEFAULT_MAXCONNS,
      connectionTimeoutMillis: opts.queryTimeoutMs,
      idleTimeoutMillis: 30_000,
      allowExitOnIdle: true,
      ...settings.pool,
      query_timeout: opts.queryTimeoutMs,
      statement_timeout: opts.queryTimeoutMs,
    });
    // An idle client losing its server must not crash the process; the pool replaces it.
    this.#pool.on('error', (err) => this.#down(err));
  }

  async lookup(req: AuthRequest): Promise<PassdbLookup> {
    const values = queryValues(this.#query, requestVars(req));
    // PostgreSQL text cannot hold NUL: no row can match, and the server would only error.
    if (values.some((v) => v.includes('\0'))) return { kind: 'unknown' };
    let result: pg.QueryResult<Record<string, unknown>>;
    try {
      result = await this.#pool.query<Record<string, unknown>>({ text: this.#query.text, values });
    } catch (err) {
      this.#down(err);
      return { kind: 'tempfail', reason: `${this.name}: database unavailable` };
    }
    if (this.#failing) {
      this.#failing = false;
      this.#log.info({ passdb: this.name, db: this.#label }, 'sql passdb: database reachable again');
    }
    if (result.rows.length === 0) return { kind: 'unknown' };
    const columns = result.fields.map((f) => f.name);
    if (!columns.includes('password') && !columns.includes('password_noscheme') && !columns.includes('nopassword')) {
      this.#log.error({ passdb: this.name }, 'sql passdb: password_query must return a column named password (or nopassword)');
      return { kind: 'tempfail', reason: `${this.name}: no password column` };
    }
    if (result.rows.length > 1) {
      this.#log.error({ passdb: this.name, user: req.user, rows: result.rows.length }, 'sql passdb: password_query returned multiple matches');
      return { kind: 'tempfail', reason: `${this.name}: multiple matches` };
    }
    const row = result.rows[0] ?? {};
    return { kind: 'found', fields: fieldsFromRecord(row, this.defaultScheme) };
  }

  async close(): Promise<void> {
    await this.#pool.end().catch(() => undefined);
  }

  #down(err: unknown): void {
    // SQLSTATE classes 08 (connection), 53 (resources), 57 (operator intervention: shutdown) are outages.
    if (err instanceof pg.DatabaseError && !/^(08|53|57)/.test(err.code ?? '')) {
      // The server answered: a broken query or permissions, not an outage. Always worth an error.
      this.#log.error({ passdb: this.name, db: this.#label, err: errorText(err) }, 'sql passdb: query refused by the server');
      return;
    }
    const level = this.#failing ? 'debug' : 'error';
    this.#failing = true;
    this.#log[level]({ passdb: this.name, db: this.#label, err: errorText(err) }, 'sql passdb: query failed');
  }
}
