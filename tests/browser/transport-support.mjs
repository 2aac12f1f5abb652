// transport-support.mjs — what the EventSource/WebSocket tests need beyond
// servers.mjs: a TCP proxy in front of meteord that records every request
// (line, Host, Last-Event-ID, Upgrade), can stop forwarding WebSocket
// upgrades (it drops the Upgrade/Connection headers, as a reverse proxy
// without WebSocket support does) and can cut the connections of requests
// that match a pattern; and a controller client that publishes and returns
// the ids meteord assigned.

import net from 'node:net';

/* Bound on one controller exchange. */
const CONTROLLER_TIMEOUT_MS = 10000;

export class TapProxy {
  constructor(targetPort) {
    this.targetPort = targetPort;
    this.allowUpgrade = true;
    this.requests = [];
    this.conns = new Set(); // {client, upstream, line}
  }

  /** Recorded requests whose path starts with `prefix`, each once:
   * Chromium re-sends a request whose kept-alive socket turned out closed,
   * and that copy (same line, same ?nc=, same headers) is no new request. */
  seen(prefix) {
    const keys = new Set();
    return this.requests.filter((r) => {
      const key = `${r.host} ${r.line} ${r.lastEventId} ${r.upgrade}`;
      if (keys.has(key) || !r.line.split(' ')[1]?.startsWith(prefix)) return false;
      keys.add(key);
      return true;
    });
  }

  /** Cut (both sides) every connection whose last request line matches. */
  cut(pattern) {
    let n = 0;
    for (const c of this.conns) {
      if (pattern.test(c.line)) { c.client.destroy(); c.upstream.destroy(); n++; }
    }
    return n;
  }

  async start() {
    this.server = net.createServer((client) => {
      const upstream = net.connect({ port: this.targetPort, host: '127.0.0.1' });
      const conn = { client, upstream, line: '' };
      this.conns.add(conn);
      client.on('data', (d) => {
        let out = d;
        const text = d.toString('latin1');
        const end = text.indexOf('\r\n\r\n');
        if (/^[A-Z]+ \S+ HTTP\/1\.[01]\r\n/.test(text) && end > 0) {
          let head = text.slice(0, end);
          const header = (name) => {
            const m = new RegExp(`\\r\\n${name}: *([^\\r\\n]*)`, 'i').exec(head);
            return m ? m[1] : null;
          };
          conn.line = head.split('\r\n')[0];
          const upgrade = /websocket/i.test(header('upgrade') ?? '');
          this.requests.push({
            line: conn.line, host: header('host') ?? '', lastEventId: header('last-event-id'), upgrade,
            forwarded: upgrade && this.allowUpgrade,
          });
          if (upgrade && !this.allowUpgrade) {
            // What a proxy without WebSocket forwarding passes on: no
            // hop-by-hop Upgrade, and its own Connection header.
            head = head.replace(/\r\n(?:upgrade|connection): *[^\r\n]*/gi, '') + '\r\nConnection: close';
            out = Buffer.concat([Buffer.from(head, 'latin1'), d.subarray(end)]);
          }
        }
        upstream.write(out);
      });
      upstream.on('data', (d) => client.write(d));
      upstream.on('end', () => client.end());
      const drop = () => { client.destroy(); upstream.destroy(); };
      client.on('error', drop).on('close', () => { upstream.destroy(); this.conns.delete(conn); });
      upstream.on('error', drop).on('close', () => client.destroy());
    });
    await new Promise((r) => this.server.listen(0, '127.0.0.1', r));
    this.port = this.server.address().port;
  }

  async stop() {
    for (const c of this.conns) { c.client.destroy(); c.upstream.destroy(); }
    if (this.server) await new Promise((r) => this.server.close(r));
  }
}

/**
 * Publish each of `texts` on `channel` with ADDMESSAGE over one controller
 * connection, one at a time, `gapMs` apart; resolves to the ids meteord
 * answered ("OK\t<id>" per command).
 */
export function publish(ctlPort, channel, texts, gapMs = 0) {
  return new Promise((resolve, reject) => {
    const ids = [];
    let buf = '';
    let i = 0;
    const sock = net.connect({ port: ctlPort, host: '127.0.0.1' });
    const timer = setTimeout(() => { sock.destroy(); reject(new Error(`controller: ${ids.length}/${texts.length} answered`)); },
      CONTROLLER_TIMEOUT_MS + texts.length * gapMs);
    const next = () => {
      if (i >= texts.length) { clearTimeout(timer); sock.end(); resolve(ids); return; }
      sock.write(`ADDMESSAGE ${channel} ${texts[i++]}\n`);
    };
    sock.on('connect', next);
    sock.on('data', (d) => {
      buf += d.toString('utf8');
      let cut;
      while ((cut = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, cut).replace(/\r$/, '');
        buf = buf.slice(cut + 1);
        const m = /^OK\t(\d+)$/.exec(line);
        if (!m) { clearTimeout(timer); sock.destroy(); reject(new Error(`controller said ${JSON.stringify(line)}`)); return; }
        ids.push(Number(m[1]));
        if (gapMs) setTimeout(next, gapMs); else next();
      }
    });
    sock.on('error', (e) => { clearTimeout(timer); reject(e); });
  });
}
