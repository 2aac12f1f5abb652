// servers.mjs — starts and stops the real processes the browser tests talk
// to: meteord (document root = public/), fcgi-chat in dev HTTP mode
// (chat/), and a tiny static server for test-only pages. Everything listens
// on 127.0.0.1 on free ports; every wait is bounded; children die with us.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const METEORD_BIN = process.env.METEORD_BIN || path.join(ROOT, 'target/debug/meteord');
export const FCGI_CHAT_BIN = process.env.FCGI_CHAT_BIN || path.join(ROOT, 'target/debug/fcgi-chat');

/* How long a freshly started server may take to accept connections. */
const STARTUP_TIMEOUT_MS = 15000;
/* How long a stopped server may take to exit before we SIGKILL it. */
const EXIT_TIMEOUT_MS = 10000;
/* Poll period while waiting for a port. */
const POLL_MS = 50;

const children = new Set();

function killAll() {
  for (const c of children) {
    try { c.kill('SIGKILL'); } catch { /* already gone */ }
  }
}
process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => { killAll(); process.exit(130); });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A port that was free a moment ago (bind port 0, read it, close). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function canConnect(port) {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

async function waitForPorts(ports, child, name) {
  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${name} exited during startup (code ${child.exitCode}, signal ${child.signalCode}):\n${child.logTail()}`);
    }
    const ok = await Promise.all(ports.map(canConnect));
    if (ok.every(Boolean)) return;
    await sleep(POLL_MS);
  }
  throw new Error(`${name} did not open ports ${ports.join(', ')} within ${STARTUP_TIMEOUT_MS} ms:\n${child.logTail()}`);
}

function start(name, bin, args, logFile) {
  if (!fs.existsSync(bin)) throw new Error(`${name} binary not found: ${bin} (build it or set the *_BIN variable)`);
  const log = fs.openSync(logFile, 'a');
  const child = spawn(bin, args, { stdio: ['ignore', log, log] });
  fs.closeSync(log);
  children.add(child);
  child.once('exit', () => children.delete(child));
  child.logTail = () => {
    try { return fs.readFileSync(logFile, 'utf8').split('\n').slice(-20).join('\n'); } catch { return ''; }
  };
  return child;
}

/** Stop a child with `signal`; SIGKILL it if it does not exit in time. */
export async function stop(child, signal = 'SIGTERM') {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill(signal);
  const timer = sleep(EXIT_TIMEOUT_MS).then(() => 'timeout');
  if ((await Promise.race([exited, timer])) === 'timeout') {
    child.kill('SIGKILL');
    await exited;
  }
}

/** meteord with the built-in modes, its own state file and log. */
export class Meteord {
  /* extraArgs: more parameters (e.g. the subscriber-token ones). */
  constructor(dir, extraArgs = []) {
    this.dir = dir;
    this.extraArgs = extraArgs;
    this.stateFile = path.join(dir, 'meteord.state');
    this.logFile = path.join(dir, 'meteord.log');
    this.child = null;
  }

  async start() {
    this.subPort ??= await freePort();
    this.ctlPort ??= await freePort();
    this.child = start('meteord', METEORD_BIN, [
      '-Foreground', '1',
      '-ConfigFileLocation', path.join(this.dir, 'nonexistent.conf'),
      '-SubscriberIP', '127.0.0.1',
      '-SubscriberPort', String(this.subPort),
      '-ControllerPort', String(this.ctlPort),
      '-SubscriberDocumentRoot', path.join(ROOT, 'public'),
      '-StateFile', this.stateFile,
      ...this.extraArgs,
      // Its default port would be every browser test daemon's at once.
      '-MetricsPort', '0',
    ], this.logFile);
    await waitForPorts([this.subPort, this.ctlPort], this.child, 'meteord');
  }

  async stop(signal = 'SIGTERM') {
    await stop(this.child, signal);
    this.child = null;
  }

  get url() { return `http://127.0.0.1:${this.subPort}`; }
}

/** fcgi-chat in dev HTTP mode, serving chat/ and POST /chat.php. */
export class FcgiChat {
  /* channel: where it publishes; extraArgs: more options (--token-secret). */
  constructor(dir, meteord, { channel = 'chat', extraArgs = [] } = {}) {
    this.dir = dir;
    this.meteord = meteord;
    this.channel = channel;
    this.extraArgs = extraArgs;
    this.logFile = path.join(dir, 'fcgi-chat.log');
  }

  async start() {
    this.port ??= await freePort();
    this.child = start('fcgi-chat', FCGI_CHAT_BIN, [
      '--http', `127.0.0.1:${this.port}`,
      '--chat-root', path.join(ROOT, 'chat'),
      '--push-url', this.meteord.url,
      '--controller', `127.0.0.1:${this.meteord.ctlPort}`,
      '--channel', this.channel,
      '--timezone', 'UTC',
      ...this.extraArgs,
    ], this.logFile);
    await waitForPorts([this.port], this.child, 'fcgi-chat');
  }

  async stop() { await stop(this.child); }

  get url() { return `http://127.0.0.1:${this.port}`; }

  /** POST a chat message the way the page does; returns {status, json}. */
  async post(user, message) {
    const res = await fetch(`${this.url}/chat.php`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded;charset=UTF-8' },
      body: new URLSearchParams({ user, message }).toString(),
      signal: AbortSignal.timeout(5000),
    });
    const text = await res.text();
    let json = null;
    try { json = JSON.parse(text); } catch { /* keep null */ }
    return { status: res.status, json, text };
  }
}

