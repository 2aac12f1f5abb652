// transports.mjs — the chat and the Meteor API over meteord's EventSource
// and WebSocket modes in Chromium's own EventSource and WebSocket (no
// polyfill): both transports directly, 'stream' picking WebSocket, the
// hand-over to the next transport when a proxy stops forwarding WebSocket
// (messages published during it arrive once each), the browser's own
// Last-Event-ID reconnect, the gap callback, and a meteord restart.
// Through real Apache and nginx: tests/deploy/run.sh.

import assert from 'node:assert/strict';
import {
  WAIT_MS, assertEachOnce, assertNoPageErrors, assertOrderedUnique, say, shown, sleep, waitForTexts,
} from './env.mjs';
import { TapProxy, publish } from './transport-support.mjs';

const NATIVE = ['websocket', 'eventsource'];

const tests = [];
const test = (name, fn) => tests.push({ name, fn });

/* The chat page with ?mode=<mode>, name filled in, live over `transport`
 * (the status line names it). */
async function openChat(env, mode, user, transport) {
  const page = await env.newPage();
  await page.goto(`${env.chat.url}/?mode=${mode}`);
  await page.fill('#user', user);
  await waitLive(page, transport);
  return page;
}

async function waitLive(page, transport) {
  await page.waitForSelector(`#status[data-state="live"][data-transport="${transport}"]`, { timeout: WAIT_MS });
}

/* api.html with meteor.js from `port`; window.got records every message
 * as [id, channel, text], window.events every other callback. */
async function apiPage(env, port, setup, arg) {
  const page = await env.newPage();
  await page.goto(`http://127.0.0.1:${env.pages.port}/api.html?base=http://127.0.0.1:${port}`);
  await page.waitForFunction(() => window.meteorLoaded === true, null, { timeout: WAIT_MS });
  await page.evaluate((p) => {
    window.got = [];
    window.events = [];
    Meteor.host = '127.0.0.1';
    Meteor.port = p;
    Meteor.registerEventCallback('process', (text, id, chan) => window.got.push([id, chan, text]));
    for (const e of ['statuschanged', 'reset', 'eof', 'changemode', 'gap']) {
      Meteor.registerEventCallback(e, (...a) => window.events.push([e, ...a, Meteor.mode]));
    }
  }, port);
  if (setup) await page.evaluate(setup, arg);
  return page;
}

/* Wait until the page has had every id of `ids`; returns window.got. */
async function waitForIds(page, ids) {
  await page.waitForFunction((want) => {
    const have = new Set(window.got.map((g) => g[0]));
    return want.every((id) => have.has(id));
  }, ids, { timeout: WAIT_MS, polling: 50 });
  return page.evaluate(() => window.got);
}

const texts = (tag, n) => Array.from({ length: n }, (_, i) => `${tag}-${i + 1}`);

for (const mode of NATIVE) {
  test(`two pages chat both ways over ${mode}, all languages, the status line names it`, async (env) => {
    const anna = await openChat(env, mode, 'Anna', mode);
    const ben = await openChat(env, mode, 'Ben 本', mode);
    try {
      const tag = `[${mode} ${Date.now()}]`;
      const de = `Grüße aus Köln! Schöne Straße – ß ${tag}`;
      const zh = `你好，世界！${tag}`;
      const ja = `こんにちは、世界。${tag}`;
      const emoji = `🎉🚀 👍🏽 👩‍💻 ❤️ ${tag}`;
      const hostile = `</script><b>"quotes" & \\back\\slash\u2028 ${tag}`;
      await say(anna, de);
      await say(ben, zh);
      await say(anna, ja);
      await say(ben, emoji);
      await say(anna, hostile);
      for (const [label, page] of [['Anna', anna], ['Ben', ben]]) {
        const list = await waitForTexts(page, [de, zh, ja, emoji, hostile]);
        assertOrderedUnique(list, label);
        assertEachOnce(list, [de, ja, hostile], label, 'Anna');
        assertEachOnce(list, [zh, emoji], label, 'Ben 本');
        assert.equal(await page.evaluate(() => Meteor.mode), mode);
        assertNoPageErrors(page, label);
      }
      const label = mode === 'websocket' ? 'WebSocket' : 'EventSource';
      assert.equal(await anna.textContent('#status-text'), `live · ${label}`);
      assert.equal(await anna.evaluate(() => document.querySelectorAll('#messages b').length), 0, 'markup rendered');
    } finally {
      await anna.closeAll();
      await ben.closeAll();
    }
  });
}

