#!/usr/bin/env node
// build.mjs — assembles public/meteor.js, the ONE file meteord serves and
// pages include, from the sources in public/src (order below: each part
// uses only what is defined in the one shared scope; start.js runs last).
// The assembled file is committed, so meteord, the deployment copies
// (`cp -r public`) and the demo need nothing but the checkout; the lint
// step of tests/run.sh and the browser suite run `--check` so that a
// source change without a re-assembly fails.
//
//   node public/build.mjs           write public/meteor.js
//   node public/build.mjs --check   exit 1 if public/meteor.js is not current
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const OUT = join(here, 'meteor.js');
// intro.js is the file's documentation and stays outside the closure.
const INTRO = 'intro.js';
const PARTS = ['util.js', 'parse.js', 'transports.js', 'native.js', 'modes.js', 'frame.js', 'page.js', 'start.js'];

function read(name) {
  return readFileSync(join(here, 'src', name), 'utf8').replace(/\s+$/, '') + '\n';
}

// One closure keeps every name off the page's window but Meteor.
function assemble() {
  const indent = (text) => text.replace(/^(?=.)/gm, '  ');
  const body = PARTS.map((name) => `  /* ---- src/${name} ---- */\n\n${indent(read(name))}`).join('\n');
  return `${read(INTRO)}/* Assembled by public/build.mjs from public/src/*.js: edit those, then run
 * \`node public/build.mjs\` (tests/run.sh fails while this file is stale). */
(function (window, document) {
  'use strict';

${body}})(window, document);
`;
}

const built = assemble();
if (process.argv.includes('--check')) {
  let served = '';
  try { served = readFileSync(OUT, 'utf8'); } catch { /* missing: stale */ }
  if (served !== built) {
    console.error('public/meteor.js is not what public/src assembles to: run `node public/build.mjs`');
    process.exit(1);
  }
} else {
  writeFileSync(OUT, built);
}
