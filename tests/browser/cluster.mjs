// cluster.mjs — the cluster in a browser (issue 13): redis-server, two
// meteord nodes on it (ClusterRedis), one nginx `upstream` over both (round
// robin, no sticky sessions), fcgi-chat publishing to node A, and two chat
// pages whose streams sit on different nodes. They see each other's
// messages; then the node of one page is killed (SIGKILL) and that page,
// reconnected through nginx to the other node, keeps its conversation:
// every message once, in order, nothing missing. Its own runner (the main
// suite's Env is one single node); last line "browser-cluster: N passed,
// M failed".
// Usage: node cluster.mjs

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { FcgiChat, METEORD_BIN, ROOT, freePort, sleep, stop, tempDir } from './servers.mjs';
import {
  WAIT_MS, assertEachOnce, assertNoPageErrors, assertOrderedUnique, say, waitConnected,
  waitForTexts,
} from './env.mjs';

const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
const NGINX = process.env.NGINX_BIN || '/usr/sbin/nginx';
const REDIS = process.env.REDIS_BIN || 'redis-server';
/* Bound for the whole test. */
const TEST_TIMEOUT_MS = 180000;

const children = [];
function run(name, bin, args, dir) {
  const log = fs.openSync(path.join(dir, `${name}.log`), 'a');
  const child = spawn(bin, args, { stdio: ['ignore', log, log] });
  fs.closeSync(log);
  child.on('error', (e) => { child.failed = e; });
  child.logTail = () => fs.readFileSync(path.join(dir, `${name}.log`), 'utf8').split('\n').slice(-20).join('\n');
  children.push(child);
  return child;
}
process.on('exit', () => { for (const c of children) { try { c.kill('SIGKILL'); } catch { /* gone */ } } });

function canConnect(port) {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

async function waitPorts(ports, child, name) {
  const deadline = Date.now() + 15000;
  while (Date.now() < deadline) {
    if (child.failed) throw new Error(`${name}: ${child.failed}`);
    if (child.exitCode !== null) throw new Error(`${name} exited:\n${child.logTail()}`);
    if ((await Promise.all(ports.map(canConnect))).every(Boolean)) return;
    await sleep(50);
  }
  throw new Error(`${name} did not open ${ports}:\n${child.logTail()}`);
}

/** One controller command; resolves with the first reply line. */
function command(port, line) {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    let got = '';
    s.setTimeout(5000, () => { s.destroy(); reject(new Error(`controller ${port}: no reply to ${line}`)); });
    s.on('data', (d) => {
      got += d.toString();
      if (got.includes('\r\n')) { s.destroy(); resolve(got.split('\r\n')[0]); }
    });
    s.on('error', reject);
    s.write(`${line}\n`);
  });
}

async function startNode(dir, name, redisPort) {
  const node = { name, sub: await freePort(), ctl: await freePort() };
  node.child = run(name, METEORD_BIN, [
    '-Foreground', '1', '-SyslogFacility', 'none',
    '-ConfigFileLocation', path.join(dir, 'nonexistent.conf'),
    '-SubscriberIP', '127.0.0.1', '-SubscriberPort', String(node.sub),
    '-ControllerPort', String(node.ctl),
    '-SubscriberDocumentRoot', path.join(ROOT, 'public'),
    '-ClusterRedis', `redis://127.0.0.1:${redisPort}/0`,
    // Its default port would be both nodes' at once.
    '-MetricsPort', '0',
  ], dir);
  await waitPorts([node.sub, node.ctl], node.child, name);
  return node;
}

async function startNginx(dir, port, nodes) {
  fs.mkdirSync(path.join(dir, 'nginx-tmp'), { recursive: true });
  const conf = `worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/nginx-error.log warn;
daemon off;
user root;
events { worker_connections 1024; }
http {
  access_log ${dir}/nginx-access.log;
  client_body_temp_path ${dir}/nginx-tmp/body;
  proxy_temp_path ${dir}/nginx-tmp/proxy;
  fastcgi_temp_path ${dir}/nginx-tmp/fastcgi;
  uwsgi_temp_path ${dir}/nginx-tmp/uwsgi;
  scgi_temp_path ${dir}/nginx-tmp/scgi;
  upstream meteord_cluster {
${nodes.map((n) => `    server 127.0.0.1:${n.sub} max_fails=1 fail_timeout=30s;`).join('\n')}
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://meteord_cluster;
      proxy_buffering off;
      proxy_cache off;
      gzip off;
      proxy_http_version 1.1;
      proxy_set_header Connection close;
      proxy_set_header Host $host;
      proxy_read_timeout 1h;
    }
  }
}
`;
  fs.writeFileSync(path.join(dir, 'nginx.conf'), conf);
  const child = run('nginx', NGINX, ['-p', dir, '-c', path.join(dir, 'nginx.conf')], dir);
  await waitPorts([port], child, 'nginx');
  return child;
}

/** COUNTSUBSCRIBERS chat on every node. */
async function counts(nodes) {
  const out = [];
  for (const n of nodes) {
    if (n.dead) { out.push(0); continue; }
    const reply = await command(n.ctl, 'COUNTSUBSCRIBERS chat');
    out.push(Number(reply.replace(/^OK /, '')));
  }
  return out;
}

