import { describe, expect, it } from 'vitest';
import { countBackendSockets, LINGER_MAX, procHex, readyForIdle } from '../../../bench/compare/backend-sockets.js';

const HEAD = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode';
// 127.0.2.3 is the backend; 127.0.0.1 the proxies' side; 127.0.2.7 some other listener.
const row = (local: string, remote: string, st: string): string => `   0: ${local} ${remote} ${st} 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0`;
const B = '0302007F';
const P = '0100007F';

describe('countBackendSockets', () => {
  it('writes addresses as /proc/net/tcp does', () => {
    expect(procHex('127.0.2.3')).toBe(B);
    expect(procHex('10.1.2.254')).toBe('FE02010A');
  });

  it('tells TIME-WAIT ports, open proxy-side sockets and sockets the backend holds apart', () => {
    const text = [
      HEAD,
      row(`${B}:008F`, '00000000:0000', '0A'), // the backend's listener: not counted
      row(`${P}:9C40`, `${B}:008F`, '06'), // a proxy's port in TIME-WAIT
      row(`${P}:9C41`, `${B}:008F`, '06'),
      row(`${P}:9C42`, `${B}:008F`, '01'), // established, proxy side
      row(`${B}:008F`, `${P}:9C42`, '01'), // ... and the backend's side of it
      row(`${B}:008F`, `${P}:9C43`, '08'), // CLOSE_WAIT at the backend: it still holds the file
      row(`${B}:008F`, `${P}:9C44`, '06'), // TIME-WAIT on the backend's side holds no file
      row(`${P}:9C45`, '0702007F:008F', '01'), // to another address: not a backend
      '',
    ].join('\n');
    expect(countBackendSockets(text, ['127.0.2.3'])).toEqual({ timeWait: 2, toBackends: 1, atBackends: 2 });
    expect(countBackendSockets(text, ['127.0.2.3', '127.0.2.7'])).toEqual({ timeWait: 2, toBackends: 2, atBackends: 2 });
  });
});

describe('readyForIdle', () => {
  const range = 28232;
  it('waits while the ports left are fewer than the sessions and a margin', () => {
    expect(readyForIdle({ timeWait: 10_000, toBackends: 0, atBackends: 0 }, 10_000, range)).toBe(true);
    expect(readyForIdle({ timeWait: 16_000, toBackends: 1000, atBackends: 0 }, 10_000, range)).toBe(false);
  });

  it('waits while a backend still holds the previous run\'s sessions', () => {
    expect(readyForIdle({ timeWait: 0, toBackends: 0, atBackends: LINGER_MAX + 1 }, 2000, range)).toBe(false);
    expect(readyForIdle({ timeWait: 0, toBackends: 0, atBackends: LINGER_MAX }, 2000, range)).toBe(true);
  });
});
