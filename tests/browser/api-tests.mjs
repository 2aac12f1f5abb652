// api-tests.mjs — the original meteor.js API as a page sees it: property
// defaults, Meteor.mode values, the request paths that reach meteord, the
// changemode event, pollhost, the throws of joinChannel/leaveChannel/connect
// and the poll rate rules. Every request is checked where meteord sees it,
// through a recording proxy (servers.mjs BufferingProxy, pattern null).

import assert from 'node:assert/strict';
import { BufferingProxy } from './servers.mjs';
import { WAIT_MS, assertNoPageErrors, sleep } from './env.mjs';

/* A host name that reaches 127.0.0.1 on the port in the URL (env.mjs maps
 * *.chat.test there), to tell pollhost requests from host requests. */
const POLL_HOST = 'poll.chat.test';

const tests = [];
const test = (name, fn) => tests.push({ name, fn });

/* api.html with meteor.js from `port` on 127.0.0.1; Meteor.host/port point
 * there and window.events records every event as [name, argument, mode]. */
async function apiPageAt(env, port, setup, arg, initScript) {
  const page = await env.newPage();
  if (initScript) await page.addInitScript(initScript);
  await page.goto(`http://127.0.0.1:${env.pages.port}/api.html?base=http://127.0.0.1:${port}`);
  await page.waitForFunction(() => window.meteorLoaded === true, null, { timeout: WAIT_MS });
  await page.evaluate((p) => {
    window.events = [];
    Meteor.host = '127.0.0.1';
    Meteor.port = p;
    for (const e of ['process', 'statuschanged', 'reset', 'eof', 'changemode']) {
      Meteor.registerEventCallback(e, (x) => window.events.push([e, x, Meteor.mode]));
    }
  }, port);
  if (setup) await page.evaluate(setup, arg);
  return page;
}

async function withProxy(env, pattern, fn) {
  const proxy = new BufferingProxy(env.meteord.subPort, pattern);
  await proxy.start();
  try { return await fn(proxy); } finally { await proxy.stop(); }
}

const eventsOf = (page, kind) => page.evaluate((k) => window.events.filter((e) => e[0] === k), kind);

/* The mode segment of /push/<hostid>/<mode>/<channels>. */
const modeOf = (r) => r.line.split(' ')[1].split('/')[3];