async function waitCounts(nodes, want) {
  const deadline = Date.now() + WAIT_MS;
  let got;
  while (Date.now() < deadline) {
    got = await counts(nodes);
    if (got.reduce((a, b) => a + b, 0) === want) return got;
    await sleep(100);
  }
  throw new Error(`subscribers never ${want}: ${got}`);
}

async function clusterTest(dir) {
  const redisPort = await freePort();
  const redis = run('redis', REDIS, ['--bind', '127.0.0.1', '--port', String(redisPort),
    '--save', '', '--appendonly', 'no', '--dir', dir], dir);
  await waitPorts([redisPort], redis, 'redis-server');
  const a = await startNode(dir, 'node-a', redisPort);
  const b = await startNode(dir, 'node-b', redisPort);
  const nodes = [a, b];
  const proxyPort = await freePort();
  const nginx = await startNginx(dir, proxyPort, nodes);
  // fcgi-chat publishes to node A (the node that is not killed); the page's
  // meteor.js and streams go through nginx.
  const chat = new FcgiChat(dir, { url: `http://127.0.0.1:${proxyPort}`, ctlPort: a.ctl });
  await chat.start();
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-quic', '--no-first-run'],
  });
  try {
    const open = async (user) => {
      const context = await browser.newContext();
      const page = await context.newPage();
      page.errors = [];
      page.on('pageerror', (e) => page.errors.push(String(e)));
      page.closeAll = () => context.close();
      await page.goto(`${chat.url}/?mode=stream`);
      await page.fill('#user', user);
      await waitConnected(page, 'stream');
      return page;
    };
    // Two pages whose streams are on different nodes: round robin decides,
    // so reopen the second page until it lands on the other node (bounded).
    const ann = await open('Ann');
    const first = await waitCounts(nodes, 1);
    const annNode = first[0] === 1 ? a : b;
    let bob;
    for (let i = 0; i < 10; i++) {
      bob = await open('Bob');
      const now = await waitCounts(nodes, 2);
      if (now[0] === 1 && now[1] === 1) break;
      await bob.closeAll();
      bob = null;
      await waitCounts(nodes, 1);
      // Every page load makes the same requests, so shift round robin by
      // one before the next try.
      await fetch(`http://127.0.0.1:${proxyPort}/meteor.js`, { signal: AbortSignal.timeout(5000) })
        .then((r) => r.arrayBuffer());
    }
    assert.ok(bob, 'the second page never landed on the other node');
    const bobNode = annNode === a ? b : a;
    // The page on node B is the one whose node dies.
    const [victim, victimName, other, otherName] = bobNode === b
      ? [bob, 'Bob', ann, 'Ann'] : [ann, 'Ann', bob, 'Bob'];

    await say(other, 'hello from the other node');
    await say(victim, 'hello back');
    const both = ['hello from the other node', 'hello back'];
    for (const p of [ann, bob]) await waitForTexts(p, both);

    b.child.kill('SIGKILL');
    b.dead = true;
    // Said while the victim's stream is gone: it must get it on resume.
    await say(other, 'while you were away');
    await say(other, 'and one more');
    const all = [...both, 'while you were away', 'and one more'];
    const seen = await waitForTexts(victim, all);
    assertOrderedUnique(seen, `${victimName} after its node died`);
    assertEachOnce(seen, all, `${victimName} after its node died`);
    // The victim can still talk, through the surviving node.
    await say(victim, 'still here');
    for (const p of [victim, other]) {
      const list = await waitForTexts(p, [...all, 'still here']);
      assertOrderedUnique(list, 'after the failover');
      assertEachOnce(list, [...all, 'still here'], 'after the failover');
    }
    assert.deepEqual(await counts(nodes), [2, 0], 'both pages now on node A');
    assertNoPageErrors(victim, victimName);
    assertNoPageErrors(other, otherName);
  } finally {
    await browser.close().catch(() => {});
    await chat.stop();
    await stop(nginx);
    for (const n of nodes) await stop(n.child);
    await stop(redis);
  }
}

const dir = tempDir();
let passed = 0;
let failed = 0;
const started = Date.now();
try {
  let timer;
  await Promise.race([
    clusterTest(dir),
    new Promise((_, reject) => { timer = setTimeout(() => reject(new Error('timed out')), TEST_TIMEOUT_MS); }),
  ]).finally(() => clearTimeout(timer));
  passed = 1;
  console.log(`ok   two chat pages on two nodes behind nginx, one node killed (${Date.now() - started} ms)`);
} catch (err) {
  failed = 1;
  console.log(`FAIL two chat pages on two nodes behind nginx, one node killed (${Date.now() - started} ms)`);
  console.log(String(err && err.stack ? err.stack : err).replace(/^/gm, '     '));
  console.log(`     logs in ${dir}`);
}
if (failed === 0 && !process.env.KEEP_LOGS) fs.rmSync(dir, { recursive: true, force: true });
console.log(`browser-cluster: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
