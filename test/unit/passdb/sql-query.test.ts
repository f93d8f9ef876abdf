import { describe, expect, test } from 'vitest';
import { compileQuery, parseConnect, parseSqlConfFile, queryValues } from '../../../src/passdb/sql-query.js';

describe('password_query compilation', () => {
  test("Dovecot's quoted variables become bound parameters, quotes removed", () => {
    const q = compileQuery("SELECT username AS user, password FROM users WHERE username = '%n' AND domain = '%d'");
    expect(q.text).toBe('SELECT username AS user, password FROM users WHERE username = $1 AND domain = $2');
    expect(queryValues(q, { username: 'alice', domain: 'example.org' })).toEqual(['alice', 'example.org']);
    expect([...q.vars].sort()).toEqual(['domain', 'username']);
  });

  test('a literal mixing text and variables is one parameter; %{...} and modifiers work', () => {
    const q = compileQuery("SELECT password FROM u WHERE login = '%Ln@%{domain}' AND svc = '%s' AND ip = %r");
    expect(q.text).toBe('SELECT password FROM u WHERE login = $1 AND svc = $2 AND ip = $3');
    expect(queryValues(q, { username: 'Alice', domain: 'ex.org', service: 'imap', rip: '192.0.2.1' })).toEqual(['alice@ex.org', 'imap', '192.0.2.1']);
  });

  test('literals without variables stay SQL; doubled quotes and %% are kept', () => {
    const q = compileQuery("SELECT password, 'Y' AS proxy, 'it''s' AS reason FROM u WHERE name LIKE 'a%%' AND user = '%u'");
    expect(q.text).toBe("SELECT password, 'Y' AS proxy, 'it''s' AS reason FROM u WHERE name LIKE 'a%' AND user = $1");
    expect(queryValues(q, { user: "o'brien" })).toEqual(["o'brien"]);
  });

  test('injection attempts are values, never SQL text', () => {
    const q = compileQuery("SELECT password FROM users WHERE userid = '%u'");
    for (const evil of ["' OR 1=1 --", "x'; DROP TABLE users; --", '%u', '\\', "'"]) {
      expect(q.text).toBe('SELECT password FROM users WHERE userid = $1');
      expect(queryValues(q, { user: evil })).toEqual([evil]);
    }
  });

  test('-- comments are dropped, so a quote in one does not shift the literals', () => {
    const q = compileQuery("SELECT password -- don't forget\nFROM users WHERE userid = '%u'");
    expect(q.text).toBe('SELECT password \nFROM users WHERE userid = $1');
    expect(queryValues(q, { user: 'a' })).toEqual(['a']);
  });

  test('unknown variables, unterminated quotes and variables in identifiers are refused', () => {
    expect(() => compileQuery("SELECT password FROM u WHERE x = '%w'")).toThrow(/unknown variable/);
    expect(() => compileQuery("SELECT password FROM u WHERE x = '%u")).toThrow(/unterminated/);
    expect(() => compileQuery('SELECT password FROM "%d" WHERE x = 1')).toThrow(/quoted identifier/);
  });
});

describe('connect strings', () => {
  test("libpq key=value as Dovecot writes it, with maxconns and quoted values", () => {
    const s = parseConnect("host=db.example port=5433 dbname=mail user=dovecot password='p w\\'x' maxconns=7 connect_timeout=3");
    expect(s.pool).toMatchObject({ host: 'db.example', port: 5433, database: 'mail', user: 'dovecot', password: "p w'x", max: 7, connectionTimeoutMillis: 3000 });
    expect(s.label).toBe('db.example:5433/mail');
    expect(s.label).not.toContain('p w');
  });

  test('postgres:// URLs pass through (maxconns taken out)', () => {
    const s = parseConnect('postgres://u:secret@127.0.0.1:5432/db?maxconns=3');
    expect(s.pool.max).toBe(3);
    expect(s.pool.connectionString).toBe('postgres://u:secret@127.0.0.1:5432/db');
    expect(s.label).toBe('127.0.0.1:5432/db');
  });

  test('sslmode maps to TLS options; unknown keys and several hosts are refused', () => {
    expect(parseConnect('host=h sslmode=require').pool.ssl).toMatchObject({ rejectUnauthorized: false });
    expect(parseConnect('host=h sslmode=disable').pool.ssl).toBeUndefined();
    expect(() => parseConnect('host=a host=b')).toThrow(/more than one host/);
    expect(() => parseConnect('host=a frobnicate=1')).toThrow(/unsupported parameter "frobnicate"/);
    expect(() => parseConnect('host')).toThrow(/key=value/);
  });
});

describe('dovecot-sql.conf.ext', () => {
  test('key = value, comments, backslash continuations; only pgsql', () => {
    const conf = parseSqlConfFile(
      [
        '# Dovecot SQL config',
        'driver = pgsql',
        'connect = host=localhost dbname=mails user=admin password=pass',
        'default_pass_scheme = SHA512-CRYPT',
        'password_query = \\',
        "  SELECT username, domain, password \\",
        "  FROM users WHERE username = '%n' AND domain = '%d'",
        'user_query = SELECT home FROM users',
      ].join('\n'),
      'f',
    );
    expect(conf.connect).toBe('host=localhost dbname=mails user=admin password=pass');
    expect(conf.default_pass_scheme).toBe('SHA512-CRYPT');
    expect(conf.password_query).toBe("SELECT username, domain, password FROM users WHERE username = '%n' AND domain = '%d'");
    expect(() => parseSqlConfFile('driver = mysql\n', 'f')).toThrow(/not supported/);
  });
});
