/**
 * Piscina worker entry: the CPU-heavy derivations, off the event loop. It computes and returns;
 * the comparison stays on the main thread. Relative imports must stay inside this folder: the
 * source-tree loader (crypt-worker.dev.mjs) transpiles only the .ts files it reaches.
 */
import { pbkdf2Sync } from 'node:crypto';
import { hashSync as bcryptHashSync } from 'bcryptjs';
import { md5Crypt, parseShaCrypt, shaCrypt } from './crypt.js';

export type HashTask =
  /** Result: the full crypt string, or null when the setting is invalid. */
  | { readonly op: 'sha-crypt'; readonly password: Uint8Array; readonly setting: string }
  | { readonly op: 'md5-crypt'; readonly password: Uint8Array; readonly salt: string }
  /** `setting` is `$2y$NN$` + 22 salt characters; the password must be UTF-8 (bcryptjs takes strings). */
  | { readonly op: 'bcrypt'; readonly password: Uint8Array; readonly setting: string }
  /** Result: the derived key. */
  | {
      readonly op: 'pbkdf2';
      readonly password: Uint8Array;
      readonly salt: Uint8Array;
      readonly rounds: number;
      readonly length: number;
      readonly digest: 'sha1' | 'sha256';
    };

export default function runHashTask(task: HashTask): string | Uint8Array | null {
  switch (task.op) {
    case 'sha-crypt': {
      const parsed = parseShaCrypt(task.setting);
      return parsed === null ? null : shaCrypt(task.password, parsed.setting);
    }
    case 'md5-crypt':
      return md5Crypt(task.password, task.salt);
    case 'bcrypt':
      try {
        return bcryptHashSync(Buffer.from(task.password).toString('utf8'), task.setting);
      } catch {
        return null; // bcryptjs throws for a setting it cannot read
      }
    case 'pbkdf2':
      return pbkdf2Sync(task.password, task.salt, task.rounds, task.length, task.digest);
  }
}
