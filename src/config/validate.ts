/**
 * Checks that span several settings (the schema checks each value alone).
 */
import { isIP } from 'node:net';
import type { Config } from './schema.js';

export interface Problem {
  readonly path: (string | number)[];
  readonly message: string;
}

export function checkCrossFields(config: Config): Problem[] {
  const problems: Problem[] = [];
  if (config.ssl !== 'no' && config.ssl_cert === undefined) {
    problems.push({ path: ['ssl_cert'], message: `required when ssl = ${config.ssl} (or set ssl: no, which switches TLS off)` });
  }
  problems.push(...checkTls(config));
  if ((config.ssl_cert === undefined) !== (config.ssl_key === undefined)) {
    problems.push({ path: [config.ssl_cert === undefined ? 'ssl_cert' : 'ssl_key'], message: 'ssl_cert and ssl_key go together' });
  }
  if ((config.ssl_alt_cert === undefined) !== (config.ssl_alt_key === undefined)) {
    problems.push({ path: [config.ssl_alt_cert === undefined ? 'ssl_alt_cert' : 'ssl_alt_key'], message: 'ssl_alt_cert and ssl_alt_key go together' });
  }
  if ((config.ssl_client_cert === undefined) !== (config.ssl_client_key === undefined)) {
    problems.push({ path: [config.ssl_client_cert === undefined ? 'ssl_client_cert' : 'ssl_client_key'], message: 'ssl_client_cert and ssl_client_key go together' });
  }
  for (const [name, ln] of Object.entries(config.local_name)) {
    if ((ln.ssl_cert === undefined) !== (ln.ssl_key === undefined)) {
      problems.push({ path: ['local_name', name], message: 'ssl_cert and ssl_key go together' });
    }
    for (const n of name.split(/\s+/)) {
      if (!/^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/.test(n)) {
        problems.push({ path: ['local_name', name], message: `"${n}" is not a host name or *.wildcard` });
      }
    }
  }
  for (const [service, s] of Object.entries(config.service)) {
    for (const [name, l] of Object.entries(s.inet_listener ?? {})) {
      if ((l.ssl_cert === undefined) !== (l.ssl_key === undefined)) {
        problems.push({ path: ['service', service, 'inet_listener', name], message: 'ssl_cert and ssl_key go together' });
      }
      if (l.haproxy_optional === true && l.haproxy !== true) {
        problems.push({ path: ['service', service, 'inet_listener', name, 'haproxy_optional'], message: 'needs haproxy: yes' });
      }
    }
  }
  config.login_source_ips.forEach((entry, i) => {
    if (isIP(entry.replace(/^\?/, '')) === 0) problems.push({ path: ['login_source_ips', i], message: `"${entry}" is not an IP address (optionally prefixed with ?)` });
  });
  const sep = config.auth_master_user_separator;
  if (sep !== '' && config.auth_username_chars !== '' && config.auth_username_chars.includes(sep)) {
    problems.push({ path: ['auth_master_user_separator'], message: `"${sep}" is also allowed in auth_username_chars, so logins would be ambiguous` });
  }
  config.passdb.forEach((p, i) => {
    if (p.driver === 'passwd-file' && p.path === undefined && (p.args === undefined || p.args.trim() === '')) {
      problems.push({ path: ['passdb', i], message: 'passwd-file needs path (or Dovecot-style args with the path)' });
    }
  });
  if (config.protocols.length > 0 && config.passdb.filter((p) => !p.master).length === 0) {
    problems.push({ path: ['passdb'], message: 'at least one (non-master) passdb is required' });
  }
  return problems;
}

/** TLS settings that only work together (Dovecot refuses the same combinations at start). */
function checkTls(config: Config): Problem[] {
  const problems: Problem[] = [];
  const pair = (path: (string | number)[], o: { ssl_cert?: string | undefined; ssl_key?: string | undefined; ssl_alt_cert?: string | undefined; ssl_alt_key?: string | undefined }): void => {
    if ((o.ssl_alt_cert === undefined) !== (o.ssl_alt_key === undefined)) problems.push({ path, message: 'ssl_alt_cert and ssl_alt_key go together' });
    if (o.ssl_alt_cert !== undefined && o.ssl_cert === undefined) problems.push({ path, message: 'ssl_alt_cert needs ssl_cert beside it' });
  };
  for (const [name, ln] of Object.entries(config.local_name)) pair(['local_name', name], ln);
  for (const [service, s] of Object.entries(config.service)) {
    if ((s.ssl_cert === undefined) !== (s.ssl_key === undefined)) problems.push({ path: ['service', service], message: 'ssl_cert and ssl_key go together' });
    pair(['service', service], s);
    for (const [name, l] of Object.entries(s.inet_listener ?? {})) {
      pair(['service', service, 'inet_listener', name], l);
      const implicit = l.ssl ?? (name === 'imaps' || name === 'pop3s');
      if (config.ssl === 'no' && implicit && l.port !== undefined && l.port !== 0) {
        problems.push({ path: ['service', service, 'inet_listener', name], message: 'ssl = no switches TLS off, so this implicit-TLS listener cannot work (set port: 0, or ssl: yes)' });
      }
    }
  }
  if (config.ssl_verify_client_cert && config.ssl_ca === undefined) {
    problems.push({ path: ['ssl_verify_client_cert'], message: 'needs ssl_ca (the CA that client certificates must chain to)' });
  }
  for (const key of ['auth_ssl_require_client_cert', 'auth_ssl_username_from_cert'] as const) {
    if (config[key] && !config.ssl_verify_client_cert) problems.push({ path: [key], message: 'needs ssl_verify_client_cert: yes (and ssl_ca)' });
  }
  return problems;
}
