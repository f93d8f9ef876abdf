// Source-tree entry for the hash worker, used only when pool.ts itself runs as .ts (vitest).
// Worker threads do not share vitest's transform, so register a loader that transpiles this
// folder's .ts files, then load the real worker. The compiled build uses crypt-worker.js directly.
import { register } from 'node:module';

register('./ts-hooks.mjs', import.meta.url);
const { default: runHashTask } = await import('./crypt-worker.ts');
export default runHashTask;
