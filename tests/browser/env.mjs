// env.mjs — the shared test environment: real meteord + fcgi-chat, a page
// server for test-only pages, and one headless Debian Chromium driven by
// playwright-core; plus the page helpers the tests use.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { chromium } from 'playwright-core';
import { FcgiChat, Meteord, PageServer, sleep, tempDir } from './servers.mjs';

/* Longest wait for one expected thing to show up in a page. Smart polls back
 * off to maxpollfreq, reconnects back off up to 10 s: 30 s covers both. */
export const WAIT_MS = 30000;
/* First message id of the suite: 2^53 - 10^7. */
export const FIRST_ID = 2 ** 53 - 10_000_000;
/* Host name of the page in the seed test; meteord answers as "data." + it. */
export const SEED_HOST = 'chat.test';

const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';

/* The seed article's page code, verbatim (issue 6), inside a test page. */
export const SEED_SNIPPET = `Meteor.hostid = "1234567";
Meteor.host = "data." + location.hostname;
Meteor.registerEventCallback("process", addMsg);
Meteor.joinChannel("chat", 10);
Meteor.mode = 'stream';
Meteor.connect();`;

function seedPage() {
  return `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>seed</title>
<script type="text/javascript" src="http://data.${SEED_HOST}/meteor.js" charset="utf-8"></script>
</head><body>
<ul id="chat"></ul>
<script>
function addMsg(text) {
  var li = document.createElement('li');
  li.textContent = text;
  document.getElementById('chat').appendChild(li);
}
${SEED_SNIPPET}
</script>
</body></html>`;
}

/* A bare page for driving the Meteor API directly: loads meteor.js from
 * ?base=… and sets window.meteorLoaded. */
const API_PAGE = `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>api</title></head><body>
<script>
var s = document.createElement('script');
s.src = new URLSearchParams(location.search).get('base') + '/meteor.js';
s.onload = function () { window.meteorLoaded = true; };
document.head.appendChild(s);
</script>
</body></html>`;

export class Env {
  async start() {
    this.dir = tempDir();
    // With a history file, as the shipped configuration and both init
    // systems run it: a restart keeps the conversation.
    this.meteord = new Meteord(this.dir, ['-HistoryFile', `${this.dir}/meteord.history`]);
    // Start the id sequence near 2^53 so that every test also proves ids
    // stay exact as JavaScript Numbers (a SIGKILL restart skips ahead one
    // reservation block of 10^6, still below 2^53).
    fs.writeFileSync(this.meteord.stateFile, `${FIRST_ID}\n`);
    await this.meteord.start();
    this.chat = new FcgiChat(this.dir, this.meteord);
    await this.chat.start();
    this.pages = new PageServer({ '/seed.html': seedPage(), '/api.html': API_PAGE });
    await this.pages.start();
    // data.chat.test:80 is meteord, every other *.test name is 127.0.0.1 on
    // the port in the URL: the seed snippet runs unchanged, port included.
    this.browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
        '--disable-component-update', '--disable-sync', '--disable-quic', '--no-first-run',
        `--host-resolver-rules=MAP data.${SEED_HOST}:80 127.0.0.1:${this.meteord.subPort}, MAP *.${SEED_HOST} 127.0.0.1, MAP ${SEED_HOST} 127.0.0.1`,
      ],
    });
  }

  async stop() {
    if (this.browser) await this.browser.close().catch(() => {});
    if (this.pages) await this.pages.stop();
    if (this.chat) await this.chat.stop();
    if (this.meteord) await this.meteord.stop();
    if (this.dir && !process.env.KEEP_LOGS) fs.rmSync(this.dir, { recursive: true, force: true });
  }

  /** A fresh browser context + page that records script errors. */
  async newPage(viewport = { width: 900, height: 700 }) {
    const context = await this.browser.newContext({ viewport });
    const page = await context.newPage();
    page.errors = [];
    page.on('pageerror', (e) => page.errors.push(String(e)));
    page.closeAll = () => context.close();
    return page;
  }

  /** The chat page in `mode`, with the name field filled in, connected. */
  async openChat(mode, user, extraQuery = '') {
    const page = await this.newPage();
    await page.goto(`${this.chat.url}/?mode=${mode}${extraQuery}`);
    await page.fill('#user', user);
    await waitConnected(page, mode);
    return page;
  }
}

export async function waitConnected(page, mode) {
  const want = mode === 'stream' ? 'live' : 'polling';
  await page.waitForSelector(`#status[data-state="${want}"]`, { timeout: WAIT_MS });
}

/** Type a message and press Enter; wait until the page cleared the field. */
export async function say(page, text) {
  await page.fill('#message', text);
  await page.press('#message', 'Enter');
  await page.waitForFunction(() => document.getElementById('message').value === '' ||
    !document.getElementById('error').hidden, null, { timeout: WAIT_MS });
  const err = await page.evaluate(() => {
    const e = document.getElementById('error');
    return e.hidden ? '' : e.textContent;
  });
  assert.equal(err, '', `sending ${JSON.stringify(text)} failed`);
}

/** Every message the page shows: [{id, user, time, text}]. */
export function shown(page) {
  return page.evaluate(() => Array.from(document.querySelectorAll('#messages > li')).map((li) => ({
    id: Number(li.dataset.id),
    user: li.querySelector('.user')?.textContent ?? '',
    time: li.querySelector('.time')?.textContent ?? '',
    text: li.querySelector('.text')?.textContent ?? '',
  })));
}

/** Wait until every text in `texts` is shown; returns the page's messages. */
export async function waitForTexts(page, texts) {
  await page.waitForFunction((want) => {
    const have = new Set(Array.from(document.querySelectorAll('#messages .text')).map((e) => e.textContent));
    return want.every((t) => have.has(t));
  }, texts, { timeout: WAIT_MS, polling: 100 });
  return shown(page);
}

/** Ids strictly increase down the list (so: in order, nothing twice). */
export function assertOrderedUnique(list, label) {
  for (let i = 1; i < list.length; i++) {
    assert.ok(list[i].id > list[i - 1].id,
      `${label}: id ${list[i].id} after ${list[i - 1].id} (${JSON.stringify(list[i].text)})`);
  }
}

/** Each of `texts` appears exactly once, from `user` where given. */
export function assertEachOnce(list, texts, label, user) {
  for (const t of texts) {
    const hits = list.filter((m) => m.text === t);
    assert.equal(hits.length, 1, `${label}: ${JSON.stringify(t)} shown ${hits.length} times`);
    if (user) assert.equal(hits[0].user, user, `${label}: author of ${JSON.stringify(t)}`);
    assert.match(hits[0].time, /^\d{2}:\d{2}:\d{2}$/, `${label}: time of ${JSON.stringify(t)}`);
  }
}

export function assertNoPageErrors(page, label) {
  assert.deepEqual(page.errors, [], `${label}: script errors in the page`);
}

export { sleep };
