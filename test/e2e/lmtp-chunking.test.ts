/**
 * A backend that offers CHUNKING (RFC 3030) gets the message as one `BDAT <size> LAST` with
 * the message's bytes unstuffed, in the same write, and no DATA (Dovecot's smtp-client does
 * the same): nothing is sent at the client's DATA, no 354 is waited for. Its replies are one
 * per recipient (LMTP) or one for all (SMTP), relayed as after DATA. A message that is not
 * delivered (too big) leaves such a backend with no partial message at all: its connection is
 * kept and gets RSET before the next MAIL. Backends without CHUNKING keep getting DATA
 * (lmtp-early-data.test.ts); Dovecot itself offers CHUNKING (lmtp-proxy.test.ts).
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { LOOPBACK_SETTINGS, testConfig } from '../support/config.js';
import type { LineClient } from '../support/lines.js';
import { envelope, fakeConn as conn, lhloClient, quit, replies, saved, testMessage as message } from '../support/lmtp-mta.js';
import { reply, startFakeLmtp, type FakeConn, type FakeLmtp } from '../support/lmtp-peers.js';
import { startPortier, type RunningPortier } from '../support/portier.js';

const FAKE_IP = '127.0.0.7';
const MAX_SIZE = 1024 * 1024;
let chunker: FakeLmtp;
let refuser: FakeLmtp;
let smtp: FakeLmtp;
let plain: FakeLmtp;
let px: RunningPortier;

const client = (): Promise<LineClient> => lhloClient(px);

function users(): string {
  const at = (f: FakeLmtp, extra = ''): string => `proxy=y host=${FAKE_IP} port=${f.port}${extra}`;
  return [
    `k1@x.example:::::::${at(chunker)}`,
    `k2@x.example:::::::${at(chunker)}`,
    `r1@x.example:::::::${at(refuser)}`,
    `s1@x.example:::::::${at(smtp, ' protocol=smtp')}`,
    `s2@x.example:::::::${at(smtp, ' protocol=smtp')}`,
    `p1@x.example:::::::${at(plain)}`,
    '',
  ].join('\n');
}

/** The message as the client sends it after 354 (dot-stuffed, terminated). */
function wire(m: Buffer): Buffer {
  return Buffer.concat([Buffer.from(m.toString('latin1').replace(/^\./gm, '..'), 'latin1'), Buffer.from('.\r\n')]);
}

beforeAll(async () => {
  [chunker, refuser, smtp, plain] = await Promise.all([
    startFakeLmtp(FAKE_IP, { kind: 'ok' }, { chunking: 'ok' }),
    startFakeLmtp(FAKE_IP, { kind: 'ok' }, { chunking: 'refuse' }),
    startFakeLmtp(FAKE_IP, { kind: 'ok' }, { chunking: 'ok', smtp: true }),
    startFakeLmtp(FAKE_IP, { kind: 'ok' }),
  ]);
  const config = testConfig(['lmtp'], { base: LOOPBACK_SETTINGS, settings: { log_level: 'debug', lmtp_max_mail_size: '1M' } });
  px = await startPortier(config, { users: users() });
});

afterAll(async () => {
  await px?.stop();
  await Promise.all([chunker, refuser, smtp, plain].map((f) => f?.close()));
});

describe('a backend that offers CHUNKING gets BDAT', () => {
  test('BDAT <size> LAST with the exact bytes, unstuffed; no DATA; one reply per recipient; the connection kept for the next transaction', async () => {
    const before = chunker.conns.length;
    const l = await client();
    // Lines starting with "." are stuffed by the client and must arrive unstuffed, without a terminator.
    const m = message('bdat', '.leading dot\r\n..two dots\r\n.\r\nend\r\n');
    for (let i = 0; i < 2; i++) {
      await envelope(l, ['k1@x.example', 'k2@x.example']);
      l.write(wire(m));
      expect(await replies(l, 2)).toEqual([expect.stringMatching(saved('k1@x.example')), expect.stringMatching(saved('k2@x.example'))]);
      expect(chunker.received.at(-1)?.equals(m)).toBe(true);
    }
    expect(chunker.conns.length - before).toBe(1);
    const c = conn(chunker, before);
    expect(c.bdats).toBe(2);
    expect(c.dots).toBe(0);
    expect(c.lines.filter((x) => x === 'DATA')).toEqual([]);
    expect(c.lines.filter((x) => x.startsWith('BDAT'))).toEqual([`BDAT ${m.length} LAST`, `BDAT ${m.length} LAST`]);
    // The second MAIL follows a completed BDAT directly: no RSET.
    expect(c.lines.filter((x) => x === 'RSET')).toEqual([]);
    await quit(l);
  });

  test('an empty message is BDAT 0 LAST', async () => {
    const before = chunker.conns.length;
    const l = await client();
    await envelope(l, ['k1@x.example']);
    l.write('.\r\n');
    expect(await replies(l, 1)).toEqual([expect.stringMatching(saved('k1@x.example'))]);
    expect(conn(chunker, before).lines.at(-1)).toBe('BDAT 0 LAST');
    expect(chunker.received.at(-1)?.length).toBe(0);
    await quit(l);
  });

  test('refusals after BDAT LAST are relayed per recipient, next to a DATA backend that saves it', async () => {
    const l = await client();
    await envelope(l, ['r1@x.example', 'p1@x.example']);
    l.write(wire(message('mixed')));
    expect(await replies(l, 2)).toEqual(['554 5.6.0 fake refuses the message 1', expect.stringMatching(saved('p1@x.example'))]);
    // The backend without CHUNKING got DATA and the dot.
    expect(plain.conns.at(-1)?.dots).toBe(1);
    await quit(l);
  });

  test('protocol=smtp: one reply to BDAT LAST answers every recipient of that backend', async () => {
    const l = await client();
    await envelope(l, ['s1@x.example', 's2@x.example']);
    l.write(wire(message('smtp-bdat')));
    expect(await replies(l, 2)).toEqual([expect.stringMatching(saved('s1@x.example')), expect.stringMatching(saved('s2@x.example'))]);
    expect(smtp.conns.at(-1)?.bdats).toBe(1);
    await quit(l);
  });

  test('a message over lmtp_max_mail_size: 552, the backend got no byte of it, its connection is kept and gets RSET before the next MAIL', async () => {
    const before = chunker.conns.length;
    const l = await client();
    await envelope(l, ['k1@x.example']);
    l.write(wire(message('too-big', `${'y'.repeat(98)}\r\n`.repeat(MAX_SIZE / 100 + 100))));
    expect(await replies(l, 1)).toEqual(['552 5.3.4 Message too big for system']);
    const c = conn(chunker, before);
    expect(c.lines.filter((x) => x.startsWith('BDAT'))).toEqual([]);
    expect([c.bdats, c.pending]).toEqual([0, 0]);
    await envelope(l, ['k1@x.example']);
    l.write(wire(message('after-too-big')));
    expect(await replies(l, 1)).toEqual([expect.stringMatching(saved('k1@x.example'))]);
    expect(chunker.conns.length - before).toBe(1);
    expect(c.lines.slice(-4)).toEqual(['RSET', 'MAIL FROM:<s@example.org>', 'RCPT TO:<k1@x.example>', expect.stringMatching(/^BDAT \d+ LAST$/)]);
    expect(c.bdats).toBe(1);
    await quit(l);
  });
});
