#!/usr/bin/env node
// `npm test`: typecheck, lint, build the console, then every vitest suite; ends with the plain
// "N passed, N failed, N skipped" line CI reads. Extra arguments go to vitest.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';

const bin = (name) => `node_modules/.bin/${name}`;
const run = (label, cmd, args) => {
  console.log(`\n== ${label}`);
  const started = Date.now();
  const result = spawnSync(cmd, args, { stdio: 'inherit' });
  console.log(
    `== ${label}: ${result.status === 0 ? 'ok' : 'FAILED'} (${((Date.now() - started) / 1000).toFixed(1)} s)`,
  );
  return result.status === 0;
};

let failed = 0;
let passed = 0;
let skipped = 0;
const extra = process.argv.slice(2);

if (extra.length === 0) {
  if (run('typecheck (tsc)', bin('tsc'), ['-p', '.'])) passed++;
  else failed++;
  if (run('typecheck console (tsc -p web)', bin('tsc'), ['-p', 'web'])) passed++;
  else failed++;
  if (run('lint (eslint)', bin('eslint'), ['--max-warnings=0', '.'])) passed++;
  else failed++;
}
// The browser suite (test/console.e2e.test.ts) drives the built console: build it from the current source.
if (run('web build (vite)', bin('vite'), ['build', '--config', 'web/vite.config.ts', '--logLevel', 'warn']))
  passed++;
else failed++;

const report = '.ci-vitest.json';
rmSync(report, { force: true });
const vitestOk = run('tests (vitest: SQLite, PostgreSQL when present, simulated devices)', bin('vitest'), [
  'run',
  '--reporter=default',
  '--reporter=json',
  `--outputFile.json=${report}`,
  ...extra,
]);
if (existsSync(report)) {
  const json = JSON.parse(readFileSync(report, 'utf8'));
  passed += json.numPassedTests;
  failed += json.numFailedTests;
  skipped += json.numPendingTests + json.numTodoTests;
  // A suite that fails to load has no failed tests but is a failure all the same.
  failed += json.testResults.filter((r) => r.status === 'failed' && r.assertionResults.length === 0).length;
} else {
  failed++;
}
if (!vitestOk && failed === 0) failed++;

console.log(`\n${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed === 0 ? 0 : 1);
