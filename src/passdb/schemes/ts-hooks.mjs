// Module hooks for crypt-worker.dev.mjs (source tree only): strip TypeScript types with the
// transformer of the vite that runs the tests, and map `./x.js` imports to `./x.ts` as tsc does.
// Never loaded from the compiled build, where vite is not a dependency.
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

let transform;

async function transformer() {
  if (transform !== undefined) return transform;
  const vite = await import('vite');
  if (typeof vite.transformWithOxc === 'function') {
    transform = async (code, file) => (await vite.transformWithOxc(code, file, { lang: 'ts' })).code;
  } else {
    transform = async (code, file) => (await vite.transformWithEsbuild(code, file, { loader: 'ts', format: 'esm' })).code;
  }
  return transform;
}

export async function resolve(specifier, context, nextResolve) {
  try {
    return await nextResolve(specifier, context);
  } catch (err) {
    const fromTs = context.parentURL?.startsWith('file:') && context.parentURL.endsWith('.ts');
    if (err?.code === 'ERR_MODULE_NOT_FOUND' && fromTs && specifier.startsWith('.') && specifier.endsWith('.js')) {
      return nextResolve(`${specifier.slice(0, -3)}.ts`, context);
    }
    throw err;
  }
}

export async function load(url, context, nextLoad) {
  if (!url.startsWith('file:') || !url.endsWith('.ts')) return nextLoad(url, context);
  const file = fileURLToPath(url);
  const source = await (await transformer())(await readFile(file, 'utf8'), file);
  return { format: 'module', source, shortCircuit: true };
}
