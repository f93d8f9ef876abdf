/**
 * Dovecot's `%` variables (var_expand, 2.3 syntax): `%u`, `%n`, `%d`, `%s`, `%l`, `%r`, ...,
 * long forms `%{user}`, and the modifiers L (lower) and U (upper), e.g. `%Lu`, `%L{user}`.
 * Templates are parsed once into tokens; drivers that build queries use the tokens to bind
 * values as parameters instead of pasting them into text.
 */

export type TemplateToken =
  | { readonly kind: 'text'; readonly text: string }
  | { readonly kind: 'var'; readonly name: VarName; readonly modifiers: string };

export type VarName =
  | 'user' | 'username' | 'domain' | 'service' | 'lip' | 'rip' | 'lport' | 'rport'
  | 'session' | 'real_rip' | 'real_lip' | 'local_name' | 'orig_user' | 'master_user' | 'protocol'
  | 'home' | 'pid' | 'hostname';

const SHORT: Record<string, VarName> = {
  u: 'user', n: 'username', d: 'domain', s: 'service', l: 'lip', r: 'rip', h: 'home', p: 'pid',
};

const LONG = new Set<string>([
  'user', 'username', 'domain', 'service', 'lip', 'rip', 'lport', 'rport', 'session', 'real_rip',
  'real_lip', 'local_name', 'orig_user', 'master_user', 'protocol', 'home', 'pid', 'hostname',
]);

export class TemplateError extends Error {}

export function parseTemplate(template: string): TemplateToken[] {
  const tokens: TemplateToken[] = [];
  let text = '';
  for (let i = 0; i < template.length; i++) {
    const c = template[i];
    if (c !== '%') {
      text += c;
      continue;
    }
    i++;
    if (template[i] === '%') {
      text += '%';
      continue;
    }
    let modifiers = '';
    while (template[i] === 'L' || template[i] === 'U') modifiers += template[i++];
    let name: VarName | undefined;
    if (template[i] === '{') {
      const end = template.indexOf('}', i);
      if (end < 0) throw new TemplateError(`unterminated %{ in "${template}"`);
      const long = template.slice(i + 1, end);
      if (!LONG.has(long)) throw new TemplateError(`unknown variable %{${long}}`);
      name = long as VarName;
      i = end;
    } else {
      const short = template[i] ?? '';
      name = SHORT[short];
      if (name === undefined) throw new TemplateError(`unknown variable %${short} in "${template}"`);
    }
    if (text !== '') tokens.push({ kind: 'text', text });
    text = '';
    tokens.push({ kind: 'var', name, modifiers });
  }
  if (text !== '') tokens.push({ kind: 'text', text });
  return tokens;
}

export type VarValues = Partial<Record<VarName, string>>;

/** The value of one variable token, modifiers applied. */
export function varValue(token: Extract<TemplateToken, { kind: 'var' }>, values: VarValues): string {
  let v = values[token.name] ?? '';
  for (const m of token.modifiers) v = m === 'L' ? v.toLowerCase() : v.toUpperCase();
  return v;
}

export function expandTokens(tokens: readonly TemplateToken[], values: VarValues): string {
  let out = '';
  for (const t of tokens) out += t.kind === 'text' ? t.text : varValue(t, values);
  return out;
}

/**
 * Parsed templates by text: auth_username_format is expanded on every login, passdb fields
 * with `%` on every lookup. Bounded (forgotten all at once past MAX_PARSED texts), since field
 * values may differ per user; a text that does not parse is not kept.
 */
const parsed = new Map<string, readonly TemplateToken[]>();
const MAX_PARSED = 1024;

export function expandTemplate(template: string, values: VarValues): string {
  let tokens = parsed.get(template);
  if (tokens === undefined) {
    tokens = parseTemplate(template);
    if (parsed.size >= MAX_PARSED) parsed.clear();
    parsed.set(template, tokens);
  }
  return expandTokens(tokens, values);
}

/** user@domain → the parts Dovecot calls %n and %d. */
export function splitUser(user: string): { username: string; domain: string } {
  const at = user.lastIndexOf('@');
  return at < 0 ? { username: user, domain: '' } : { username: user.slice(0, at), domain: user.slice(at + 1) };
}
