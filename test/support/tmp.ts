import { rmSync } from 'node:fs';
import { chmod, chown, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { atExit, stopAllStarted } from './procs.js';

export interface TempDirOptions {
  /** Defaults to 0o755: peers that drop privileges (dovenull, mail, postgres) must traverse it. */
  mode?: number;
  owner?: { uid: number; gid: number };
}

const dirs = new Set<string>();
let hooked = false;

function hookExit(): void {
  if (hooked) return;
  hooked = true;
  atExit(() => {
    for (const dir of dirs) {
      try {
        rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 20 });
      } catch {
        // best effort at exit
      }
    }
    dirs.clear();
  });
}

/** A fresh directory under the OS temp dir, removed by `cleanupAll()` or at process exit. */
export async function makeTempDir(prefix = 'portier-', opts: TempDirOptions = {}): Promise<string> {
  hookExit();
  const dir = await mkdtemp(join(tmpdir(), prefix.endsWith('-') ? prefix : `${prefix}-`));
  dirs.add(dir);
  await chmod(dir, opts.mode ?? 0o755);
  if (opts.owner !== undefined) await chown(dir, opts.owner.uid, opts.owner.gid);
  return dir;
}

/** Remove one temp dir now (it must not be in use by a running peer). */
export async function removeTempDir(dir: string): Promise<void> {
  dirs.delete(dir);
  await rm(dir, { recursive: true, force: true, maxRetries: 3 });
}

export function registeredTempDirs(): string[] {
  return [...dirs];
}

/** For afterAll: stop every process we started (gracefully), then remove every temp dir. */
export async function cleanupAll(): Promise<void> {
  await stopAllStarted();
  await Promise.all([...dirs].map((d) => removeTempDir(d)));
}
