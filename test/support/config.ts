/**
 * Configuration text for portier instances in tests (startPortier, or a file for the real
 * command): the settings most tests share, the `service:` block of listeners for the protocols
 * a test speaks, and passdb entries. Plain YAML text, so `{{port}}` (a fresh free port) and
 * `{{dir}}` (the instance's directory) work as startPortier documents.
 */

export type MailProtocol = 'imap' | 'pop3' | 'lmtp';

/** Dovecot's listener names: each protocol's plain one and (imaps, pop3s) its implicit-TLS one. */
export type ListenerName = 'imap' | 'imaps' | 'pop3' | 'pop3s' | 'lmtp';

/** A port as written in the YAML: a number (0 switches the listener off) or `{{port}}`. */
export type ListenerPort = number | '{{port}}';

const SERVICES: Readonly<Record<MailProtocol, { service: string; listeners: readonly (readonly [ListenerName, ListenerPort])[] }>> = {
  imap: { service: 'imap-login', listeners: [['imap', '{{port}}'], ['imaps', 0]] },
  pop3: { service: 'pop3-login', listeners: [['pop3', '{{port}}'], ['pop3s', 0]] },
  lmtp: { service: 'lmtp', listeners: [['lmtp', '{{port}}']] },
};

/**
 * The `service:` block: for each protocol its plain listener on a fresh port and its
 * implicit-TLS listener off (port 0, else portier would bind 993/995 like Dovecot), unless
 * `ports` names another port for a listener.
 */
export function listenersYaml(protocols: readonly MailProtocol[], ports: Partial<Record<ListenerName, ListenerPort>> = {}): string {
  const out = ['service:'];
  for (const protocol of protocols) {
    const { service, listeners } = SERVICES[protocol];
    out.push(`  ${service}:`, '    inet_listener:');
    for (const [name, port] of listeners) out.push(`      ${name}: { port: ${ports[name] ?? port} }`);
  }
  return `${out.join('\n')}\n`;
}

/** Listen on loopback only, without TLS. */
export const LOOPBACK_SETTINGS: Readonly<Record<string, string>> = { listen: '127.0.0.1', ssl: 'no' };

/**
 * What a test instance sets unless it says otherwise: loopback, no TLS, plaintext logins
 * allowed (clients come from 127.0.0.5, which is not "secured") and no failure delay.
 */
export const PLAINTEXT_TEST_SETTINGS: Readonly<Record<string, string>> = {
  ...LOOPBACK_SETTINGS,
  disable_plaintext_auth: 'no',
  auth_failure_delay: '0',
};

/** Values are YAML as written: quote what YAML would read otherwise (`"'*'"`, `"''"`). */
export type Settings = Readonly<Record<string, string | number>>;

/** One passdb list entry (`  - driver: ...`), its fields YAML as written, in the order given. */
export function passdbEntry(driver: string, fields: Settings): string {
  return [`  - driver: ${driver}`, ...Object.entries(fields).map(([k, v]) => `    ${k}: ${v}`)].join('\n') + '\n';
}

/** The passdb most tests use: passwd-file `users` in the instance's directory, PLAIN by default. */
export const USERS_FILE_PASSDB = passdbEntry('passwd-file', { args: 'scheme=PLAIN {{dir}}/users' });

export interface TestConfigOptions {
  /** The settings the others go over; default PLAINTEXT_TEST_SETTINGS (LOOPBACK_SETTINGS where logins do not apply: LMTP). */
  readonly base?: Settings;
  /** Top-level settings over `base` (a key given again replaces the base value). */
  readonly settings?: Settings;
  /** YAML text after the settings, for nested ones (local_backend, local_name, ...). */
  readonly extra?: string;
  /** Listener ports over listenersYaml's defaults. */
  readonly ports?: Partial<Record<ListenerName, ListenerPort>>;
  /** The whole `service:` block instead of listenersYaml(protocols, ports). */
  readonly service?: string;
  /** The passdb list entries (passdbEntry, or YAML); default USERS_FILE_PASSDB. */
  readonly passdb?: string;
}

/** A whole configuration: protocols, the test settings, listeners, passdb. */
export function testConfig(protocols: readonly MailProtocol[], opts: TestConfigOptions = {}): string {
  const settings: Settings = { protocols: protocols.join(' '), ...(opts.base ?? PLAINTEXT_TEST_SETTINGS), ...opts.settings };
  const lines = Object.entries(settings).map(([k, v]) => `${k}: ${v}\n`).join('');
  const service = opts.service ?? listenersYaml(protocols, opts.ports);
  return `${lines}${opts.extra ?? ''}${service}passdb:\n${opts.passdb ?? USERS_FILE_PASSDB}`;
}
