import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  cleanupAll,
  isListening,
  LineClient,
  registeredTempDirs,
  runningProcesses,
  sharedTestCa,
  startDovecot,
  startPostgres,
  startRedis,
} from '../support/index.js';
import type { DovecotBackend, PgServer, RedisServer } from '../support/index.js';

// Clients bind here so the backend (127.0.0.2/.3) does not treat them as local.
const CLIENT_ADDR = '127.0.0.5';
const USERS = [
  { user: 'alice', password: 'alice-pw' },
  { user: 'bob', password: 'bob-pw' },
];
const MASTER = { user: 'admin', password: 'master-pw' };

// Everything the harness started, so the last test can prove it is all gone.
const pids: number[] = [];
const listeners: { host: string; port: number }[] = [];
const dirs: string[] = [];

function track(peer: { pid: number; dir: string }, host: string, ports: number[]): void {
  pids.push(peer.pid);
  dirs.push(peer.dir);
  for (const port of ports) listeners.push({ host, port });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function imapLogin(b: DovecotBackend, user: string, password: string): Promise<string> {
  const c = await LineClient.connect(b.ports.imap, { host: b.host, localAddress: CLIENT_ADDR });
  try {
    expect(await c.line()).toMatch(/^\* OK/);
    c.write(`a1 LOGIN ${user} ${password}\r\n`);
    const reply = (await c.until('a1')).at(-1) ?? '';
    c.write('a2 LOGOUT\r\n');
    return reply;
  } finally {
    c.close();
  }
}

afterAll(cleanupAll);

describe('dovecot backend', () => {
  let b: DovecotBackend;

  beforeAll(async () => {
    const t0 = Date.now();
    b = await startDovecot({ users: USERS, masterUsers: [MASTER] });
    expect(Date.now() - t0).toBeLessThan(5000);
    track(b, b.host, [b.ports.imap, b.ports.pop3, b.ports.lmtp]);
  });

  it('listens only on its own ports, none of the standard ones', async () => {
    for (const port of [b.ports.imap, b.ports.pop3, b.ports.lmtp]) expect(await isListening(b.host, port)).toBe(true);
    for (const port of [143, 993, 110, 995, 24, 587]) expect(await isListening(b.host, port)).toBe(false);
  });

  it('accepts IMAP LOGIN with the right password and refuses a wrong one', async () => {
    expect(await imapLogin(b, 'alice', 'alice-pw')).toMatch(/^a1 OK/);
    expect(await imapLogin(b, 'alice', 'wrong')).toMatch(/^a1 NO/);
  });

  it('accepts a master user login user*master', async () => {
    expect(await imapLogin(b, `bob*${MASTER.user}`, MASTER.password)).toMatch(/^a1 OK/);
    expect(await imapLogin(b, `bob*${MASTER.user}`, 'bob-pw')).toMatch(/^a1 NO/);
  });

  it('logs the client address as rip=', async () => {
    const line = await b.waitForLog(/imap-login: .*Login: user=<alice>/, 5000);
    expect(line).toContain(`rip=${CLIENT_ADDR}`);
    expect(line).toContain(`lip=${b.host}`);
  });

  it('round-trips a delivered message byte for byte', async () => {
    const msg = Buffer.from(
      'From: a@example.test\r\nTo: alice@example.test\r\nSubject: round trip\r\n\r\n' +
        'line one\r\n.starts with a dot\r\n..two dots\r\n\xe9 latin1 byte\r\n',
      'latin1',
    );
    await b.deliver('alice', msg);
    await b.deliver('alice', 'Subject: second\r\n\r\nsecond\r\n');
    const stored = await b.listMessages('alice');
    expect(stored).toHaveLength(2);
    expect(stored[0]?.equals(msg)).toBe(true);
    expect(stored[1]?.toString()).toBe('Subject: second\r\n\r\nsecond\r\n');
    expect((await b.listMessages('alice', 'INBOX', { raw: true }))[0]?.toString()).toMatch(/^Return-Path: <>\r\n/);
    expect(await b.listMessages('bob')).toEqual([]);
    await expect(b.deliver('nobody', 'Subject: x\r\n\r\nx\r\n')).rejects.toThrow(/RCPT nobody/);
  });

  it('answers POP3 USER/PASS', async () => {
    const c = await LineClient.connect(b.ports.pop3, { host: b.host, localAddress: CLIENT_ADDR });
    try {
      expect(await c.line()).toMatch(/^\+OK/);
      c.write('USER alice\r\n');
      expect(await c.line()).toMatch(/^\+OK/);
      c.write('PASS alice-pw\r\n');
      expect(await c.line()).toMatch(/^\+OK/);
      c.write('STAT\r\n');
      expect(await c.line()).toMatch(/^\+OK 2 /);
      c.write('QUIT\r\n');
      expect(await c.line()).toMatch(/^\+OK/);
    } finally {
      c.close();
    }
  });

  it('answers LMTP LHLO', async () => {
    const c = await LineClient.connect(b.ports.lmtp, { host: b.host, localAddress: CLIENT_ADDR });
    try {
      expect(await c.line()).toMatch(/^220 /);
      c.write('LHLO harness.test\r\n');
      const lines = await c.until('250');
      expect(lines[0]).toMatch(/^250[- ]/);
      expect(lines.join('\n')).toMatch(/PIPELINING/);
      c.write('QUIT\r\n');
    } finally {
      c.close();
    }
  });

  it('stops and comes back on the same ports with its mail', async () => {
    const { imap, pop3, lmtp } = b.ports;
    const oldPid = b.pid;
    await b.stop();
    expect(b.running).toBe(false);
    expect(alive(oldPid)).toBe(false);
    await expect(imapLogin(b, 'alice', 'alice-pw')).rejects.toThrow(/ECONNREFUSED/);
    await b.start();
    track(b, b.host, []);
    expect(b.ports).toEqual({ imap, pop3, lmtp });
    expect(b.pid).not.toBe(oldPid);
    expect(await imapLogin(b, 'alice', 'alice-pw')).toMatch(/^a1 OK/);
    expect(await b.listMessages('alice')).toHaveLength(2);
  });

  it('survives a crash (kill) and comes back on the same ports', async () => {
    const crashed = b.pid;
    await b.kill();
    expect(alive(crashed)).toBe(false);
    expect(await isListening(b.host, b.ports.imap)).toBe(false);
    await b.start();
    track(b, b.host, []);
    expect(await imapLogin(b, 'alice', 'alice-pw')).toMatch(/^a1 OK/);
  });
});

describe('dovecot with TLS', () => {
  it('accepts a TLS connection on imaps verified against the test CA', async () => {
    const ca = await sharedTestCa();
    const cert = await ca.issue('backend-tls', { sans: ['imap.backend.test', '127.0.0.3'] });
    const b = await startDovecot({ address: '127.0.0.3', users: USERS, ssl: 'yes', cert });
    const imaps = b.ports.imaps;
    if (imaps === undefined) throw new Error('no imaps port');
    track(b, b.host, [b.ports.imap, imaps]);
    const caPem = await readFile(ca.caFile);
    for (const servername of ['127.0.0.3', 'imap.backend.test']) {
      const c = await LineClient.connect(imaps, {
        host: b.host,
        localAddress: CLIENT_ADDR,
        tls: { ca: caPem, ...(servername.startsWith('127.') ? {} : { servername }) },
      });
      try {
        expect(c.socket).toHaveProperty('authorized', true);
        expect(await c.line()).toMatch(/^\* OK/);
        c.write('a1 LOGIN alice alice-pw\r\n');
        expect((await c.until('a1')).at(-1)).toMatch(/^a1 OK/);
      } finally {
        c.close();
      }
    }
    // The same server is not trusted without the test CA.
    await expect(LineClient.connect(imaps, { host: b.host, tls: {} })).rejects.toThrow(/self[- ]signed|unable to (get|verify)/i);
  });
});

describe('postgres', () => {
  let server: PgServer;

  beforeAll(async () => {
    server = await startPostgres();
    track(server, server.host, [server.port]);
  });

  async function selectOne(): Promise<unknown> {
    const client = new pg.Client({ connectionString: server.connectionString, connectionTimeoutMillis: 5000 });
    await client.connect();
    try {
      const r = await client.query<{ one: number; db: string }>('SELECT 1 AS one, current_database() AS db');
      return r.rows[0];
    } finally {
      await client.end();
    }
  }

  it('serves SELECT 1 in portier_test', async () => {
    expect(server.port).not.toBe(5432);
    expect(await selectOne()).toEqual({ one: 1, db: 'portier_test' });
  });

  it('survives a stop/start cycle on the same port', async () => {
    const port = server.port;
    await server.stop();
    await expect(selectOne()).rejects.toThrow();
    await server.start();
    track(server, server.host, []);
    expect(server.port).toBe(port);
    expect(await selectOne()).toEqual({ one: 1, db: 'portier_test' });
  });
});

describe('redis', () => {
  let server: RedisServer;

  beforeAll(async () => {
    server = await startRedis();
    track(server, server.host, [server.port]);
  });

  it('answers PING', async () => {
    expect(server.port).not.toBe(6379);
    const client = new Redis(server.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      await client.connect();
      expect(await client.ping()).toBe('PONG');
    } finally {
      client.disconnect();
    }
  });
});

describe('cleanup', () => {
  it('leaves no process, listener or temp dir behind', async () => {
    expect(registeredTempDirs().length).toBeGreaterThan(0);
    await cleanupAll();
    expect(runningProcesses()).toEqual([]);
    for (const pid of pids) expect(alive(pid), `pid ${pid}`).toBe(false);
    for (const l of listeners) expect(await isListening(l.host, l.port), `${l.host}:${l.port}`).toBe(false);
    for (const d of dirs) expect(existsSync(d), d).toBe(false);
    expect(registeredTempDirs()).toEqual([]);
  });
});
