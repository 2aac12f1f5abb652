// End-to-end chat check through a real front server (Apache or nginx):
// two headless Chromium pages load the chat page from the www vhost, stream
// through the data vhost (meteord behind the proxy), post through the
// FastCGI responder, and must see each other's messages. Prints the time
// from pressing Enter on one page to the message showing on the other.
//
// Usage: node chat-e2e.js <label> <chat page url>
// Exit status 0 = both directions worked; the last line is a summary.
'use strict';

const path = require('path');
const { chromium } = require(path.join(__dirname, '..', 'browser', 'node_modules', 'playwright-core'));

// Bound on every wait: page load, first message, live message.
const STEP_TIMEOUT_MS = 20000;
// A live message must be on the other page within this (includes the POST
// through the responder, so it is a little more than the stream's share).
const LIVE_LIMIT_MS = 1000;

const [label, url] = process.argv.slice(2);
if (!label || !url) {
  console.error('usage: node chat-e2e.js <label> <url>');
  process.exit(2);
}

const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--disable-quic', '--no-first-run',
  // www.chat.test and data.chat.test both reach the proxy on loopback.
  '--host-resolver-rules=MAP *.test 127.0.0.1',
];

function nonce() {
  return Math.random().toString(36).slice(2, 10);
}

async function openChat(browser, name) {
  // One context per page: separate storage, so each gets its own hostid.
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on('pageerror', (e) => console.log(`[${label}/${name}] page error: ${e.message}`));
  page.on('response', (r) => {
    if (r.status() >= 400) console.log(`[${label}/${name}] HTTP ${r.status()} for ${r.url()}`);
  });
  page.on('console', (m) => {
    if (m.type() === 'error') console.log(`[${label}/${name}] console error: ${m.text()}`);
  });
  await page.goto(url, { waitUntil: 'load', timeout: STEP_TIMEOUT_MS });
  await page.fill('#user', name, { timeout: STEP_TIMEOUT_MS });
  return page;
}

async function send(page, text) {
  await page.fill('#message', text, { timeout: STEP_TIMEOUT_MS });
  await page.press('#message', 'Enter');
}

async function waitForText(page, text, timeout) {
  await page.waitForFunction((t) => document.body.innerText.includes(t), text, {
    timeout,
    polling: 10,
  });
}

async function main() {
  // playwright-core's launch() creates (and removes) a fresh user-data-dir.
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: CHROMIUM_ARGS,
    timeout: STEP_TIMEOUT_MS,
  });
  let ok = false;
  try {
    const alice = await openChat(browser, 'Alice');
    const bob = await openChat(browser, 'Bob');

    // First message: Bob may still be connecting; he gets it from the
    // channel history (the page joins with backtrack 10) or live.
    const first = `hello-from-Alice ${nonce()} Grüße, café, 你好, こんにちは`;
    await send(alice, first);
    await waitForText(bob, first, STEP_TIMEOUT_MS);
    await waitForText(alice, first, STEP_TIMEOUT_MS);
    console.log(`[${label}] Bob saw Alice's message`);

    // Both streams are established now: Bob's answer must arrive live.
    const reply = `hello-from-Bob ${nonce()} <b>not bold</b> & "quotes"`;
    const t0 = Date.now();
    await send(bob, reply);
    await waitForText(alice, reply, STEP_TIMEOUT_MS);
    const liveMs = Date.now() - t0;
    console.log(`[${label}] Alice saw Bob's message ${liveMs} ms after he pressed Enter`);
    const bold = await alice.evaluate(() => document.querySelectorAll('b').length);
    if (bold !== 0) {
      console.log(`[${label}] FAIL: message markup was rendered as HTML (${bold} <b> elements)`);
    } else if (liveMs >= LIVE_LIMIT_MS) {
      console.log(`[${label}] FAIL: live message took ${liveMs} ms (limit ${LIVE_LIMIT_MS} ms)`);
    } else {
      ok = true;
    }
    console.log(`browser-latency-ms ${liveMs}`);
  } finally {
    await browser.close();
  }
  return ok;
}

main().then(
  (ok) => {
    console.log(`[${label}] ${ok ? 'PASS' : 'FAIL'}`);
    process.exit(ok ? 0 : 1);
  },
  (err) => {
    console.log(`[${label}] FAIL: ${err && err.message ? err.message.split('\n')[0] : err}`);
    process.exit(1);
  },
);
