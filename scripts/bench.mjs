#!/usr/bin/env node
// `npm run bench [name…]`: runs bench/<name>.bench.ts (all of them by default), one after another.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';

const wanted = process.argv.slice(2);
const all = readdirSync('bench')
  .filter((f) => f.endsWith('.bench.ts'))
  .sort();
const chosen = wanted.length === 0 ? all : all.filter((f) => wanted.some((w) => f.startsWith(w)));
let failed = 0;
for (const file of chosen) {
  console.log(`\n## bench/${file}`);
  const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', `bench/${file}`], {
    stdio: 'inherit',
  });
  if (r.status !== 0) failed++;
}
process.exit(failed === 0 ? 0 : 1);
