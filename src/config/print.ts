/**
 * `portier check-config` output: the effective configuration as YAML with secrets masked,
 * or only what differs from the defaults (`-n`, like `doveconf -n`).
 */
import { stringify } from 'yaml';
import { configSchema, DURATION_KEYS, SECRET_KEYS, SIZE_KEYS, type Config } from './schema.js';
import { formatDuration, formatSize } from './units.js';

const MASK = '********';

/** Secrets inside Dovecot-style strings: `pass=...` fields, `password=...` in DSNs. */
const INLINE_SECRET = /\b(pass|password|master_pass)=("[^"]*"|'[^']*'|\S+)/g;

export function maskSecrets(value: unknown, key = ''): unknown {
  if (SECRET_KEYS.has(key) && value !== undefined && value !== null && value !== '') return MASK;
  if (typeof value === 'string') return value.replace(INLINE_SECRET, `$1=${MASK}`);
  if (Array.isArray(value)) return value.map((v) => maskSecrets(v));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, maskSecrets(v, k)]));
  }
  return value;
}

export function printConfig(config: Config, onlyChanged: boolean): string {
  let shown: Record<string, unknown> = { ...config };
  if (onlyChanged) {
    const defaults = configSchema.parse({}) as Record<string, unknown>;
    shown = Object.fromEntries(
      Object.entries(shown).filter(([k, v]) => JSON.stringify(v) !== JSON.stringify(defaults[k])),
    );
  }
  for (const [k, v] of Object.entries(shown)) {
    if (typeof v === 'number' && DURATION_KEYS.has(k)) shown[k] = formatDuration(v);
    else if (typeof v === 'number' && SIZE_KEYS.has(k)) shown[k] = formatSize(v);
  }
  return stringify(maskSecrets(shown), { lineWidth: 0 });
}
