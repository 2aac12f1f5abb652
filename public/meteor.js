/*
 * meteor.js — browser client for meteord (a Rust Meteor Comet server).
 *
 * Written from scratch; API-compatible with the classic Meteor client:
 *
 *   Meteor.hostid = "1234567";                 // optional, random if unset
 *   Meteor.host = "data." + location.hostname;  // where meteord answers
 *   Meteor.registerEventCallback("process", addMsg);
 *   Meteor.joinChannel("chat", 10);            // last 10 messages, then live
 *   Meteor.mode = 'stream';                    // or longpoll/smartpoll/simplepoll
 *   Meteor.connect();
 *
 * How it works (why a frame):
 *   The page usually lives on www.example.com and meteord on
 *   data.example.com. Browsers no longer let the two share a document.domain,
 *   and a cross-origin XHR cannot read /push without CORS. So connect()
 *   loads a hidden iframe, stream.html, FROM meteord. That frame loads this
 *   same file (marked with data-meteor-frame) and runs every transport there,
 *   same-origin with /push:
 *     stream     -> GET /push/<hostid>/xhrinteractive/<chans>, read with a
 *                   fetch() ReadableStream; the <script>p(id,"chan","text")
 *                   </script> chunks are PARSED (never evaluated). If fetch
 *                   streaming is missing (or streamtransport = 'iframe') the
 *                   classic forever-iframe (/push/.../iframe/...) is used and
 *                   its parent.Meteor.register(this) / p(...) calls land here.
 *     longpoll   -> one streamed request at a time, re-issued when it ends.
 *     smartpoll  -> short polls; the interval halves towards minpollfreq
 *                   while messages arrive and grows towards maxpollfreq
 *                   while none do.
 *     simplepoll -> short polls every pollfreq ms.
 *   The frame relays messages, status and mode changes to the page with
 *   postMessage. Both sides check the peer window AND its origin: the page
 *   accepts only its own frame from the meteord origin; the frame talks only
 *   to its parent at the origin the parent named when it created the frame
 *   (channel data is public anyway: the poll modes are readable by any
 *   <script src>).
 *
 * Nothing missed, nothing twice:
 *   Each channel remembers the id of the last message delivered. Every
 *   (re)connect asks for <chan>.r<last+1>; while nothing was seen yet it asks
 *   for <chan>.b<backtrack> (backtrack > 0) or, for the short-poll modes that
 *   would otherwise have no position at all, probes the position with .b1.
 *   Both the frame and the page drop any message whose id is <= the last
 *   one delivered on its channel, so callbacks see strictly increasing ids.
 *   Ids are compared as Numbers (safe up to 2^53).
 *
 * Status codes (Meteor.status, "statuschanged" callbacks):
 *   0 uninitialised / disconnected, 1 loading stream (also: reconnecting),
 *   2 loading controller frame (stream.html), 3 controller frame timeout
 *   (retrying), 4 controller frame loaded and ready, 5 receiving data,
 *   6 end of stream: the server sent eof (shutdown, or another connection
 *   with the same hostid took over); the library does not reconnect by itself,
 *   the application may call connect() again.
 *
 * Events (registerEventCallback; several callbacks run in registration order):
 *   process(text, id, channel)  a message
 *   reset(reason)               the stream broke and is being re-opened
 *   eof()                       status 6 reached
 *   statuschanged(status)       status changed
 *   changemode(mode)            mode changed (stream -> smartpoll fallback
 *                               when pings stop arriving within pingtimeout)
 */
