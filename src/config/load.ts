/**
 * YAML file → validated, frozen configuration. Every problem becomes one line
 * `file:line: key.path: message` (like `nginx -t`); nothing here throws a stack trace at users.
 */
import { accessSync, constants, readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LineCounter, parseDocument, type Document } from 'yaml';
import type { z } from 'zod';
import { ConfigError, errorText } from '../errors.js';
import { configSchema, SERVICE_PROTOCOL, type Config, type Protocol, type ServiceName } from './schema.js';
import { checkCrossFields } from './validate.js';

export interface ListenerSpec {
  readonly name: string;
  readonly service: ServiceName;
  readonly protocol: Protocol;
  readonly addresses: readonly string[];
  readonly port: number;
  readonly ssl: boolean;
  readonly haproxy: boolean;
  readonly haproxyOptional: boolean;
  readonly sslCert?: string | undefined;
  readonly sslKey?: string | undefined;
}

export interface LoadedConfig {
  readonly file: string;
  readonly config: Readonly<Config>;
  readonly listeners: readonly ListenerSpec[];
}

/** Dovecot's default listeners; a listener with `port: 0` is switched off, as in Dovecot. */
const DEFAULT_LISTENERS: Record<ServiceName, Record<string, { port: number; ssl: boolean }>> = {
  'imap-login': { imap: { port: 143, ssl: false }, imaps: { port: 993, ssl: true } },
  'pop3-login': { pop3: { port: 110, ssl: false }, pop3s: { port: 995, ssl: true } },
  lmtp: { lmtp: { port: 24, ssl: false } },
};

/** The embedded default configuration shipped in the package's conf/ directory. */
export function defaultConfigFile(): string {
  return fileURLToPath(new URL('../../conf/portier.yaml', import.meta.url));
}

export function loadConfig(file: string): LoadedConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError([`${file}: cannot read the configuration file: ${errorText(err)}`]);
  }
  return parseConfig(text, file);
}

export function parseConfig(text: string, file: string): LoadedConfig {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => `${file}:${lineCounter.linePos(e.pos[0]).line}: YAML syntax: ${firstLine(e.message)}`),
    );
  }
  const raw: unknown = doc.toJS() ?? {};
  const where = locator(doc, lineCounter, file);
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) throw new ConfigError(parsed.error.issues.map((i) => formatIssue(i, where)));

  const base = dirname(resolve(file));
  const config = resolvePaths(parsed.data, base);
  const problems = [
    ...checkCrossFields(config).map((p) => `${where(p.path)}${p.path.join('.')}: ${p.message}`),
    ...checkFiles(config, where),
  ];
  const listeners = buildListeners(config);
  if (config.protocols.length > 0 && listeners.length === 0) {
    problems.push(`${file}: service: no listener is enabled for protocols ${config.protocols.join(', ')}`);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return deepFreeze({ file: resolve(file), config, listeners });
}

type Where = (path: readonly PropertyKey[]) => string;

function locator(doc: Document, lc: LineCounter, file: string): Where {
  return (path) => {
    for (let n = path.length; n >= 0; n--) {
      const node = doc.getIn(path.slice(0, n) as unknown[], true) as { range?: [number, number, number] } | undefined;
      if (node && typeof node === 'object' && node.range) return `${file}:${lc.linePos(node.range[0]).line}: `;
    }
    return `${file}: `;
  };
}

function formatIssue(issue: z.core.$ZodIssue, where: Where): string {
  const path = issue.path.map((p) => (typeof p === 'symbol' ? String(p) : p));
  if (issue.code === 'unrecognized_keys') {
    return issue.keys
      .map((k) => `${where([...path, k])}${[...path, k].join('.')}: unknown setting`)
      .join('\n');
  }
  const name = path.length > 0 ? path.join('.') : '(top level)';
  return `${where(path)}${name}: ${issue.message}`;
}

