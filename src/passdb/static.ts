/**
 * Dovecot's static passdb: the same fields for every user (e.g. `proxy=y host=10.0.0.5
 * nopassword=y` in front of a whole tier). Field values may hold `%` variables.
 */
import { requestVars } from './passwd-file.js';
import type { AuthRequest, Passdb, PassdbLookup } from './types.js';
import { expandTemplate, parseTemplate, type VarName } from './vars.js';

export class StaticPassdb implements Passdb {
  readonly name: string;
  readonly driver = 'static';
  readonly #fields: ReadonlyMap<string, string>;
  readonly templateVars: ReadonlySet<VarName>;

  constructor(name: string, fields: ReadonlyMap<string, string>) {
    this.name = name;
    this.#fields = fields;
    this.templateVars = new Set([...fields.values()].flatMap((v) => parseTemplate(v).flatMap((t) => (t.kind === 'var' ? [t.name] : []))));
  }

  async lookup(req: AuthRequest): Promise<PassdbLookup> {
    const vars = requestVars(req);
    const fields = new Map<string, string>();
    for (const [k, v] of this.#fields) fields.set(k, v.includes('%') ? expandTemplate(v, vars) : v);
    return { kind: 'found', fields };
  }
}