(function (window, document) {
  'use strict';

  /* ------------------------------------------------------------------ *
   * Limits and timings (milliseconds unless named otherwise)
   * ------------------------------------------------------------------ */

  /* How long stream.html may take to load and say "ready" before we drop the
   * frame and try again (status 3). */
  var FRAME_TIMEOUT = 8000;
  /* Reconnect back-off after an error: doubles from MIN to MAX, +-20 % jitter
   * so that a restarted server is not hit by every client in the same tick. */
  var BACKOFF_MIN = 500;
  var BACKOFF_MAX = 10000;
  /* A persistent connection that ends sooner than this without delivering
   * anything is treated as an error (back-off) rather than as a normal
   * MaxTime close, so a misconfigured server cannot make us spin. */
  var MIN_HEALTHY_CONNECTION = 1000;
  /* Consecutive stream connections that went silent (no ping within
   * pingtimeout) before stream mode falls back to polling: one silent
   * connection may be a dead TCP path, two in a row mean something between
   * us and meteord buffers the stream. */
  var SILENT_STREAMS_BEFORE_FALLBACK = 2;
  /* The mode stream falls back to: short polls always complete, even
   * through buffering proxies. */
  var FALLBACK_MODE = 'smartpoll';
  /* Unparsed bytes we are willing to hold while waiting for the end of a
   * message; a stream that exceeds it is broken and gets re-opened. */
  var MAX_PENDING_CHARS = 4 * 1024 * 1024;
  /* Length of a generated hostid ([0-9a-z]); 16 chars ~ 82 bits. */
  var HOSTID_LENGTH = 16;
  /* Tag on every postMessage payload so unrelated messages are ignored. */
  var TAG = 'meteor.js/1';

  var MODES = { stream: 1, longpoll: 1, smartpoll: 1, simplepoll: 1 };
  var EVENTS = ['process', 'reset', 'eof', 'statuschanged', 'changemode'];

  var script = document.currentScript;
  var isFrame = !!(script && script.hasAttribute('data-meteor-frame'));

  /* ------------------------------------------------------------------ *
   * Small helpers shared by both roles
   * ------------------------------------------------------------------ */

  function now() { return new Date().getTime(); }

  function randomId(len) {
    var alphabet = '0123456789abcdefghijklmnopqrstuvwxyz';
    var out = '';
    var bytes = new Uint8Array(len);
    if (window.crypto && window.crypto.getRandomValues) {
      window.crypto.getRandomValues(bytes);
    } else {
      for (var j = 0; j < len; j++) bytes[j] = Math.floor(Math.random() * 256);
    }
    for (var i = 0; i < len; i++) out += alphabet.charAt(bytes[i] % 36);
    return out;
  }

  function backoffDelay(failures) {
    var base = Math.min(BACKOFF_MAX, BACKOFF_MIN * Math.pow(2, Math.max(0, failures - 1)));
    return Math.round(base * (0.8 + Math.random() * 0.4));
  }

  /* Messages ids arrive as numbers (or, from odd publishers, strings).
   * Number() keeps every integer up to 2^53 exact; anything else is NaN. */
  function toId(v) {
    var n = typeof v === 'number' ? v : Number(v);
    return isFinite(n) ? n : NaN;
  }

  function makeLogger(prefix, enabled) {
    return function () {
      if (!enabled() || !window.console || !window.console.log) return;
      var args = Array.prototype.slice.call(arguments);
      args.unshift(prefix);
      window.console.log.apply(window.console, args);
    };
  }

  /*
   * Parser for the JavaScript the server's templates produce:
   *   p(12,"chat","text");  Meteor.process(-1);  eof();  ch("chat", 5);
   *   Meteor.channelInfo("chat", 5);  Meteor.clearpoll();
   * Only calls whose arguments are number or string literals are accepted;
   * nothing is ever evaluated. Returns [{fn: 'p', args: [...]}, ...].
   */
  function parseCalls(src) {
    var calls = [];
    var i = 0;
    var n = src.length;

    function skipSpace() {
      while (i < n) {
        var c = src.charCodeAt(i);
        if (c === 32 || c === 9 || c === 10 || c === 13 || c === 59 /* ; */) i++;
        else break;
      }
    }
    function skipStatement() {
      while (i < n && src.charAt(i) !== ';' && src.charAt(i) !== '\n') i++;
    }
    function parseString(quote) {
      var out = '';
      i++; // opening quote
      while (i < n) {
        var c = src.charAt(i);
        if (c === quote) { i++; return out; }
        if (c === '\\') {
          var e = src.charAt(i + 1);
          i += 2;
          switch (e) {
            case 'n': out += '\n'; break;
            case 'r': out += '\r'; break;
            case 't': out += '\t'; break;
            case 'b': out += '\b'; break;
            case 'f': out += '\f'; break;
            case 'v': out += '\v'; break;
            case '0': out += '\0'; break;
            case 'x': {
              var hx = src.substr(i, 2);
              if (!/^[0-9a-fA-F]{2}$/.test(hx)) return null;
              out += String.fromCharCode(parseInt(hx, 16));
              i += 2;
              break;
            }
            case 'u': {
              var hu = src.substr(i, 4);
              if (!/^[0-9a-fA-F]{4}$/.test(hu)) return null;
              out += String.fromCharCode(parseInt(hu, 16));
              i += 4;
              break;
            }
            case '\r': if (src.charAt(i) === '\n') i++; break; // line continuation
            case '\n': break;
            case '': return null;
            default: out += e;
          }
          continue;
        }
        if (c === '\n') return null; // unterminated literal
        out += c;
        i++;
      }
      return null;
    }
    function parseArg() {
      var c = src.charAt(i);
      if (c === '"' || c === "'") {
        var str = parseString(c);
        return { ok: str !== null, value: str };
      }
      var m = /^-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?/.exec(src.slice(i, i + 40));
      if (m) { i += m[0].length; return { ok: true, value: Number(m[0]) }; }
      var w = /^(?:this|null|true|false|undefined)\b/.exec(src.slice(i, i + 10));
      if (w) {
        i += w[0].length;
        var map = { 'this': null, 'null': null, 'true': true, 'false': false, 'undefined': undefined };
        return { ok: true, value: map[w[0]] };
      }
      return { ok: false };
    }
    while (i < n) {
      skipSpace();
      if (i >= n) break;
      var m = /^[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*/.exec(src.slice(i, i + 64));
      if (!m) { skipStatement(); i++; continue; }
      var name = m[0];
      i += name.length;
      skipSpaceOnly();
      if (src.charAt(i) !== '(') { skipStatement(); continue; }
      i++;
      var args = [];
      var ok = true;
      skipSpaceOnly();
      if (src.charAt(i) === ')') {
        i++;
      } else {
        for (;;) {
          skipSpaceOnly();
          var a = parseArg();
          if (!a.ok) { ok = false; break; }
          args.push(a.value);
          skipSpaceOnly();
          var d = src.charAt(i);
          if (d === ',') { i++; continue; }
          if (d === ')') { i++; break; }
          ok = false;
          break;
        }
      }
      if (ok) calls.push({ fn: name.replace(/^(?:window\.|parent\.|top\.)*(?:Meteor\.)?/, ''), args: args });
      else skipStatement();
    }
    return calls;

    function skipSpaceOnly() {
      while (i < n && /[ \t\r\n]/.test(src.charAt(i))) i++;
    }
  }

  /* ================================================================== *
   * FRAME ROLE: runs inside stream.html, same origin as /push
   * ================================================================== */

  function startFrame() {
    var parentOrigin = (function () {
      var m = /(?:^#|&)origin=([^&]*)/.exec(location.hash);
      var o = m ? decodeURIComponent(m[1]) : '';
      return o && o !== 'null' ? o : '*';
    })();
    var cfg = { debugmode: false };
    var log = makeLogger('[meteor frame]', function () { return cfg.debugmode; });

    function post(msg) {
      msg.tag = TAG;
      window.parent.postMessage(msg, parentOrigin);
    }

    /* ---- engine state ---- */
    var channels = {};       // name -> {backtrack, last (Number|null), probing, empty}
    var mode = 'stream';
    var status = -1;
    var generation = 0;      // bumps on every (re)connect; stale callbacks check it
    var running = false;
    var failures = 0;        // consecutive failed attempts, for back-off
    var silentStreams = 0;   // consecutive stream connections without pings
    var pollInterval = 0;    // current smartpoll interval
    var timer = null;        // pending reconnect / next poll
    var current = null;      // the request in flight: {gen, start, gotData, delivered, complete, watchdog, abort()}

    function setStatus(s) {
      if (s === status) return;
      status = s;
      post({ t: 'status', status: s });
    }

    function clearTimer() { if (timer) { clearTimeout(timer); timer = null; } }

    function stopCurrent() {
      if (current) {
        var c = current;
        current = null;
        if (c.watchdog) clearTimeout(c.watchdog);
        try { c.abort(); } catch (e) { /* already closed */ }
      }
    }

    function serverMode() {
      if (mode === 'stream') return useIframe() ? 'iframe' : 'xhrinteractive';
      return mode;
    }

    function useIframe() {
      if (cfg.streamtransport === 'iframe') return true;
      return !(window.fetch && window.ReadableStream && window.TextDecoder && window.AbortController);
    }

    function isShortPoll() { return mode === 'smartpoll' || mode === 'simplepoll'; }

    function channelSpec(name) {
      var ch = channels[name];
      if (ch.last !== null) return name + '.r' + (ch.last + 1);
      if (ch.backtrack > 0) return name + '.b' + ch.backtrack;
      if (isShortPoll()) {
        // A short poll with a live-only channel would never see anything:
        // learn the position first. Empty history => every later message is
        // new, so .r1 from then on is exact.
        if (ch.empty) return name + '.r1';
        ch.probing = true;
        return name + '.b1';
      }
      return name;
    }

    function pushUrl() {
      var specs = [];
      for (var name in channels) {
        if (Object.prototype.hasOwnProperty.call(channels, name)) specs.push(channelSpec(name));
      }
      if (!specs.length) return null;
      var path = (cfg.pushpath || '/push').replace(/\/+$/, '');
      return path + '/' + cfg.hostid + '/' + serverMode() + '/' + specs.join('/') +
        '?nc=' + now().toString(36) + randomId(4);
    }

    /* ---- what the server's templates call ---- */

    function handleCalls(gen, calls) {
      for (var k = 0; k < calls.length; k++) {
        if (gen !== generation || !current) return;
        var c = calls[k];
        switch (c.fn) {
          case 'p':
          case 'process':
            onMessage(c.args[0], c.args[1], c.args[2]);
            break;
          case 'ch':
          case 'channelInfo':
            onChannelInfo(c.args[0], c.args[1]);
            break;
          case 'eof':
            // Only a stream ends for good. A poll that says eof (the server
            // is shutting down) just ends; the next poll finds the new one.
            if (mode !== 'stream') break;
            onEof();
            return;
          case 'clearpoll':
            current.complete = true;
            break;
          default:
            break; // register() and friends: nothing to do here
        }
      }
    }

    function alive() {
      if (!current) return;
      current.gotData = true;
      failures = 0;
      if (mode === 'stream') silentStreams = 0;
      armWatchdog();
      setStatus(5);
    }

    function onMessage(rawId, chan, text) {
      var id = toId(rawId);
      alive();
      if (!(id >= 0) || typeof chan !== 'string') return; // ping (id -1) or junk
      var ch = channels[chan];
      if (!ch) return;
      if (ch.probing) {
        ch.probing = false;
        if (ch.last === null || id > ch.last) ch.last = id;
        log('position of', chan, 'is', id);
        return;
      }
      if (ch.last !== null && id <= ch.last) { log('drop duplicate', chan, id); return; }
      ch.last = id;
      if (current) current.delivered++;
      post({ t: 'msg', id: id, channel: chan, text: text == null ? '' : String(text) });
    }

    function onChannelInfo(name, lastId) {
      var ch = channels[name];
      var id = toId(lastId);
      // Only a position for a live-only channel that has none; with a
      // backtrack it would make us drop the backlog we asked for.
      if (ch && ch.last === null && !(ch.backtrack > 0) && id >= 0) ch.last = id;
    }

    function onEof() {
      log('eof from server');
      running = false;
      stopCurrent();
      clearTimer();
      setStatus(6);
      post({ t: 'eof' });
    }

    /* ---- connection life cycle ---- */

    function armWatchdog() {
      if (!current) return;
      if (current.watchdog) clearTimeout(current.watchdog);
      var c = current;
      var limit = isShortPoll() ? cfg.polltimeout : cfg.pingtimeout;
      c.watchdog = setTimeout(function () {
        if (current !== c) return;
        log('no data for', limit, 'ms');
        // No ping at all (not even response headers, which a buffering
        // proxy may hold back too): this connection counts as silent.
        var silentStream = mode === 'stream' && !c.gotData;
        finish(c, 'timeout');
        if (silentStream && ++silentStreams >= SILENT_STREAMS_BEFORE_FALLBACK) {
          log('stream stays silent, falling back to', FALLBACK_MODE);
          silentStreams = 0;
          setMode(FALLBACK_MODE);
        }
      }, limit);
    }

    function setMode(m) {
      if (m === mode) return;
      mode = m;
      post({ t: 'mode', mode: m });
    }

    /* One attempt ended: decide when and how to try again. */
    function finish(c, how) {
      if (current !== c) return;
      stopCurrent();
      if (!running) return;
      for (var name in channels) {
        if (!Object.prototype.hasOwnProperty.call(channels, name)) continue;
        var ch = channels[name];
        if (ch.probing) { ch.probing = false; if (how === 'done') ch.empty = true; }
      }
      var lived = now() - c.start;
      if (how === 'done' && isShortPoll()) {
        schedule(nextPollDelay(c.delivered > 0), false);
      } else if (how === 'done' && (c.delivered > 0 || c.complete || lived >= MIN_HEALTHY_CONNECTION)) {
        // Normal end (long-poll answered, MaxTime): straight back.
        if (mode === 'stream') post({ t: 'reset', reason: 'closed' });
        schedule(0, false);
      } else {
        failures++;
        setStatus(1);
        post({ t: 'reset', reason: how });
        schedule(backoffDelay(failures), true);
      }
    }

    function nextPollDelay(gotMessages) {
      var min = cfg.minpollfreq, max = Math.max(cfg.minpollfreq, cfg.maxpollfreq);
      if (mode === 'simplepoll') return cfg.pollfreq;
      if (!pollInterval) pollInterval = Math.min(max, Math.max(min, cfg.pollfreq));
      pollInterval = gotMessages ? Math.max(min, Math.floor(pollInterval / 2))
        : Math.min(max, Math.ceil(pollInterval * 1.5));
      return pollInterval;
    }

    function schedule(delay, isRetry) {
      clearTimer();
      log(isRetry ? 'retry in' : 'next request in', delay, 'ms');
      timer = setTimeout(function () { timer = null; open(); }, delay);
    }

    function open() {
      if (!running) return;
      stopCurrent();
      var url = pushUrl();
      if (!url) { setStatus(4); return; }
      generation++;
      var c = {
        gen: generation, start: now(), gotData: false,
        delivered: 0, complete: false, watchdog: null, abort: function () {}
      };
      current = c;
      if (status !== 5) setStatus(1);
      log('GET', url);
      armWatchdog();
      if (serverMode() === 'iframe') openIframe(c, url);
      else openFetch(c, url);
    }

    /* fetch(): streamed for the persistent modes, one body for short polls.
     * The stream and long-poll bodies are split at message boundaries
     * (</script> resp. end of line) and parsed as they arrive. */
    function openFetch(c, url) {
      var ctl = new AbortController();
      c.abort = function () { ctl.abort(); };
      var isStream = mode === 'stream';
      var pending = '';
      var decoder = new TextDecoder('utf-8');

      function consume(final) {
        var calls = [];
        var cut;
        if (isStream) {
          while ((cut = pending.indexOf('</script>')) >= 0) {
            var seg = pending.slice(0, cut);
            pending = pending.slice(cut + 9);
            var open = seg.lastIndexOf('<script');
            var body = open >= 0 ? seg.slice(seg.indexOf('>', open) + 1) : seg;
            calls = calls.concat(parseCalls(body));
          }
        } else {
          cut = final ? pending.length : pending.lastIndexOf('\n') + 1;
          if (cut > 0) {
            calls = parseCalls(pending.slice(0, cut));
            pending = pending.slice(cut);
          }
        }
        if (calls.length) handleCalls(c.gen, calls);
        return pending.length <= MAX_PENDING_CHARS;
      }

      window.fetch(url, { signal: ctl.signal, cache: 'no-store', credentials: 'same-origin' })
        .then(function (res) {
          if (current !== c) return null;
          if (!res.ok) throw new Error('HTTP ' + res.status);
          // The server accepted the subscription: we are receiving. (Only
          // parsed messages and pings count as liveness for the watchdog.)
          setStatus(5);
          if (!res.body || !res.body.getReader) {
            return res.text().then(function (t) { pending += t; consume(true); });
          }
          var reader = res.body.getReader();
          function pump() {
            return reader.read().then(function (r) {
              if (current !== c) { reader.cancel().catch(function () {}); return null; }
              if (r.done) { pending += decoder.decode(); consume(true); return null; }
              pending += decoder.decode(r.value, { stream: true });
              if (!consume(false)) throw new Error('unparseable stream');
              return pump();
            });
          }
          return pump();
        })
        .then(function () {
          if (current === c) finish(c, 'done');
        }, function (err) {
          if (current !== c) return;
          log('request failed:', err && err.message);
          finish(c, 'error');
        });
    }

    /* The classic forever-iframe: the server's page calls
     * parent.Meteor.register(this) and then p(id,"chan","text") per message. */
    function openIframe(c, url) {
      var f = document.createElement('iframe');
      f.setAttribute('aria-hidden', 'true');
      f.tabIndex = -1;
      f.style.cssText = 'position:absolute;width:0;height:0;border:0;left:-9999px';
      c.frame = f;
      c.abort = function () {
        f.onload = null;
        try { f.src = 'about:blank'; } catch (e) { /* ignore */ }
        if (f.parentNode) f.parentNode.removeChild(f);
      };
      f.onload = function () { if (current === c) finish(c, 'done'); };
      f.src = url;
      // A forever-iframe added before this frame finished loading would hold
      // the page's load event (the endless "hourglass") for good.
      if (document.readyState === 'complete') document.body.appendChild(f);
      else {
        window.addEventListener('load', function () {
          if (current === c) document.body.appendChild(f);
        });
      }
    }

    function register(w) {
      var c = current;
      if (!c || !c.frame || c.frame.contentWindow !== w) return;
      setStatus(5);
      var gen = c.gen;
      w.p = function (id, chan, text) { handleCalls(gen, [{ fn: 'p', args: [id, chan, text] }]); };
      w.eof = function () { handleCalls(gen, [{ fn: 'eof', args: [] }]); };
      w.ch = function (name, id) { handleCalls(gen, [{ fn: 'ch', args: [name, id] }]); };
    }

    /* ---- commands from the page ---- */

    function configure(c) {
      running = false;
      stopCurrent();
      clearTimer();
      cfg = {
        hostid: String(c.hostid),
        pushpath: c.pushpath,
        debugmode: !!c.debugmode,
        pingtimeout: Math.max(1000, Number(c.pingtimeout) || 20000),
        polltimeout: Math.max(1000, Number(c.polltimeout) || 30000),
        pollfreq: Math.max(100, Number(c.pollfreq) || 2000),
        minpollfreq: Math.max(100, Number(c.minpollfreq) || 2000),
        maxpollfreq: Math.max(100, Number(c.maxpollfreq) || 60000),
        streamtransport: c.streamtransport
      };
      mode = MODES[c.mode] ? c.mode : 'stream';
      pollInterval = 0;
      failures = 0;
      silentStreams = 0;
      var next = {};
      for (var k = 0; k < c.channels.length; k++) {
        var d = c.channels[k];
        var old = channels[d.name];
        var last = d.last === null || d.last === undefined ? null : toId(d.last);
        if (old && old.last !== null && (last === null || old.last > last)) last = old.last;
        next[d.name] = {
          backtrack: Math.max(0, Math.floor(Number(d.backtrack) || 0)),
          last: isNaN(last) ? null : last,
          probing: false,
          empty: false
        };
      }
      channels = next;
      running = true;
      log('connect', mode, JSON.stringify(channels));
      open();
    }

    window.addEventListener('message', function (ev) {
      if (ev.source !== window.parent) return;
      if (parentOrigin !== '*' && ev.origin !== parentOrigin) return;
      var d = ev.data;
      if (!d || d.tag !== TAG) return;
      if (d.t === 'connect') configure(d);
      else if (d.t === 'disconnect') {
        running = false;
        stopCurrent();
        clearTimer();
      }
    });

    window.Meteor = {
      register: register,
      process: function (id, chan, text) {
        if (current) handleCalls(current.gen, [{ fn: 'p', args: [id, chan, text] }]);
      },
      channelInfo: function (name, id) {
        if (current) handleCalls(current.gen, [{ fn: 'ch', args: [name, id] }]);
      },
      clearpoll: function () { if (current) current.complete = true; },
      eof: function () { if (current) handleCalls(current.gen, [{ fn: 'eof', args: [] }]); },
      parseCalls: parseCalls
    };

    post({ t: 'ready' });
  }

  /* ================================================================== *
   * PAGE ROLE: the public Meteor API
   * ================================================================== */

  function startPage() {
    if (window.Meteor && window.Meteor.isMeteorJs) return; // loaded twice

    var frame = null;          // the stream.html iframe
    var frameOrigin = null;
    var frameReady = false;
    var frameTimer = null;
    var frameFailures = 0;
    var wanted = false;        // connect() called and not disconnected
    var waitingForLoad = false;

    var M = {
      isMeteorJs: true,
      hostid: '',
      host: '',
      port: null,              // null: 80 (https: 443), or the page's own port when host is unset
      mode: 'stream',
      debugmode: false,
      pingtimeout: 20000,
      pollfreq: 2000,
      minpollfreq: 2000,
      maxpollfreq: 60000,
      polltimeout: 30000,
      status: 0,
      /* Extensions: path of the dynamic pages (SubscriberDynamicPageAddress)
       * and, for tests, the stream transport ('auto' or 'iframe'). */
      pushpath: '/push',
      streamtransport: 'auto',
      channels: {},
      channelcount: 0,
      callbacks: {}
    };
    for (var e = 0; e < EVENTS.length; e++) M.callbacks[EVENTS[e]] = [];

    var log = makeLogger('[meteor]', function () { return M.debugmode; });

    function fire(evt, args) {
      var list = M.callbacks[evt].slice();
      for (var i = 0; i < list.length; i++) {
        try {
          list[i].apply(M, args);
        } catch (err) {
          // One broken callback must not starve the others or the transport.
          if (window.reportError) window.reportError(err);
          else if (window.console) window.console.error(err);
        }
      }
    }

    function setStatus(s) {
      if (M.status === s) return;
      M.status = s;
      log('status', s);
      fire('statuschanged', [s]);
    }

    function baseUrl() {
      var proto = location.protocol === 'https:' ? 'https:' : 'http:';
      var host = M.host;
      var port = M.port;
      if (!host) {
        host = location.hostname;
        if (port === null || port === undefined || port === '') port = location.port;
      }
      var dflt = proto === 'https:' ? '443' : '80';
      port = port === null || port === undefined || port === '' ? dflt : String(port);
      if (host.indexOf(':') >= 0 && host.charAt(0) !== '[') host = '[' + host + ']';
      return proto + '//' + host + (port === dflt ? '' : ':' + port);
    }

    function channelList() {
      var out = [];
      for (var name in M.channels) {
        if (!Object.prototype.hasOwnProperty.call(M.channels, name)) continue;
        var ch = M.channels[name];
        out.push({ name: name, backtrack: ch.backtrack, last: ch.lastmsgreceived });
      }
      return out;
    }

    function send(msg) {
      if (!frame || !frameReady || !frame.contentWindow) return;
      msg.tag = TAG;
      frame.contentWindow.postMessage(msg, frameOrigin);
    }

    function sendConnect() {
      send({
        t: 'connect', hostid: M.hostid, mode: M.mode, channels: channelList(),
        debugmode: M.debugmode, pingtimeout: M.pingtimeout, polltimeout: M.polltimeout,
        pollfreq: M.pollfreq, minpollfreq: M.minpollfreq, maxpollfreq: M.maxpollfreq,
        pushpath: M.pushpath, streamtransport: M.streamtransport
      });
    }

    function dropFrame() {
      if (frameTimer) { clearTimeout(frameTimer); frameTimer = null; }
      if (frame) {
        send({ t: 'disconnect' });
        if (frame.parentNode) frame.parentNode.removeChild(frame);
      }
      frame = null;
      frameReady = false;
    }

    function loadFrame() {
      dropFrame();
      if (!wanted) return;
      if (document.readyState !== 'complete') {
        // Open the stream after the page has loaded: a streaming frame
        // started earlier keeps the browser's "loading" indicator spinning.
        if (!waitingForLoad) {
          waitingForLoad = true;
          window.addEventListener('load', function () {
            waitingForLoad = false;
            if (wanted && !frame) loadFrame();
          });
        }
        return;
      }
      var base = baseUrl();
      var origin = location.origin && location.origin !== 'null' ? location.origin : '*';
      var f = document.createElement('iframe');
      f.title = 'Meteor stream';
      f.setAttribute('aria-hidden', 'true');
      f.tabIndex = -1;
      f.style.cssText = 'position:absolute;width:0;height:0;border:0;left:-9999px;top:-9999px';
      f.src = base + '/stream.html#origin=' + encodeURIComponent(origin);
      frameOrigin = new URL(f.src, location.href).origin;
      frame = f;
      setStatus(2);
      frameTimer = setTimeout(function () {
        frameTimer = null;
        if (frame !== f || frameReady) return;
        frameFailures++;
        log('stream.html did not answer, retrying');
        setStatus(3);
        if (f.parentNode) f.parentNode.removeChild(f);
        frame = null;
        setTimeout(function () { if (wanted && !frame) loadFrame(); }, backoffDelay(frameFailures));
      }, FRAME_TIMEOUT);
      document.body.appendChild(f);
    }

    window.addEventListener('message', function (ev) {
      if (!frame || ev.source !== frame.contentWindow || ev.origin !== frameOrigin) return;
      var d = ev.data;
      if (!d || d.tag !== TAG) return;
      switch (d.t) {
        case 'ready':
          frameReady = true;
          frameFailures = 0;
          if (frameTimer) { clearTimeout(frameTimer); frameTimer = null; }
          setStatus(4);
          if (wanted) sendConnect();
          break;
        case 'msg':
          M.process(d.id, d.channel, d.text);
          break;
        case 'status':
          if (d.status !== 4 || M.status < 4) setStatus(d.status);
          break;
        case 'mode':
          if (M.mode !== d.mode) {
            M.mode = d.mode;
            log('mode', d.mode);
            fire('changemode', [d.mode]);
          }
          break;
        case 'reset':
          fire('reset', [d.reason]);
          break;
        case 'eof':
          wanted = false;
          setStatus(6);
          fire('eof', []);
          break;
        default:
          break;
      }
    });

    M.joinChannel = function (name, backtrack) {
      name = String(name);
      if (!/^[A-Za-z0-9_\-%]+$/.test(name)) {
        log('invalid channel name', name);
        return;
      }
      var bt = Math.max(0, Math.floor(Number(backtrack) || 0));
      if (M.channels[name]) {
        M.channels[name].backtrack = bt;
      } else {
        M.channels[name] = { backtrack: bt, lastmsgreceived: null };
        M.channelcount++;
      }
      if (wanted) sendConnect();
    };

    M.leaveChannel = function (name) {
      if (!M.channels[name]) return;
      delete M.channels[name];
      M.channelcount--;
      if (wanted) sendConnect();
    };

    M.connect = function () {
      if (!M.hostid) M.hostid = randomId(HOSTID_LENGTH);
      M.hostid = String(M.hostid).toLowerCase();
      if (!/^[0-9a-z]+$/.test(M.hostid)) {
        log('hostid must be [0-9a-z]+, generating one');
        M.hostid = randomId(HOSTID_LENGTH);
      }
      if (!MODES[M.mode]) M.mode = 'stream';
      wanted = true;
      if (frame && frameReady) sendConnect();
      else if (!frame) loadFrame();
      // else: the frame is still loading; its "ready" sends the settings.
    };

    M.disconnect = function () {
      wanted = false;
      dropFrame();
      setStatus(0);
    };

    M.registerEventCallback = function (evt, fn) {
      if (!M.callbacks[evt] || typeof fn !== 'function') return false;
      M.callbacks[evt].push(fn);
      return true;
    };

    /* Deliver one message: strictly increasing ids per channel. */
    M.process = function (id, channel, text) {
      id = toId(id);
      if (!(id >= 0)) return; // ping
      var ch = M.channels[channel];
      if (!ch) return;
      if (ch.lastmsgreceived !== null && id <= ch.lastmsgreceived) return;
      ch.lastmsgreceived = id;
      fire('process', [text, id, channel]);
    };

    M.channelInfo = function (name, lastId) {
      var ch = M.channels[name];
      var id = toId(lastId);
      if (ch && ch.lastmsgreceived === null && !(ch.backtrack > 0) && id >= 0) ch.lastmsgreceived = id;
    };

    /* For the classic iframe template when a page hosts it itself. */
    M.register = function (w) {
      w.p = function (id, chan, text) { M.process(id, chan, text); };
      w.ch = function (name, id) { M.channelInfo(name, id); };
      w.eof = function () { wanted = false; setStatus(6); fire('eof', []); };
    };

    M.clearpoll = function () {};

    window.Meteor = M;
  }

  if (isFrame) startFrame();
  else startPage();
})(window, document);