/** Serves fixed in-memory pages (test-only HTML) on 127.0.0.1. */
export class PageServer {
  constructor(pages) { this.pages = pages; }

  async start() {
    this.server = http.createServer((req, res) => {
      const body = this.pages[req.url.split('?')[0]];
      if (body === undefined) { res.writeHead(404); res.end('not found'); return; }
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
      res.end(body);
    });
    await new Promise((r) => this.server.listen(0, '127.0.0.1', r));
    this.port = this.server.address().port;
  }

  async stop() {
    if (this.server) {
      this.server.closeAllConnections();
      await new Promise((r) => this.server.close(r));
    }
  }
}

export function tempDir() {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'meteor-browser-'));
}

/**
 * A TCP proxy in front of meteord that holds back the whole response of
 * every request whose request line matches `pattern` until the server closes
 * it — what a buffering reverse proxy does to a stream. Used to prove that
 * stream mode notices the missing pings and falls back to polling. It
 * records every request that reaches meteord through it as {line, host}
 * (request line and Host header), so tests can check the exact paths; with
 * `pattern` null it buffers nothing.
 */
export class BufferingProxy {
  constructor(targetPort, pattern) {
    this.targetPort = targetPort;
    this.pattern = pattern;
    this.sockets = new Set();
    this.requests = [];
  }

  /** The recorded requests whose path starts with `prefix`, each once:
   * Chromium re-sends a request whose reused keep-alive socket turned out
   * closed, and that copy (same line, same ?nc=) is not a new request. */
  seen(prefix) {
    const lines = new Set();
    return this.requests.filter((r) => {
      const key = `${r.host} ${r.line}`;
      if (lines.has(key) || !r.line.split(' ')[1]?.startsWith(prefix)) return false;
      lines.add(key);
      return true;
    });
  }

  async start() {
    this.server = net.createServer((client) => {
      const upstream = net.connect({ port: this.targetPort, host: '127.0.0.1' });
      this.sockets.add(client).add(upstream);
      let buffering = false;
      const held = [];
      client.on('data', (d) => {
        const head = d.toString('latin1', 0, Math.min(d.length, 2048));
        if (/^[A-Z]+ /.test(head)) {
          const line = head.split('\r\n')[0];
          const host = /\r\nhost: *([^\r\n]*)/i.exec(head);
          this.requests.push({ line, host: host ? host[1] : '' });
          buffering = this.pattern ? this.pattern.test(line) : false;
        }
        upstream.write(d);
      });
      upstream.on('data', (d) => { if (buffering) held.push(d); else client.write(d); });
      upstream.on('end', () => { if (held.length) client.write(Buffer.concat(held)); client.end(); });
      const drop = () => { client.destroy(); upstream.destroy(); };
      client.on('error', drop).on('close', () => { upstream.destroy(); this.sockets.delete(client); });
      upstream.on('error', drop).on('close', () => { this.sockets.delete(upstream); });
    });
    await new Promise((r) => this.server.listen(0, '127.0.0.1', r));
    this.port = this.server.address().port;
  }

  async stop() {
    for (const s of this.sockets) s.destroy();
    if (this.server) await new Promise((r) => this.server.close(r));
  }
}
