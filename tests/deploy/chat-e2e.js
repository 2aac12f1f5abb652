// End-to-end chat check through a real front server (Apache or nginx):
// two headless Chromium pages load the chat page from the www vhost, stream
// through the data vhost (meteord behind the proxy), post through the
// FastCGI responder, and must see each other's messages. Prints the time
// from pressing Enter on one page to the message showing on the other.
//
// With <transport>, both pages must be live over it (the status line's
// data-transport: Meteor.mode after connect), and a burst of messages
// posted while the first page is still connecting (falling back, where a
// proxy blocks a transport) must show on it each exactly once, in order.
//
// Usage: node chat-e2e.js <label> <chat page url> [<transport>]
// Exit status 0 = both directions worked; the last line is a summary.
'use strict';

const path = require('path');
const { chromium } = require(path.join(__dirname, '..', 'browser', 'node_modules', 'playwright-core'));

// Bound on every wait: page load, first message, live message.
const STEP_TIMEOUT_MS = 20000;
// A live message must be on the other page within this (includes the POST
// through the responder, so it is a little more than the stream's share).
const LIVE_LIMIT_MS = 1000;

const [label, url, transport] = process.argv.slice(2);
// Messages in the burst posted while the first page connects.
const BURST = 5;
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

/* Post from inside the page (same origin as chat.php), as the page does. */
async function postFrom(page, user, message) {
  return page.evaluate(async ({ u, m }) => {
    const res = await fetch('chat.php', {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded;charset=UTF-8' },
      body: new URLSearchParams({ user: u, message: m }).toString(),
    });
    return res.status;
  }, { u: user, m: message });
}

/* Wait until the page is live over `want`; returns what it says. */
async function waitTransport(page, who, want) {
  await page.waitForSelector(`#status[data-state="live"][data-transport="${want}"]`, { timeout: STEP_TIMEOUT_MS })
    .catch(async (e) => {
      const st = await page.evaluate(() => [document.getElementById('status').dataset.state,
        document.getElementById('status').dataset.transport]);
      throw new Error(`${who} is not live over ${want}: state/transport ${st.join('/')} (${e.message.split('\n')[0]})`);
    });
  console.log(`[${label}] ${who}: ${await page.textContent('#status-text')}`);
}

/* The burst's texts each once on the page, in the order of their ids. */
async function checkBurst(page, who, burst) {
  await page.waitForFunction((want) => {
    const have = Array.from(document.querySelectorAll('#messages .text')).map((e) => e.textContent);
    return want.every((t) => have.includes(t));
  }, burst, { timeout: STEP_TIMEOUT_MS, polling: 50 });
  const seen = await page.evaluate((want) => Array.from(document.querySelectorAll('#messages > li'))
    .map((li) => [Number(li.dataset.id), li.querySelector('.text').textContent])
    .filter((m) => want.includes(m[1])), burst);
  const texts = seen.map((m) => m[1]);
  const ids = seen.map((m) => m[0]);
  const ordered = ids.every((id, i) => i === 0 || id > ids[i - 1]);
  if (JSON.stringify(texts) !== JSON.stringify(burst) || !ordered) {
    throw new Error(`${who}: burst shown as ${JSON.stringify(seen)}`);
  }
  console.log(`[${label}] ${who} got the ${burst.length} messages posted while connecting, each once, in order`);
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
    let burst = [];
    if (transport) {
      // Posted while Alice's page connects (and, behind a proxy that blocks
      // a transport, falls back): she must get them from the history or
      // live, each once, whatever her client went through.
      const tag = nonce();
      burst = Array.from({ length: BURST }, (_, i) => `burst ${tag} ${i + 1} – ${transport}`);
      for (const m of burst) {
        const status = await postFrom(alice, 'Burst', m);
        if (status !== 200) throw new Error(`burst post answered ${status}`);
      }
    }
    const bob = await openChat(browser, 'Bob');
    if (transport) {
      await waitTransport(alice, 'Alice', transport);
      await waitTransport(bob, 'Bob', transport);
      await checkBurst(alice, 'Alice', burst);
    }

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