test('the chat uses WebSocket by default (stream), and Chromium speaks it to meteord', async (env) => {
  const page = await env.newPage();
  const sockets = [];
  page.on('websocket', (ws) => sockets.push(ws.url()));
  try {
    await page.goto(`${env.chat.url}/`);
    await page.fill('#user', 'Default');
    await waitLive(page, 'websocket');
    assert.equal(await page.textContent('#status-text'), 'live · WebSocket');
    const text = `default transport ${Date.now()} – 默认`;
    await say(page, text);
    assertEachOnce(await waitForTexts(page, [text]), [text], 'default', 'Default');
    assert.ok(sockets.some((u) => u.startsWith(`ws://127.0.0.1:${env.meteord.subPort}/push/`) &&
      /\/websocket\/chat\.b10\?/.test(u)), JSON.stringify(sockets));
  } finally {
    await page.closeAll();
  }
});

for (const mode of NATIVE) {
  test(`Meteor API over ${mode}: markers in the path, status 1, 4, 5, Meteor.mode`, async (env) => {
    const proxy = new TapProxy(env.meteord.subPort);
    await proxy.start();
    const page = await apiPage(env, proxy.port, (m) => {
      Meteor.hostid = `native${m}`;
      Meteor.mode = m;
      Meteor.joinChannel('apiall', 0);
      Meteor.joinChannel('apilive');
      Meteor.joinChannel('apilast', 2);
      Meteor.connect();
    }, mode);
    try {
      await page.waitForFunction(() => Meteor.status === 5, null, { timeout: WAIT_MS });
      assert.deepEqual(proxy.seen('/push/').map((r) => r.line.split(' ')[1].replace(/\?.*/, '')),
        [`/push/native${mode}/${mode}/apiall.h/apilive/apilast.b2`]);
      assert.equal(proxy.seen('/push/')[0].upgrade, mode === 'websocket');
      const ids = await publish(env.meteord.ctlPort, 'apilive', ['über', 'второй'], 0);
      const got = await waitForIds(page, ids);
      assert.deepEqual(got.filter((g) => g[1] === 'apilive'), [[ids[0], 'apilive', 'über'], [ids[1], 'apilive', 'второй']]);
      assert.equal(await page.evaluate(() => Meteor.mode), mode);
      const statuses = (await page.evaluate(() => window.events)).filter((e) => e[0] === 'statuschanged').map((e) => e[1]);
      assert.deepEqual(statuses, [1, 4, 5]);
      assertNoPageErrors(page, mode);
    } finally {
      await page.closeAll();
      await proxy.stop();
    }
  });
}