async function waitUntil(cond, what) {
  const deadline = Date.now() + WAIT_MS;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

async function waitForText(page, text) {
  await page.waitForFunction((t) => window.events.some((e) => e[0] === 'process' && String(e[1]).endsWith(t)),
    text, { timeout: WAIT_MS, polling: 100 });
}

test('Meteor API: the original defaults, callbacks and functions before connect()', async (env) => {
  const page = await apiPageAt(env, env.meteord.subPort);
  try {
    const r = await page.evaluate(() => {
      const M = window.Meteor;
      const keys = ['mode', 'host', 'hostid', 'port', 'pollhost', 'pollfreq', 'minpollfreq', 'maxpollfreq',
        'pingtimeout', 'polltimeout', 'status', 'channelcount', 'debugmode', 'frameref'];
      const fns = ['isSupportedBrowser', 'register', 'joinChannel', 'leaveChannel', 'connect', 'disconnect',
        'selectStreamTransport', 'process', 'reset', 'eof', 'channelInfo', 'registerEventCallback',
        'setstatus', 'log', 'clearpoll', 'time'];
      return {
        values: Object.fromEntries(keys.map((k) => [k, M[k]])),
        channels: JSON.stringify(M.channels),
        callbacks: Object.keys(M.callbacks).map((k) => `${k}:${typeof M.callbacks[k]}`),
        missing: fns.filter((f) => typeof M[f] !== 'function'),
        transport: M.selectStreamTransport(),
        supported: M.isSupportedBrowser(),
      };
    });
    // Meteor.host/port were set by apiPageAt; the rest is untouched.
    assert.deepEqual(r.values, {
      mode: 'stream', host: '127.0.0.1', hostid: null, port: env.meteord.subPort, pollhost: null,
      pollfreq: 3000, minpollfreq: 2000, maxpollfreq: 60000, pingtimeout: 20000, polltimeout: 30000,
      status: 0, channelcount: 0, debugmode: false, frameref: null,
    });
    assert.equal(r.channels, '{}');
    assert.deepEqual(r.callbacks, ['process:function', 'reset:function', 'eof:function',
      'statuschanged:function', 'changemode:function']);
    assert.deepEqual(r.missing, []);
    assert.equal(r.transport, 'websocket');
    assert.equal(r.supported, true);
    const fresh = await env.newPage();
    await fresh.goto(`http://127.0.0.1:${env.pages.port}/api.html?base=${env.meteord.url}`);
    await fresh.waitForFunction(() => window.meteorLoaded === true, null, { timeout: WAIT_MS });
    assert.deepEqual(await fresh.evaluate(() => [Meteor.host, Meteor.port]), [null, 80]);
    await fresh.closeAll();
  } finally {
    await page.closeAll();
  }
});

test('Meteor API: joinChannel, leaveChannel and connect throw and behave as the original', async (env) => {
  await withProxy(env, null, async (proxy) => {
    const page = await apiPageAt(env, proxy.port);
    try {
      const r = await page.evaluate(() => {
        const thrown = (f) => { try { f(); return null; } catch (e) { return e; } };
        const out = {};
        out.noChannels = thrown(() => Meteor.connect());
        out.empty = thrown(() => Meteor.joinChannel(''));
        Meteor.joinChannel('apiall', 0);
        Meteor.joinChannel('apilive');
        Meteor.joinChannel('apilast', 2);
        out.twice = thrown(() => Meteor.joinChannel('apilive', 5));
        out.leaveUnknown = thrown(() => Meteor.leaveChannel('nope'));
        out.leaveEmpty = thrown(() => Meteor.leaveChannel(''));
        Meteor.port = 'x';
        out.badPort = thrown(() => Meteor.connect());
        out.channels = JSON.stringify(Meteor.channels);
        out.count = Meteor.channelcount;
        // joining while not connected does not connect
        out.statusAfterJoins = Meteor.status;
        out.frames = document.querySelectorAll('iframe').length;
        return out;
      });
      assert.deepEqual(r, {
        noChannels: 'No channels specified',
        empty: 'No channel specified',
        twice: 'Cannot join channel apilive: already subscribed',
        leaveUnknown: 'Cannot leave channel nope: not subscribed',
        leaveEmpty: 'No channel specified',
        badPort: 'Meteor port not specified',
        channels: '{"apiall":{"backtrack":0},"apilive":{},"apilast":{"backtrack":2}}',
        count: 3,
        statusAfterJoins: 0,
        frames: 0,
      });
      await page.evaluate((p) => { Meteor.port = p; Meteor.hostid = 'apimarkers1'; Meteor.connect(); }, proxy.port);
      await page.waitForFunction(() => Meteor.status === 5, null, { timeout: WAIT_MS });
      // backtrack 0 asks for the whole history (.h), none for live only
      assert.deepEqual(proxy.seen('/push/').map((q) => q.line.split(' ')[1].replace(/\?.*/, '')),
        ['/push/apimarkers1/websocket/apiall.h/apilive/apilast.b2']);
      // leaving the last channel disconnects: status 0, frame gone
      await page.evaluate(() => { Meteor.leaveChannel('apiall'); Meteor.leaveChannel('apilive'); });
      await page.evaluate(() => Meteor.leaveChannel('apilast'));
      assert.deepEqual(await page.evaluate(() => [Meteor.status, Meteor.channelcount, Meteor.frameref,
        document.querySelectorAll('iframe').length]), [0, 0, null, 0]);
      const statuses = (await eventsOf(page, 'statuschanged')).map((e) => e[1]);
      // 1,4,5; each leave while connected reconnects (0,1,4,5); the last one disconnects
      assert.deepEqual(statuses.slice(0, 3), [1, 4, 5], JSON.stringify(statuses));
      assert.equal(statuses[statuses.length - 1], 0, JSON.stringify(statuses));
      assertNoPageErrors(page, 'throws');
    } finally {
      await page.closeAll();
    }
  });
});

test('Meteor API: callbacks[event] is one function; a direct assignment and registrations chain', async (env) => {
  const page = await apiPageAt(env, env.meteord.subPort, () => {
    Meteor.callbacks.process = (text) => window.events.push(['direct', text]);
    Meteor.registerEventCallback('process', (text) => window.events.push(['chained', text]));
    Meteor.registerEventCallback('mine', () => {});
    window.mineType = typeof Meteor.callbacks.mine;
    Meteor.joinChannel('chat');
    Meteor.connect();
  });
  try {
    assert.equal(await page.evaluate(() => window.mineType), 'function');
    await page.waitForFunction(() => Meteor.status === 5, null, { timeout: WAIT_MS });
    const text = `direct callback ${Date.now()}`;
    await env.chat.post('Cb', text);
    await page.waitForFunction(() => window.events.some((e) => e[0] === 'chained'), null, { timeout: WAIT_MS });
    const got = (await page.evaluate(() => window.events)).filter((e) => e[0] === 'direct' || e[0] === 'chained');
    assert.deepEqual(got.map((e) => e[0]), ['direct', 'chained']);
    assert.ok(got[0][1].endsWith(text) && got[1][1] === got[0][1], JSON.stringify(got));
  } finally {
    await page.closeAll();
  }
});

test('Meteor.mode: connect() resolves stream to websocket, and the request says so', async (env) => {
  await withProxy(env, null, async (proxy) => {
    const page = await apiPageAt(env, proxy.port, () => {
      Meteor.joinChannel('chat');
      const before = Meteor.mode;
      Meteor.connect();
      window.modes = [before, Meteor.mode];
    });
    try {
      assert.deepEqual(await page.evaluate(() => window.modes), ['stream', 'websocket']);
      await page.waitForFunction(() => Meteor.status === 5, null, { timeout: WAIT_MS });
      const text = `resolved stream ${Date.now()}`;
      await env.chat.post('Mode', text);
      await waitForText(page, text);
      const push = proxy.seen('/push/');
      assert.deepEqual(push.map(modeOf), ['websocket'], JSON.stringify(push));
      assert.equal(await page.evaluate(() => Meteor.mode), 'websocket');
      // as the original: 1 is reported before 'stream' is resolved
      assert.deepEqual(await eventsOf(page, 'statuschanged'),
        [['statuschanged', 1, 'stream'], ['statuschanged', 4, 'websocket'], ['statuschanged', 5, 'websocket']]);
      assertNoPageErrors(page, 'resolved');
    } finally {
      await page.closeAll();
    }
  });
});

test('Meteor.mode: stream resolves to iframe where fetch() cannot stream (and no WebSocket, EventSource)', async (env) => {
  await withProxy(env, null, async (proxy) => {
    // No ReadableStream: our xhrinteractive reader cannot work, the classic
    // forever-iframe can (the original picks iframe for IE and old Opera).
    // (The browsers without a streaming fetch() lack both newer ones too.)
    const page = await apiPageAt(env, proxy.port, () => {
      Meteor.joinChannel('chat');
      Meteor.connect();
      window.modes = [Meteor.selectStreamTransport(), Meteor.mode];
    }, undefined, () => { delete window.ReadableStream; delete window.WebSocket; delete window.EventSource; });
    try {
      assert.deepEqual(await page.evaluate(() => window.modes), ['iframe', 'iframe']);
      await page.waitForFunction(() => Meteor.status === 5, null, { timeout: WAIT_MS });
      const text = `iframe picked ${Date.now()}`;
      await env.chat.post('Mode', text);
      await waitForText(page, text);
      assert.deepEqual(proxy.seen('/push/').map(modeOf), ['iframe']);
    } finally {
      await page.closeAll();
    }
  });
});

for (const mode of ['iframe', 'xhrinteractive', 'eventsource', 'websocket']) {
  test(`Meteor.mode = '${mode}' set directly is honoured`, async (env) => {
    await withProxy(env, null, async (proxy) => {
      const page = await apiPageAt(env, proxy.port, (m) => {
        Meteor.mode = m;
        Meteor.joinChannel('chat');
        Meteor.connect();
      }, mode);
      try {
        await page.waitForFunction(() => Meteor.status === 5, null, { timeout: WAIT_MS });
        const text = `direct ${mode} ${Date.now()}`;
        await env.chat.post('Mode', text);
        await waitForText(page, text);
        const push = proxy.seen('/push/');
        assert.deepEqual(push.map(modeOf), [mode], JSON.stringify(push));
        assert.match(push[0].line, new RegExp(`^GET /push/\\d+/${mode}/chat\\?`));
        assert.equal(await page.evaluate(() => Meteor.mode), mode);
        assert.deepEqual((await eventsOf(page, 'statuschanged')).map((e) => e[1]), [1, 4, 5]);
        assertNoPageErrors(page, mode);
      } finally {
        await page.closeAll();
      }
    });
  });
}

test('a mode name the client does not know is polled like simplepoll, from Meteor.host', async (env) => {
  // The original treats any other mode as a poll; meteord answers it with
  // the default templates. Not a stream: no status 4; not a poll mode of
  // the original's list: Meteor.host, not pollhost; a short poll: a
  // live-only channel asks for its position (.b1) first.
  await withProxy(env, null, async (proxy) => {
    const page = await apiPageAt(env, proxy.port, (host) => {
      Meteor.mode = 'custom';
      Meteor.pollhost = host;
      Meteor.joinChannel('chat');
      Meteor.connect();
    }, POLL_HOST);
    try {
      await page.waitForFunction(() => Meteor.status === 5, null, { timeout: WAIT_MS });
      await waitUntil(() => proxy.seen('/push/').length >= 1, 'a poll');
      const push = proxy.seen('/push/');
      assert.match(push[0].line, /^GET \/push\/\d+\/custom\/chat\.b1\?/, JSON.stringify(push));
      assert.deepEqual([...new Set(proxy.requests.map((q) => q.host))], [`127.0.0.1:${proxy.port}`]);
      assert.equal(await page.evaluate(() => Meteor.mode), 'custom');
      assert.deepEqual((await eventsOf(page, 'statuschanged')).map((e) => e[1]), [1, 5]);
    } finally {
      await page.closeAll();
    }
  });
});

test('a Meteor.mode the request line cannot carry is resolved like stream', async (env) => {
  await withProxy(env, null, async (proxy) => {
    const page = await apiPageAt(env, proxy.port, () => {
      Meteor.mode = 'no such/mode';
      Meteor.joinChannel('chat');
      Meteor.connect();
    });
    try {
      assert.equal(await page.evaluate(() => Meteor.mode), 'websocket');
      await page.waitForFunction(() => Meteor.status === 5, null, { timeout: WAIT_MS });
      assert.deepEqual(proxy.seen('/push/').map(modeOf), ['websocket']);
      assertNoPageErrors(page, 'unusable mode');
    } finally {
      await page.closeAll();
    }
  });
});

test('changemode fires with "poll" on the fallback; pollhost then serves the polls', async (env) => {
  // The proxy holds every stream: 'stream' goes websocket -> eventsource
  // (neither opens) -> xhrinteractive (silent twice) -> smartpoll.
  await withProxy(env, /\/(?:websocket|eventsource|xhrinteractive)\//, async (proxy) => {
    const page = await apiPageAt(env, proxy.port, (host) => {
      Meteor.pollhost = host;
      Meteor.pingtimeout = 1500;
      Meteor.pollfreq = 500;
      Meteor.minpollfreq = 300;
      Meteor.maxpollfreq = 1000;
      Meteor.joinChannel('chat');
      Meteor.connect();
    }, POLL_HOST);
    try {
      await page.waitForFunction(() => window.events.some((e) => e[0] === 'changemode'), null, { timeout: WAIT_MS });
      // the original's argument; Meteor.mode already reads smartpoll in the callback
      assert.deepEqual(await eventsOf(page, 'changemode'), [['changemode', 'poll', 'smartpoll']]);
      await page.waitForFunction(() => Meteor.status === 5, null, { timeout: WAIT_MS });
      // then the original reconnects: 0, 1, and 5 once the polls answer
      const all = await page.evaluate(() => window.events);
      const from = all.findIndex((e) => e[0] === 'changemode');
      assert.deepEqual(all.slice(from + 1).filter((e) => e[0] !== 'process'),
        [['statuschanged', 0, 'smartpoll'], ['statuschanged', 1, 'smartpoll'], ['statuschanged', 5, 'smartpoll']]);
      assert.deepEqual(all.slice(0, 2), [['statuschanged', 1, 'stream'], ['statuschanged', 4, 'websocket']]);
      await sleep(1000);
      const text = `polled from pollhost ${Date.now()}`;
      await env.chat.post('Poll', text);
      await waitForText(page, text);
      const push = proxy.seen('/push/');
      const streams = push.filter((q) => ['websocket', 'eventsource', 'xhrinteractive'].includes(modeOf(q)));
      const polls = push.filter((q) => modeOf(q) === 'smartpoll');
      assert.ok(streams.length >= 1 && polls.length >= 1, JSON.stringify(push));
      assert.deepEqual([...new Set(streams.map((q) => q.host))], [`127.0.0.1:${proxy.port}`]);
      assert.deepEqual([...new Set(polls.map((q) => q.host))], [`${POLL_HOST}:${proxy.port}`]);
      assert.ok(push.indexOf(streams[streams.length - 1]) < push.indexOf(polls[0]), 'streams, then polls');
      assert.equal((await eventsOf(page, 'changemode')).length, 1, 'one changemode');
      assertNoPageErrors(page, 'fallback');
    } finally {
      await page.closeAll();
    }
  });
});

