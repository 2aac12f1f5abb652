// tokens.mjs — the private chat demo (issue 14): meteord keeps private-*
// behind subscriber tokens; fcgi-chat --token-secret mints them for the
// chat page, which then chats on private-chat with Meteor.token. Its own
// meteord and fcgi-chat (the shared ones stay token-free); appended to
// tests.mjs' list.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { FcgiChat, Meteord } from './servers.mjs';
import { WAIT_MS, assertEachOnce, assertNoPageErrors, say, sleep, waitConnected, waitForTexts } from './env.mjs';

const SECRET = 'browser-test secret of 32 bytes!';
const CHANNEL = 'private-chat';

const tests = [];
const test = (name, fn) => tests.push({ name, fn });

/** A meteord + fcgi-chat pair with tokens on, in a directory of `env`'s. */
async function privatePair(env, ttl) {
  const dir = path.join(env.dir, 'tokens');
  fs.mkdirSync(dir, { recursive: true });
  const meteord = new Meteord(dir, ['-SubscriberTokenSecret', SECRET, '-SubscriberTokenChannels', 'private-*']);
  await meteord.start();
  const chat = new FcgiChat(dir, meteord, {
    channel: CHANNEL,
    extraArgs: ['--token-secret', SECRET, '--token-ttl', String(ttl)],
  });
  try {
    await chat.start();
  } catch (err) {
    await meteord.stop();
    throw err;
  }
  return { meteord, chat, stop: async () => { await chat.stop(); await meteord.stop(); } };
}

test('private chat: pages get a token, chat on private-chat, renew it; no token, no channel', async (env) => {
  // A 65 s token is renewed 5 s after the page got it (a minute early,
  // at least 5 s on), so the renewal shows within the test.
  const pair = await privatePair(env, 65);
  const pages = [];
  try {
    const pushUrls = [];
    for (const user of ['Alice', 'Bob']) {
      const page = await env.newPage();
      page.on('request', (r) => { if (r.url().includes('/push/')) pushUrls.push(r.url()); });
      // 'stream' is WebSocket first: its handshake is not a 'request' event.
      page.on('websocket', (ws) => { if (ws.url().includes('/push/')) pushUrls.push(ws.url()); });
      await page.goto(`${pair.chat.url}/?mode=stream`);
      await page.fill('#user', user);
      await waitConnected(page, 'stream');
      pages.push(page);
    }
    const [alice, bob] = pages;
    assert.equal(await alice.textContent('.bar h1'), 'Private chat');
    const first = await alice.evaluate(() => window.Meteor.token);
    assert.match(first, /^[\w-]+\.[\w-]+\.[\w-]+$/, 'a JWT');
    const claims = JSON.parse(Buffer.from(first.split('.')[1], 'base64url').toString());
    assert.deepEqual(claims.ch, [CHANNEL]);
    assert.equal(claims.sub, await alice.evaluate(() => String(window.Meteor.hostid)), 'bound to the page');

    const tag = `private-${Date.now()}`;
    await say(alice, `hello from Alice ${tag}`);
    await say(bob, `hello from Bob ${tag}`);
    for (const page of pages) {
      const list = await waitForTexts(page, [`hello from Alice ${tag}`, `hello from Bob ${tag}`]);
      assertEachOnce(list, [`hello from Alice ${tag}`], 'private', 'Alice');
      assertEachOnce(list, [`hello from Bob ${tag}`], 'private', 'Bob');
    }
    assert.ok(pushUrls.length > 0 && pushUrls.every((u) => u.includes(`/${CHANNEL}`) && u.includes('token=')),
      `every /push request carries the token: ${pushUrls.join(' ')}`);

    // Renewed before expiry, and the chat goes on with the new token.
    await alice.waitForFunction((old) => window.Meteor.token !== old, first, { timeout: WAIT_MS });
    await waitConnected(alice, 'stream');
    await say(bob, `after renewal ${tag}`);
    await waitForTexts(alice, [`after renewal ${tag}`]);

    // Without a token meteord shows nothing of the channel.
    const bare = await fetch(`${pair.meteord.url}/push/outsider/simplepoll/${CHANNEL}.h`);
    assert.equal(bare.status, 403);
    assert.equal(await bare.text(), 'token required\n');
    // Nor with Alice's token under another hostid.
    const stolen = await fetch(`${pair.meteord.url}/push/outsider/simplepoll/${CHANNEL}.h?token=${first}`);
    assert.equal(stolen.status, 403);
    assert.equal(await stolen.text(), 'token bound to another hostid\n');
    for (const page of pages) assertNoPageErrors(page, 'private');
  } finally {
    for (const page of pages) await page.closeAll();
    await pair.stop();
    await sleep(0);
  }
});

export default tests;
