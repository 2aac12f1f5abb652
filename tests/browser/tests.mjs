// tests.mjs — the browser test cases. Each is {name, fn(env)}; run.mjs runs
// them in order against one shared environment (channel "chat" keeps its
// history between tests, so every test uses texts of its own).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import apiTests from './api-tests.mjs';
import tokenTests from './tokens.mjs';
import transportTests from './transports.mjs';
import { BufferingProxy } from './servers.mjs';
import {
  FIRST_ID, SEED_HOST, WAIT_MS, assertEachOnce, assertNoPageErrors, assertOrderedUnique,
  say, shown, sleep, waitConnected, waitForTexts,
} from './env.mjs';

const MODES = ['stream', 'longpoll', 'smartpoll', 'simplepoll'];

/* Greetings in the languages the seed article promises, plus emoji. */
function greetings(tag) {
  return {
    de: `Grüße aus Köln! Schöne Straße, süße Äpfel – ß ${tag}`,
    fr: `Ça va ? Où est l'hôtel « Le Cœur » à Besançon… ${tag}`,
    zh: `你好，世界！今天天气很好。${tag}`,
    ja: `こんにちは、世界。日本語のテキストです。${tag}`,
    emoji: `🎉🚀 👍🏽 👩‍💻 ❤️ ${tag}`,
  };
}

/* Smart polls in tests: fast enough to keep the suite short. */
const POLL_QUERY = '&minpollfreq=500&maxpollfreq=2000';

const tests = [];
const test = (name, fn) => tests.push({ name, fn });