for (const mode of ['longpoll', 'smartpoll', 'simplepoll']) {
  test(`Meteor.pollhost is used for ${mode} (the frame and every poll)`, async (env) => {
    await withProxy(env, null, async (proxy) => {
      const page = await apiPageAt(env, proxy.port, ({ m, host }) => {
        Meteor.mode = m;
        Meteor.pollhost = host;
        Meteor.pollfreq = 400;
        Meteor.minpollfreq = 400;
        Meteor.maxpollfreq = 1000;
        Meteor.joinChannel('chat');
        Meteor.connect();
      }, { m: mode, host: POLL_HOST });
      try {
        await page.waitForFunction(() => Meteor.status === 5, null, { timeout: WAIT_MS });
        await sleep(900);
        const text = `${mode} via pollhost ${Date.now()}`;
        await env.chat.post('Poll', text);
        await waitForText(page, text);
        await waitUntil(() => proxy.seen('/push/').length >= 2, 'a second poll');
        const push = proxy.seen('/push/');
        assert.deepEqual([...new Set(push.map(modeOf))], [mode]);
        assert.deepEqual([...new Set(push.map((q) => q.host))], [`${POLL_HOST}:${proxy.port}`]);
        assert.deepEqual(proxy.seen('/stream.html').map((q) => q.host), [`${POLL_HOST}:${proxy.port}`]);
        // polls never report 4 (no stream frame in the original)
        assert.deepEqual((await eventsOf(page, 'statuschanged')).map((e) => e[1]), [1, 5]);
        assertNoPageErrors(page, mode);
      } finally {
        await page.closeAll();
      }
    });
  });
}