/** Relative paths are relative to the configuration file, like nginx includes. */
function resolvePaths(config: Config, base: string): Config {
  const abs = (p: string | undefined): string | undefined => (p === undefined || isAbsolute(p) ? p : resolve(base, p));
  const out: Config = { ...config };
  for (const key of TLS_FILE_KEYS) {
    const v = abs(config[key]);
    if (v !== undefined) out[key] = v;
  }
  out.mail_temp_dir = abs(config.mail_temp_dir) ?? config.mail_temp_dir;
  out.local_name = Object.fromEntries(
    Object.entries(config.local_name).map(([name, ln]) => [
      name,
      { ...ln, ssl_cert: abs(ln.ssl_cert), ssl_key: abs(ln.ssl_key), ssl_alt_cert: abs(ln.ssl_alt_cert), ssl_alt_key: abs(ln.ssl_alt_key) },
    ]),
  ) as Config['local_name'];
  out.passdb = config.passdb.map((p) => (p.driver === 'passwd-file' && p.path !== undefined ? { ...p, path: abs(p.path) } : p)) as Config['passdb'];
  out.service = Object.fromEntries(
    Object.entries(config.service).map(([svc, s]) => [
      svc,
      {
        ...s,
        ssl_cert: abs(s.ssl_cert),
        ssl_key: abs(s.ssl_key),
        ssl_alt_cert: abs(s.ssl_alt_cert),
        ssl_alt_key: abs(s.ssl_alt_key),
        inet_listener: s.inet_listener
          ? Object.fromEntries(
              Object.entries(s.inet_listener).map(([n, l]) => [
                n,
                { ...l, ssl_cert: abs(l.ssl_cert), ssl_key: abs(l.ssl_key), ssl_alt_cert: abs(l.ssl_alt_cert), ssl_alt_key: abs(l.ssl_alt_key) },
              ]),
            )
          : undefined,
      },
    ]),
  ) as Config['service'];
  return out;
}

function checkFiles(config: Config, where: Where): string[] {
  const problems: string[] = [];
  const check = (path: (string | number)[], file: string | undefined): void => {
    if (file === undefined) return;
    try {
      accessSync(file, constants.R_OK);
    } catch {
      problems.push(`${where(path)}${path.join('.')}: cannot read ${file}`);
    }
  };
  for (const key of TLS_FILE_KEYS) check([key], config[key]);
  for (const [name, ln] of Object.entries(config.local_name)) {
    for (const key of ['ssl_cert', 'ssl_key', 'ssl_alt_cert', 'ssl_alt_key'] as const) check(['local_name', name, key], ln[key]);
  }
  for (const [svc, s] of Object.entries(config.service)) {
    for (const key of ['ssl_cert', 'ssl_key', 'ssl_alt_cert', 'ssl_alt_key'] as const) check(['service', svc, key], s[key]);
    for (const [n, l] of Object.entries(s.inet_listener ?? {})) {
      for (const key of ['ssl_cert', 'ssl_key', 'ssl_alt_cert', 'ssl_alt_key'] as const) check(['service', svc, 'inet_listener', n, key], l[key]);
    }
  }
  config.passdb.forEach((p, i) => {
    if (p.driver === 'passwd-file' && p.path !== undefined && !p.path.includes('%')) check(['passdb', i, 'path'], p.path);
  });
  // LMTP spools messages there: better refused at start than a 451 for every large message.
  if (config.protocols.includes('lmtp')) {
    try {
      accessSync(config.mail_temp_dir, constants.W_OK | constants.X_OK);
    } catch {
      problems.push(`${where(['mail_temp_dir'])}mail_temp_dir: cannot write to ${config.mail_temp_dir}`);
    }
  }
  return problems;
}

/** Top-level settings naming TLS files (made absolute, checked readable). */
const TLS_FILE_KEYS = [
  'ssl_cert', 'ssl_key', 'ssl_alt_cert', 'ssl_alt_key', 'ssl_ca', 'ssl_session_ticket_key_file',
  'ssl_client_ca_file', 'ssl_client_ca_dir', 'ssl_client_cert', 'ssl_client_key',
] as const;

function buildListeners(config: Config): ListenerSpec[] {
  const out: ListenerSpec[] = [];
  for (const [service, protocol] of Object.entries(SERVICE_PROTOCOL) as [ServiceName, Protocol][]) {
    if (!config.protocols.includes(protocol)) continue;
    const configured = config.service[service]?.inet_listener ?? {};
    const names = new Set([...Object.keys(DEFAULT_LISTENERS[service]), ...Object.keys(configured)]);
    for (const name of names) {
      const def = DEFAULT_LISTENERS[service][name];
      const l = configured[name];
      const port = l?.port ?? def?.port;
      if (port === undefined || port === 0) continue;
      // ssl = no switches TLS off, implicit-TLS listeners included (as in Dovecot); validate.ts refuses explicit ones.
      if (config.ssl === 'no' && (l?.ssl ?? def?.ssl ?? false) && l?.port === undefined) continue;
      out.push({
        name,
        service,
        protocol,
        addresses: l?.address ?? config.listen,
        port,
        ssl: l?.ssl ?? def?.ssl ?? false,
        haproxy: l?.haproxy ?? false,
        haproxyOptional: l?.haproxy_optional ?? false,
        sslCert: l?.ssl_cert,
        sslKey: l?.ssl_key,
      });
    }
  }
  return out;
}

function firstLine(s: string): string {
  return s.split('\n')[0] ?? s;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
