// run.mjs — runs the browser tests in order with a time limit each, prints
// one line per test and, as the very last line, "browser: N passed, M failed".
// Usage: node run.mjs [name-filter]

import { Env } from './env.mjs';
import tests from './tests.mjs';

/* Upper bound for one test, including its page waits and restarts. */
const TEST_TIMEOUT_MS = 120000;

function withTimeout(promise, ms, what) {
  let timer;
  const limit = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}

const filter = process.argv[2] || '';
const selected = tests.filter((t) => t.name.includes(filter));
let passed = 0;
let failed = 0;
const env = new Env();
try {
  await withTimeout(env.start(), 60000, 'starting the environment');
  for (const t of selected) {
    const started = Date.now();
    try {
      await withTimeout(t.fn(env), TEST_TIMEOUT_MS, t.name);
      passed++;
      console.log(`ok   ${t.name} (${Date.now() - started} ms)`);
    } catch (err) {
      failed++;
      console.log(`FAIL ${t.name} (${Date.now() - started} ms)`);
      console.log(String(err && err.stack ? err.stack : err).replace(/^/gm, '     '));
      // A test that left meteord down would fail everything after it.
      if (!env.meteord.child) await env.meteord.start().catch(() => {});
    }
  }
} catch (err) {
  failed = Math.max(1, selected.length - passed);
  console.log(`FAIL environment: ${err && err.stack ? err.stack : err}`);
} finally {
  await withTimeout(env.stop(), 30000, 'stopping the environment').catch((e) => console.log(`warning: ${e}`));
}
console.log(`browser: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