test('public/meteor.js is assembled from public/src (build.mjs --check)', async () => {
  // The suite tests the served file; this says it is the sources' file.
  const build = fileURLToPath(new URL('../../public/build.mjs', import.meta.url));
  const r = spawnSync(process.execPath, [build, '--check'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
});

test('meteord serves meteor.js and stream.html', async (env) => {
  const js = await fetch(`${env.meteord.url}/meteor.js`);
  assert.equal(js.status, 200);
  assert.match(js.headers.get('content-type') ?? '', /javascript/);
  assert.match(await js.text(), /registerEventCallback/);
  const html = await fetch(`${env.meteord.url}/stream.html`);
  assert.equal(html.status, 200);
  assert.match(await html.text(), /data-meteor-frame/);
});

for (const mode of MODES) {
  test(`two pages chat both ways, all languages (${mode})`, async (env) => {
    const q = mode.endsWith('poll') ? POLL_QUERY : '';
    const anna = await env.openChat(mode, 'Anna', q);
    const ben = await env.openChat(mode, 'Ben 本', q);
    try {
      const g = greetings(`[${mode}]`);
      await say(anna, g.de);
      await say(ben, g.zh);
      await say(anna, g.fr);
      await say(ben, g.ja);
      await say(ben, g.emoji);
      for (const [label, page] of [['Anna', anna], ['Ben', ben]]) {
        const list = await waitForTexts(page, Object.values(g));
        assertOrderedUnique(list, label);
        assertEachOnce(list, [g.de, g.fr], label, 'Anna');
        assertEachOnce(list, [g.zh, g.ja, g.emoji], label, 'Ben 本');
        assertNoPageErrors(page, label);
      }
      const status = await anna.textContent('#status');
      assert.match(status, mode === 'stream' ? /live/ : /polling/);
    } finally {
      await anna.closeAll();
      await ben.closeAll();
    }
  });
}

test('stream over the classic forever-iframe transport', async (env) => {
  const page = await env.openChat('stream', 'Iris', '&transport=iframe');
  try {
    const text = 'iframe transport: Grüß Gott, 世界 🌍';
    const { status } = await env.chat.post('Poster', text);
    assert.equal(status, 200);
    const list = await waitForTexts(page, [text]);
    assertEachOnce(list, [text], 'iframe', 'Poster');
    assertOrderedUnique(list, 'iframe');
    // the /push iframe really is in use (inside the stream.html frame)
    assert.ok(page.frames().some((f) => f.url().includes('/iframe/chat')), 'no /push/…/iframe/ frame');
  } finally {
    await page.closeAll();
  }
});

test('a fresh page and a reload show exactly the last 10 messages', async (env) => {
  const tag = `reload-${Date.now()}`;
  const texts = [];
  const ids = [];
  for (let i = 1; i <= 12; i++) {
    texts.push(`${tag} message ${i}`);
    const { status, json } = await env.chat.post('Rita', texts[i - 1]);
    assert.equal(status, 200, JSON.stringify(json));
    assert.equal(json.ok, true);
    ids.push(json.id);
  }
  const last10 = texts.slice(2);
  const page = await env.openChat('stream', 'Rita');
  try {
    for (let round = 0; round < 2; round++) {
      const list = await waitForTexts(page, last10);
      assert.deepEqual(list.map((m) => m.text), last10, `round ${round}: shown messages`);
      // ids near 2^53 arrive exactly (the page's data-id vs fcgi-chat's answer)
      assert.deepEqual(list.map((m) => m.id), ids.slice(2), `round ${round}: message ids`);
      assert.ok(ids[0] >= FIRST_ID && ids[11] < 2 ** 53, `ids ${ids[0]}..${ids[11]} near 2^53`);
      assertOrderedUnique(list, `round ${round}`);
      if (round === 0) {
        await page.reload();
        await waitConnected(page, 'stream');
      }
    }
    assertNoPageErrors(page, 'reload');
  } finally {
    await page.closeAll();
  }
});

test('hostile messages show as text and run nothing', async (env) => {
  const hostile = [
    '<img src=x onerror="window.__pwned=1;parent.__pwned=1">',
    '</script><script>window.__pwned=2</script>',
    '"); window.__pwned=3; ("',
    "'; window.__pwned=4; '",
    'back\\slash \\" \\\' \\u0041 \\n end\\',
    '<b>not bold</b> &amp; &#233; &lt;',
    '~id~ ~text~ ~~',
  ];
  const viewer = await env.openChat('stream', 'Viewer');
  const poller = await env.openChat('longpoll', 'Poller', POLL_QUERY);
  try {
    for (const h of hostile) await say(viewer, h);
    const evil = await env.chat.post('<i onmouseover=alert(1)>Mallory</i>', '</strong><img src=y onerror=window.__pwned=5>');
    assert.equal(evil.status, 200);
    for (const [label, page] of [['stream', viewer], ['longpoll', poller]]) {
      const list = await waitForTexts(page, [...hostile, '</strong><img src=y onerror=window.__pwned=5>']);
      assertEachOnce(list, hostile, label, 'Viewer');
      assertEachOnce(list, ['</strong><img src=y onerror=window.__pwned=5>'], label,
        '<i onmouseover=alert(1)>Mallory</i>');
      assertOrderedUnique(list, label);
      await sleep(300); // give a would-be onerror handler time to fire
      for (const frame of page.frames()) {
        const pwned = await frame.evaluate(() => window.__pwned).catch(() => undefined);
        assert.equal(pwned, undefined, `${label}: script ran in ${frame.url()}`);
      }
      const elements = await page.$$eval('#messages *', (els) =>
        [...new Set(els.map((e) => e.tagName.toLowerCase()))].sort());
      assert.deepEqual(elements, ['div', 'li', 'span', 'time'], `${label}: element types in the log`);
      assertNoPageErrors(page, label);
    }
  } finally {
    await viewer.closeAll();
    await poller.closeAll();
  }
});

test('an empty message is not sent; a failing post shows the reason', async (env) => {
  const page = await env.openChat('stream', 'Quiet');
  try {
    let posts = 0;
    page.on('request', (r) => { if (r.method() === 'POST') posts++; });
    await page.fill('#message', '   ');
    await page.press('#message', 'Enter');
    await sleep(300);
    assert.equal(posts, 0, 'an empty message was posted');
    // A message over fcgi-chat's --max-message limit is refused with a reason.
    await page.evaluate(() => { document.getElementById('message').removeAttribute('maxlength'); });
    await page.fill('#message', 'x'.repeat(5000));
    await page.press('#message', 'Enter');
    await page.waitForSelector('#error:not([hidden])', { timeout: WAIT_MS });
    const err = await page.textContent('#error');
    assert.match(err, /^Not sent: \S/, 'error shown to the user');
    assert.equal(await page.inputValue('#message'), 'x'.repeat(5000), 'the text stays for another try');
  } finally {
    await page.closeAll();
  }
});

for (const [mode, signal] of [['stream', 'SIGTERM'], ['longpoll', 'SIGKILL']]) {
  test(`meteord restart (${signal}) mid-conversation: nothing lost, nothing twice (${mode})`, async (env) => {
    const q = mode === 'stream' ? '' : POLL_QUERY;
    const a = await env.openChat(mode, 'Alice', q);
    const b = await env.openChat(mode, 'Bob', q);
    try {
      const tag = `[${signal} ${Date.now()}]`;
      const before = [`before 1 ${tag}`, `before 2 ${tag}`, `vorher 3 – Grüße ${tag}`];
      await say(a, before[0]);
      await say(b, before[1]);
      await say(a, before[2]);
      for (const p of [a, b]) await waitForTexts(p, before);

      await env.meteord.stop(signal);
      // While meteord is down a post fails visibly, and nothing else breaks.
      await a.fill('#message', `while down ${tag}`);
      await a.press('#message', 'Enter');
      await a.waitForSelector('#error:not([hidden])', { timeout: WAIT_MS });
      await a.waitForSelector('#status:not([data-state="live"]):not([data-state="polling"])', { timeout: WAIT_MS });
      await env.meteord.start();
      for (const p of [a, b]) await waitConnected(p, mode);

      const after = [`after 1 ${tag}`, `nachher 2 – 再见 ${tag}`, `after 3 🎈 ${tag}`];
      await say(b, after[0]);
      await say(a, after[1]);
      await say(b, after[2]);
      for (const [label, p] of [['Alice', a], ['Bob', b]]) {
        const list = await waitForTexts(p, [...before, ...after]);
        assertEachOnce(list, [...before, ...after], label);
        assertOrderedUnique(list, label);
        assert.equal(list.filter((m) => m.text === `while down ${tag}`).length, 0, `${label}: phantom message`);
        assertNoPageErrors(p, label);
      }
      // Let a few more pings/polls pass: still nothing twice.
      await sleep(2500);
      for (const [label, p] of [['Alice', a], ['Bob', b]]) assertOrderedUnique(await shown(p), `${label} later`);
    } finally {
      await a.closeAll();
      await b.closeAll();
    }
  });
}

/* Open api.html with meteor.js from meteord and run `setup` in the page. */
async function apiPage(env, setup, arg) {
  const page = await env.newPage();
  await page.goto(`http://127.0.0.1:${env.pages.port}/api.html?base=${env.meteord.url}`);
  await page.waitForFunction(() => window.meteorLoaded === true, null, { timeout: WAIT_MS });
  await page.evaluate(({ port }) => {
    window.events = [];
    Meteor.host = '127.0.0.1';
    Meteor.port = port;
    for (const e of ['statuschanged', 'reset', 'eof', 'changemode']) {
      Meteor.registerEventCallback(e, (x) => window.events.push([e, x]));
    }
  }, { port: env.meteord.subPort });
  if (setup) await page.evaluate(setup, arg);
  return page;
}

const events = (page, kind) => page.evaluate((k) => window.events.filter((e) => e[0] === k), kind);

test('a chat page opened while meteord is down comes up by itself', async (env) => {
  await env.meteord.stop();
  const page = await env.newPage();
  try {
    await page.goto(`${env.chat.url}/?mode=stream`);
    await page.waitForSelector('#status[data-state="offline"]', { timeout: WAIT_MS });
    await env.meteord.start();
    await waitConnected(page, 'stream');
    await page.fill('#user', 'Late');
    const text = `late but live ${Date.now()}`;
    await say(page, text);
    assertEachOnce(await waitForTexts(page, [text]), [text], 'late', 'Late');
  } finally {
    await page.closeAll();
    if (!env.meteord.child) await env.meteord.start();
  }
});

test('Meteor API: status codes, generated hostid, callbacks in order, leave, disconnect', async (env) => {
  const page = await apiPage(env, () => {
    Meteor.registerEventCallback('process', (text, id, chan) => window.events.push(['first', id, chan, text]));
    Meteor.registerEventCallback('process', (text, id) => window.events.push(['second', id]));
    Meteor.joinChannel('chat'); // no backtrack: live only (0 would be .h, the whole history)
    Meteor.connect();
  });
  try {
    await page.waitForFunction(() => Meteor.status === 5, null, { timeout: WAIT_MS });
    const statuses = (await events(page, 'statuschanged')).map((e) => e[1]);
    // the original's: 1 in connect(), 4 once the stream frame is there, 5 on data
    assert.deepEqual(statuses, [1, 4, 5], 'status sequence of a first connect');
    // the original's shape: the time in ms, then up to 6 random digits
    assert.match(await page.evaluate(() => Meteor.hostid), /^\d{13}\d{1,6}$/);
    const { json } = await env.chat.post('Api', 'callbacks in order');
    await page.waitForFunction(() => window.events.some((e) => e[0] === 'second'), null, { timeout: WAIT_MS });
    const got = await page.evaluate(() => window.events.filter((e) => e[0] === 'first' || e[0] === 'second'));
    assert.equal(got.length, 2, JSON.stringify(got));
    assert.deepEqual(got[0].slice(0, 3), ['first', json.id, 'chat']);
    assert.match(got[0][3], /^<strong>Api \d\d:\d\d:\d\d<\/strong> callbacks in order$/);
    assert.deepEqual(got[1], ['second', json.id]);

    // leaveChannel: nothing more from "chat"
    await page.evaluate(() => { Meteor.joinChannel('other'); Meteor.leaveChannel('chat'); });
    await sleep(1000);
    await env.chat.post('Api', 'after leaving');
    await sleep(1500);
    assert.equal((await events(page, 'first')).length, 1, 'message after leaveChannel');

    await page.evaluate(() => Meteor.disconnect());
    assert.equal(await page.evaluate(() => Meteor.status), 0);
    assert.equal(await page.evaluate(() => document.querySelectorAll('iframe').length), 0, 'frame removed');
    assertNoPageErrors(page, 'api');
  } finally {
    await page.closeAll();
  }
});

test('a newer connection with the same hostid ends the older one (eof, status 6, no reconnect)', async (env) => {
  const setup = () => {
    Meteor.hostid = 'samehost42';
    Meteor.joinChannel('chat');
    Meteor.connect();
  };
  const first = await apiPage(env, setup);
  const second = await env.newPage();
  try {
    await first.waitForFunction(() => Meteor.status === 5, null, { timeout: WAIT_MS });
    await second.goto(`http://127.0.0.1:${env.pages.port}/api.html?base=${env.meteord.url}`);
    await second.waitForFunction(() => window.meteorLoaded === true, null, { timeout: WAIT_MS });
    await second.evaluate((port) => { Meteor.host = '127.0.0.1'; Meteor.port = port; }, env.meteord.subPort);
    await second.evaluate(setup);
    await first.waitForFunction(() => Meteor.status === 6, null, { timeout: WAIT_MS });
    assert.equal((await events(first, 'eof')).length, 1, 'one eof callback');
    await sleep(3000); // the old page must not come back and kick the new one
    assert.equal(await first.evaluate(() => Meteor.status), 6);
    assert.equal(await second.evaluate(() => Meteor.status), 5);
  } finally {
    await first.closeAll();
    await second.closeAll();
  }
});

test('the frame parses template output without evaluating it', async (env) => {
  const page = await apiPage(env, () => { Meteor.joinChannel('chat'); Meteor.connect(); });
  try {
    await page.waitForFunction(() => Meteor.status === 5, null, { timeout: WAIT_MS });
    const frame = page.frames().find((f) => f.url().includes('/stream.html'));
    assert.ok(frame, 'stream.html frame');
    const r = await frame.evaluate(() => {
      const P = window.Meteor.parseCalls;
      return {
        big: P('p(9007199254740991,"chat","x");'),
        esc: P(String.raw`p(1,"c","a\"b\\c\u00e9\x41\n'");`),
        single: P(String.raw`p(2,'c','it\'s');`),
        poll: P('Meteor.process(5,"chat","t");\r\nMeteor.process(-1);\r\nMeteor.clearpoll();\r\n'),
        info: P('Meteor.channelInfo("chat", 7);\r\n'),
        junk: P('alert(document.cookie) + 1; p(3,"c",x); p(4,"c","unterminated'),
      };
    });
    assert.deepEqual(r.big, [{ fn: 'p', args: [9007199254740991, 'chat', 'x'] }]);
    assert.deepEqual(r.esc, [{ fn: 'p', args: [1, 'c', 'a"b\\céA\n\''] }]);
    assert.deepEqual(r.single, [{ fn: 'p', args: [2, 'c', "it's"] }]);
    assert.deepEqual(r.poll, [
      { fn: 'process', args: [5, 'chat', 't'] },
      { fn: 'process', args: [-1] },
      { fn: 'clearpoll', args: [] },
    ]);
    assert.deepEqual(r.info, [{ fn: 'channelInfo', args: ['chat', 7] }]);
    // alert(document.cookie) has a non-literal argument: skipped, never run
    assert.deepEqual(r.junk, []);
  } finally {
    await page.closeAll();
  }
});

test('stream falls back to smartpoll when pings stop arriving (buffering proxy)', async (env) => {
  // Every stream held: websocket and eventsource never open, xhrinteractive
  // stays silent twice; then smartpoll.
  const proxy = new BufferingProxy(env.meteord.subPort, /\/(?:websocket|eventsource|xhrinteractive)\//);
  await proxy.start();
  const page = await env.newPage();
  try {
    await page.goto(`http://127.0.0.1:${env.pages.port}/api.html?base=http://127.0.0.1:${proxy.port}`);
    await page.waitForFunction(() => window.meteorLoaded === true, null, { timeout: WAIT_MS });
    await page.evaluate((port) => {
      window.events = [];
      Meteor.host = '127.0.0.1';
      Meteor.port = port;
      Meteor.pingtimeout = 1500;
      Meteor.minpollfreq = 300;
      Meteor.maxpollfreq = 1000;
      Meteor.registerEventCallback('changemode', (m) => window.events.push(['mode', m]));
      Meteor.registerEventCallback('process', (text, id, chan) => window.events.push(['msg', text, id, chan]));
      Meteor.registerEventCallback('process', (text, id) => window.events.push(['second callback', id]));
      Meteor.joinChannel('chat');
      Meteor.mode = 'stream';
      Meteor.connect();
    }, proxy.port);
    await page.waitForFunction(() => window.events.some((e) => e[0] === 'mode'), null, { timeout: WAIT_MS });
    assert.equal(await page.evaluate(() => Meteor.mode), 'smartpoll');
    await page.waitForFunction(() => Meteor.status === 5, null, { timeout: WAIT_MS });
    await sleep(1500); // a couple of polls: the position is known, nothing old is delivered
    const text = `after the fallback ${Date.now()}`;
    const { json } = await env.chat.post('Polly', text);
    await page.waitForFunction((t) => window.events.some((e) => e[0] === 'msg' && e[1].endsWith(t)), text,
      { timeout: WAIT_MS });
    await sleep(1500);
    const events = await page.evaluate(() => window.events);
    assert.deepEqual(events.map((e) => e[0]), ['mode', 'msg', 'second callback'], JSON.stringify(events));
    assert.deepEqual(events[1].slice(2), [json.id, 'chat']);
    assert.equal(events[2][1], json.id);
    assertNoPageErrors(page, 'fallback');
  } finally {
    await page.closeAll();
    await proxy.stop();
  }
});

test("the seed article's snippet, verbatim, works with our meteor.js", async (env) => {
  const page = await env.newPage();
  try {
    const tag = `seed-${Date.now()}`;
    const first = `${tag}: first, before the page (backtrack)`;
    assert.equal((await env.chat.post('Seed', first)).status, 200);
    await page.goto(`http://${SEED_HOST}:${env.pages.port}/seed.html`);
    await page.waitForFunction(() => window.Meteor && window.Meteor.status === 5, null, { timeout: WAIT_MS });
    const second = `${tag}: second, live – ça marche 🎉`;
    assert.equal((await env.chat.post('Seed', second)).status, 200);
    await page.waitForFunction((t) => Array.from(document.querySelectorAll('#chat li'))
      .some((li) => li.textContent.includes(t)), second.split(' – ')[0], { timeout: WAIT_MS });
    const items = await page.$$eval('#chat li', (lis) => lis.map((li) => li.textContent));
    // addMsg gets the raw message text: fcgi-chat's <strong>…</strong> markup
    // with numeric character references, as the original chat.php sent it.
    assert.equal(items.filter((t) => t.includes(first)).length, 1, 'backtracked message once');
    const live = items.filter((t) => t.includes(`${tag}: second, live`));
    assert.equal(live.length, 1, 'live message once');
    assert.match(live[0], /^<strong>Seed \d{2}:\d{2}:\d{2}<\/strong> /);
    // connect() resolved 'stream' to the transport, as the original does
    // (the best one this browser has: WebSocket)
    assert.equal(await page.evaluate(() => [Meteor.hostid, Meteor.host, Meteor.mode].join(' ')),
      `1234567 data.${SEED_HOST} websocket`);
    assertNoPageErrors(page, 'seed');
  } finally {
    await page.closeAll();
  }
});

export default [...tests, ...apiTests, ...tokenTests, ...transportTests];