test('Meteor.pollhost is not used for the stream modes', async (env) => {
  await withProxy(env, null, async (proxy) => {
    const page = await apiPageAt(env, proxy.port, (host) => {
      Meteor.pollhost = host;
      Meteor.joinChannel('chat');
      Meteor.connect();
    }, POLL_HOST);
    try {
      await page.waitForFunction(() => Meteor.status === 5, null, { timeout: WAIT_MS });
      const hosts = proxy.requests.map((q) => q.host);
      assert.deepEqual([...new Set(hosts)], [`127.0.0.1:${proxy.port}`], JSON.stringify(proxy.requests));
    } finally {
      await page.closeAll();
    }
  });
});

test('poll rates: longpoll runs at minpollfreq; a quiet smartpoll slows by 5 % every 10 s', async (env) => {
  const page = await apiPageAt(env, env.meteord.subPort, () => {
    Meteor.mode = 'longpoll';
    Meteor.minpollfreq = 700;
    Meteor.joinChannel('apiquiet');
    Meteor.connect();
    window.longpollfreq = Meteor.pollfreq;
    Meteor.disconnect();
    Meteor.mode = 'smartpoll';
    Meteor.pollfreq = 1000;
    Meteor.minpollfreq = 300;
    Meteor.maxpollfreq = 5000;
    Meteor.connect();
  });
  try {
    assert.equal(await page.evaluate(() => window.longpollfreq), 700);
    await sleep(9000);
    assert.equal(await page.evaluate(() => Meteor.pollfreq), 1000, 'before the first 10 s');
    // nothing arrived: half the gap since connect (~5 s) > 1000 -> floor(1000 * 1.05)
    await page.waitForFunction(() => Meteor.pollfreq !== 1000, null, { timeout: 3000 });
    assert.equal(await page.evaluate(() => Meteor.pollfreq), 1050);
  } finally {
    await page.closeAll();
  }
});

test('eof: the eof callback runs, then status 6, as the original', async (env) => {
  const setup = () => { Meteor.hostid = 'apieoforder'; Meteor.joinChannel('chat'); Meteor.connect(); };
  const first = await apiPageAt(env, env.meteord.subPort, setup);
  const second = await apiPageAt(env, env.meteord.subPort);
  try {
    await first.waitForFunction(() => Meteor.status === 5, null, { timeout: WAIT_MS });
    await second.evaluate(setup);
    await first.waitForFunction(() => Meteor.status === 6, null, { timeout: WAIT_MS });
    const tail = (await first.evaluate(() => window.events)).filter((e) => e[0] === 'eof' || e[0] === 'statuschanged');
    assert.deepEqual(tail.slice(-2).map((e) => e.slice(0, 2)), [['eof', undefined], ['statuschanged', 6]]);
    await first.evaluate(() => Meteor.disconnect());
    assert.equal(await first.evaluate(() => Meteor.status), 6, 'disconnect() keeps 6');
  } finally {
    await first.closeAll();
    await second.closeAll();
  }
});

export default tests;
