/**
 * The accounts the IMAP and POP3 proxy tests share: a Dovecot backend's users (bob is `robert`
 * there; carol's password is known only to the backend, which portier reaches as the master
 * user pmaster) and the passwd-file lines that send portier's users to them.
 */
import { startDovecot, type DovecotBackend, type DovecotOptions } from '../support/dovecot.js';

/** A Dovecot on 127.0.0.2 with those accounts, trusting forwarded client facts from loopback. */
export function startProxyBackend(opts: DovecotOptions = {}): Promise<DovecotBackend> {
  return startDovecot({
    address: '127.0.0.2',
    users: [
      { user: 'alice', password: 'alice-pw' },
      { user: 'fwd', password: 'fwd-pw' },
      { user: 'robert', password: 'bob-pw' },
      { user: 'carol', password: 'carol-backend-only' },
    ],
    masterUsers: [{ user: 'pmaster', password: 'pmaster-secret' }],
    trustedNetworks: ['127.0.0.0/8'],
    ...opts,
  });
}

/**
 * passwd-file lines, each proxied with the fields `to`: alice (her own password), fwd (no
 * password: the backend checks), bob (destuser robert), carol (logged in by the master).
 */
export function proxiedUsers(to: string): string[] {
  return [
    `alice:{PLAIN}alice-pw::::::${to}`,
    `fwd:::::::${to} nopassword=y`,
    `bob:{PLAIN}bob-pw::::::${to} destuser=robert`,
    `carol:{PLAIN}carol-pw::::::${to} master=pmaster pass=pmaster-secret`,
  ];
}
