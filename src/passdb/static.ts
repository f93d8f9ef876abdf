/**
 * Dovecot's static passdb: the same fields for every user (e.g. `proxy=y host=10.0.0.5
 * nopassword=y` in front of a whole tier). Field values may hold `%` variables.
 */
import { requestVars } from './passwd-file.js';
import type { AuthRequest, Passdb, PassdbLookup } from './types.js';
import { expandTemplate } from './vars.js';

export class StaticPassdb implements Passdb {
  readonly name: string;
  readonly driver = 'static';
  readonly #fields: ReadonlyMap<string, string>;

  constructor(name: string, fields: ReadonlyMap<string, string>) {
    this.name = name;
    this.#fields = fields;
  }

  async lookup(req: AuthRequest): Promise<PassdbLookup> {
    const vars = requestVars(req);
    const fields = new Map<string, string>();
    for (const [k, v] of this.#fields) fields.set(k, v.includes('%') ? expandTemplate(v, vars) : v);
    return { kind: 'found', fields };
  }
}