test('a proxy that stops forwarding WebSocket: stream hands over to EventSource, every message once', async (env) => {
  const proxy = new TapProxy(env.meteord.subPort);
  await proxy.start();
  const chan = `handover${Date.now()}`;
  const page = await apiPage(env, proxy.port, (c) => {
    Meteor.joinChannel(c);
    Meteor.connect();
  }, chan);
  try {
    await page.waitForFunction(() => Meteor.status === 5 && Meteor.mode === 'websocket', null, { timeout: WAIT_MS });
    // Publish a steady stream; a fifth of the way in the proxy cuts the
    // WebSocket and from then on passes no upgrade (as one configured
    // without WebSocket forwarding): the reconnect is refused, the client
    // finds meteord answering plain requests and moves to EventSource,
    // asking for what follows the last id it had.
    const all = texts(chan, 40);
    const publishing = publish(env.meteord.ctlPort, chan, all, 40);
    await sleep(8 * 40);
    proxy.allowUpgrade = false;
    assert.equal(proxy.cut(/\/websocket\//), 1, 'one websocket cut');
    const ids = await publishing;
    const got = await waitForIds(page, ids);
    assert.deepEqual(got.map((g) => g[0]), ids, 'every id once, in order');
    assert.deepEqual(got.map((g) => g[2]), all);
    assert.equal(await page.evaluate(() => Meteor.mode), 'eventsource');
    const push = proxy.seen('/push/');
    assert.ok(push.some((r) => r.upgrade && !r.forwarded), 'a refused upgrade');
    const es = push.filter((r) => r.line.includes('/eventsource/'));
    assert.ok(es.length >= 1, JSON.stringify(push));
    // The hand-over resumed by id: the EventSource asked for chan.r<next>.
    const m = new RegExp(`/eventsource/${chan}\\.r(\\d+)\\?`).exec(es[0].line);
    assert.ok(m && ids.includes(Number(m[1])) && Number(m[1]) > ids[0], es[0].line);
    const events = await page.evaluate(() => window.events);
    assert.deepEqual(events.filter((e) => e[0] === 'changemode'), [], 'no changemode("poll")');
    assertNoPageErrors(page, 'hand-over');
  } finally {
    await page.closeAll();
    await proxy.stop();
  }
});

test('websocket set by the page itself does not hand over: blocked twice, it falls back to smartpoll', async (env) => {
  const proxy = new TapProxy(env.meteord.subPort);
  proxy.allowUpgrade = false;
  await proxy.start();
  const chan = `explicit${Date.now()}`;
  const page = await apiPage(env, proxy.port, (c) => {
    Meteor.mode = 'websocket';
    Meteor.minpollfreq = 300;
    Meteor.maxpollfreq = 1000;
    Meteor.joinChannel(c, 0);
    Meteor.connect();
  }, chan);
  try {
    await page.waitForFunction(() => window.events.some((e) => e[0] === 'changemode'), null, { timeout: WAIT_MS });
    // the original's event and argument; Meteor.mode already smartpoll in it
    const events = await page.evaluate(() => window.events);
    assert.deepEqual(events.filter((e) => e[0] === 'changemode'), [['changemode', 'poll', 'smartpoll']]);
    const push = proxy.seen('/push/');
    assert.deepEqual(push.filter((r) => r.upgrade).length, 2, JSON.stringify(push));
    assert.ok(!push.some((r) => r.line.includes('/eventsource/')), 'no hand-over to eventsource');
    const ids = await publish(env.meteord.ctlPort, chan, ['nach dem Rückfall', '回退之后']);
    const got = await waitForIds(page, ids);
    assert.deepEqual(got.map((g) => g[0]), ids);
    assertNoPageErrors(page, 'explicit websocket');
  } finally {
    await page.closeAll();
    await proxy.stop();
  }
});

test('a proxy that never answers the upgrade (held 101): stream moves on within the open bound', async (env) => {
  const { BufferingProxy } = await import('./servers.mjs');
  const proxy = new BufferingProxy(env.meteord.subPort, /\/websocket\//);
  await proxy.start();
  const chan = `held${Date.now()}`;
  const before = await publish(env.meteord.ctlPort, chan, texts(`${chan}-old`, 3));
  const page = await apiPage(env, proxy.port, (c) => {
    Meteor.pingtimeout = 2000; // the open bound: min(pingtimeout, 10 s)
    Meteor.joinChannel(c, 0);
    Meteor.connect();
  }, chan);
  try {
    // Published while the client waits for a 101 that never comes: the
    // whole history (.h) and then the live ones arrive once each.
    const during = await publish(env.meteord.ctlPort, chan, texts(`${chan}-during`, 5), 100);
    const got = await waitForIds(page, [...before, ...during]);
    assert.deepEqual(got.map((g) => g[0]), [...before, ...during]);
    assert.equal(await page.evaluate(() => Meteor.mode), 'eventsource');
    assertNoPageErrors(page, 'held');
  } finally {
    await page.closeAll();
    await proxy.stop();
  }
});

test('EventSource: the browser reconnects by itself with Last-Event-ID, nothing lost or twice', async (env) => {
  const proxy = new TapProxy(env.meteord.subPort);
  await proxy.start();
  const chan = `lei${Date.now()}`;
  const page = await apiPage(env, proxy.port, (c) => {
    Meteor.mode = 'eventsource';
    Meteor.joinChannel(c);
    Meteor.joinChannel(`${c}b`);
    Meteor.connect();
  }, chan);
  try {
    await page.waitForFunction(() => Meteor.status === 5, null, { timeout: WAIT_MS });
    const a = await publish(env.meteord.ctlPort, chan, texts(`${chan}-a`, 3));
    await waitForIds(page, a);
    assert.equal(proxy.cut(/\/eventsource\//), 1);
    // While the browser re-opens: both channels of the stream get messages.
    const b = await publish(env.meteord.ctlPort, `${chan}b`, texts(`${chan}-b`, 3));
    const c = await publish(env.meteord.ctlPort, chan, texts(`${chan}-c`, 3));
    const got = await waitForIds(page, [...a, ...b, ...c]);
    assert.deepEqual(got.map((g) => g[0]), [...a, ...b, ...c]);
    const es = proxy.seen('/push/');
    assert.equal(es.length, 2, JSON.stringify(es));
    assert.equal(es[1].line, es[0].line, 'the same URL, re-opened by the browser');
    assert.equal(es[0].lastEventId, null);
    assert.equal(es[1].lastEventId, String(a[2]));
    const resets = (await page.evaluate(() => window.events)).filter((e) => e[0] === 'reset');
    assert.equal(resets.length, 1, JSON.stringify(resets));
    assertNoPageErrors(page, 'last-event-id');
  } finally {
    await page.closeAll();
    await proxy.stop();
  }
});

for (const mode of NATIVE) {
  test(`gap callback over ${mode}: a resume older than the history says so before the messages`, async (env) => {
    const chan = `gap${mode}${Date.now()}`;
    const [first] = await publish(env.meteord.ctlPort, chan, ['first']);
    const page = await apiPage(env, env.meteord.subPort, ({ m, c }) => {
      Meteor.mode = m;
      Meteor.joinChannel(c, 1);
      Meteor.connect();
    }, { m: mode, c: chan });
    try {
      await waitForIds(page, [first]);
      await page.evaluate(() => Meteor.disconnect());
      // MaxMessagesPerChannel is 250: 260 more push "first" and the next 10 out.
      const ids = await publish(env.meteord.ctlPort, chan, texts(chan, 260));
      await page.evaluate(() => { window.events = []; Meteor.connect(); });
      const kept = ids.slice(10);
      const got = await waitForIds(page, kept);
      assert.deepEqual(got.map((g) => g[0]), [first, ...kept]);
      const events = await page.evaluate(() => window.events);
      const gaps = events.filter((e) => e[0] === 'gap');
      assert.deepEqual(gaps, [['gap', chan, first + 1, kept[0], mode]]);
      assertNoPageErrors(page, 'gap');
    } finally {
      await page.closeAll();
    }
  });
}

for (const mode of NATIVE) {
  // A clean stop over one transport, a crash over the other.
  const signal = mode === 'websocket' ? 'SIGKILL' : 'SIGTERM';
  test(`meteord restart (${signal}) mid-conversation over ${mode}: nothing lost, nothing twice, the history kept`, async (env) => {
    // The suite's meteord has a HistoryFile (env.mjs): the pages reconnect
    // by themselves and get every message published after the restart
    // once, nothing from before twice, and a page opened after the restart
    // still shows the conversation from before it.
    const a = await openChat(env, mode, 'Alice', mode);
    const b = await openChat(env, mode, 'Bob', mode);
    try {
      const tag = `[restart ${mode} ${Date.now()}]`;
      const before = [`before 1 ${tag}`, `vorher 2 – Grüße ${tag}`];
      await say(a, before[0]);
      await say(b, before[1]);
      for (const p of [a, b]) await waitForTexts(p, before);
      await env.meteord.stop(signal);
      for (const p of [a, b]) {
        await p.waitForSelector('#status:not([data-state="live"])', { timeout: WAIT_MS });
      }
      await env.meteord.start();
      for (const p of [a, b]) await waitLive(p, mode);
      const after = [`after 1 ${tag}`, `nachher 2 – 再见 ${tag}`, `after 3 🎈 ${tag}`];
      await say(b, after[0]);
      await say(a, after[1]);
      await say(b, after[2]);
      for (const [label, p] of [['Alice', a], ['Bob', b]]) {
        const list = await waitForTexts(p, [...before, ...after]);
        assertEachOnce(list, [...before, ...after], label);
        assertOrderedUnique(list, label);
        assertNoPageErrors(p, label);
      }
      await sleep(2000);
      for (const [label, p] of [['Alice', a], ['Bob', b]]) assertOrderedUnique(await shown(p), `${label} later`);
      const c = await openChat(env, mode, 'Carol', mode);
      try {
        const list = await waitForTexts(c, [...before, ...after]);
        assertEachOnce(list, [...before, ...after], 'Carol, after the restart');
        assertOrderedUnique(list, 'Carol');
      } finally {
        await c.closeAll();
      }
    } finally {
      await a.closeAll();
      await b.closeAll();
      if (!env.meteord.child) await env.meteord.start();
    }
  });
}

export default tests;
