#!/usr/bin/env node
// The package's command: runs the compiled CLI (npm ci builds dist/ through the prepare script).
import { existsSync } from 'node:fs';

const main = new URL('../dist/main.js', import.meta.url);
if (!existsSync(main)) {
  process.stderr.write('portier: dist/ is missing; run `npm ci` (or `npm run build`) in the package directory first\n');
  process.exit(1);
}
const { run } = await import(main.href);
process.exitCode = await run(process.argv);
