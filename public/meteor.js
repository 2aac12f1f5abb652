/*
 * meteor.js — browser client for meteord (a Rust Meteor Comet server).
 *
 * Written from scratch; API-compatible with the classic Meteor client: the
 * same properties with the same defaults and values, the same functions,
 * errors (thrown strings), events and status codes, so that a page written
 * for the original sees what it saw there:
 *
 *   Meteor.hostid = "1234567";                 // optional, made up if unset
 *   Meteor.host = "data." + location.hostname;  // where meteord answers
 *   Meteor.registerEventCallback("process", addMsg);
 *   Meteor.joinChannel("chat", 10);            // last 10 messages, then live
 *   Meteor.mode = 'stream';                    // or a mode name, see below
 *   Meteor.connect();                          // Meteor.mode: 'xhrinteractive'
 *
 * Meteor.mode is a mode name of the server, the path segment of
 * /push/<hostid>/<mode>/...; 'stream' (the default) is resolved by
 * connect() to xhrinteractive, or to iframe where fetch() cannot stream:
 *     xhrinteractive -> read with a fetch() ReadableStream; the
 *                   <script>p(id,"chan","text")</script> chunks are PARSED
 *                   (never evaluated).
 *     iframe     -> the classic forever-iframe; its parent.Meteor.register
 *                   (this) and p(...) calls land in the frame below.
 *     longpoll   -> one request at a time, the next one pollfreq (set to
 *                   minpollfreq by connect()) after the last one began.
 *     smartpoll  -> short polls every pollfreq ms; every 10 s pollfreq moves
 *                   towards half the mean gap between messages (-10 % down
 *                   to minpollfreq, +5 % up to maxpollfreq; Meteor.pollfreq
 *                   follows).
 *     simplepoll -> short polls every pollfreq ms.
 *   Any other name is polled like simplepoll. Meteor.pollhost, when set, is
 *   the host for longpoll, smartpoll and simplepoll (Meteor.host for the
 *   rest). A stream whose pings stop coming falls back to smartpoll.
 *
 * How it works (why a frame):
 *   The page usually lives on www.example.com and meteord on
 *   data.example.com. Browsers no longer let the two share a document.domain
 *   (the original's way), and a cross-origin XHR cannot read /push without
 *   CORS. So connect() loads a hidden iframe, stream.html, FROM meteord
 *   (host or pollhost, as the mode says). That frame loads this same file
 *   (marked with data-meteor-frame) and runs every transport there,
 *   same-origin with /push. The frame relays messages, status and mode
 *   changes to the page with postMessage. Both sides check the peer window
 *   AND its origin: the page accepts only its own frame from the meteord
 *   origin; the frame talks only to its parent at the origin the parent
 *   named when it created the frame (channel data is public anyway: the
 *   poll modes are readable by any <script src>).
 *
 * Nothing missed, nothing twice:
 *   Each channel remembers the id of the last message delivered. Every
 *   (re)connect asks for <chan>.r<last+1>; while nothing was seen yet it asks
 *   for <chan>.b<backtrack> (backtrack > 0), <chan>.h (any other backtrack
 *   given, 0 included: the whole history) or <chan> (none given: live only;
 *   the short-poll modes, which would then never see anything, probe the
 *   position with .b1 instead). Both the frame and the page drop any message
 *   whose id is <= the last one delivered on its channel, so callbacks see
 *   strictly increasing ids. Ids are compared as Numbers (safe up to 2^53).
 *
 * Status codes (Meteor.status, "statuschanged" callbacks), as the original:
 *   0 uninitialised / disconnected (also: connect() again while connected),
 *   1 loading stream (also: reconnecting), 3 controller frame timeout
 *   (retrying), 4 controller frame loaded and ready (stream modes only),
 *   5 receiving data, 6 end of stream: the server sent eof (shutdown, or
 *   another connection with the same hostid took over); the library does
 *   not reconnect by itself, the application may call connect() again.
 *   (2, "loading controller frame", is listed by the original but never
 *   reported by it, nor here.) A first connect reads 1, 4, 5 (stream) or
 *   1, 5 (poll).
 *
 * Events (registerEventCallback chains callbacks in registration order;
 * Meteor.callbacks[event] is one function, as in the original):
 *   process(text, id, channel)  a message (id and channel: our extension)
 *   reset(reason)               a stream ended and is being re-opened
 *   eof()                       the server ended the stream; then status 6
 *   statuschanged(status)       status changed
 *   changemode("poll")          the stream fell back to smartpoll (Meteor.mode
 *                               reads 'smartpoll'): two stream connections
 *                               in a row without a ping within pingtimeout
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
  /* The mode stream falls back to, as the original's does: short polls
   * always complete, even through buffering proxies. */
  var FALLBACK_MODE = 'smartpoll';
  /* The smart poll rate follows the original's rule: every 10 s compare half
   * the mean gap between the last (up to 5) arrivals (and now) with
   * pollfreq, then cut pollfreq by 10 % while it is above minpollfreq or
   * raise it by 5 % while it is below maxpollfreq. */
  var SMARTPOLL_UPDATE_EVERY = 10000;
  var SMARTPOLL_ARRIVALS_KEPT = 5;
  var SMARTPOLL_FASTER = 0.9;
  var SMARTPOLL_SLOWER = 1.05;
  /* Shortest pause before the next request after one ended (the original's
   * floor too): the next request is due pollfreq after the last one began. */
  var MIN_REQUEST_GAP = 10;
  /* Unparsed bytes we are willing to hold while waiting for the end of a
   * message; a stream that exceeds it is broken and gets re-opened. */
  var MAX_PENDING_CHARS = 4 * 1024 * 1024;
  /* Tag on every postMessage payload so unrelated messages are ignored. */
  var TAG = 'meteor.js/1';

  /* Meteor.mode takes the original's values: the server's mode names.
   * 'stream' is not one; connect() resolves it to a transport. The stream
   * transports hold one connection open; every other mode polls. */
  var STREAM_MODES = { xhrinteractive: 1, iframe: 1, serversent: 1 };
  /* The modes whose requests go to Meteor.pollhost when it is set. */
  var POLLHOST_MODES = { longpoll: 1, smartpoll: 1, simplepoll: 1 };
  /* A mode name the server's request line can carry. */
  var MODE_SYNTAX = /^[0-9a-z]+$/i;
  var EVENTS = ['process', 'reset', 'eof', 'statuschanged', 'changemode'];

  var script = document.currentScript;
  var isFrame = !!(script && script.hasAttribute('data-meteor-frame'));

  /* ------------------------------------------------------------------ *
   * Small helpers shared by both roles
   * ------------------------------------------------------------------ */

  function now() { return new Date().getTime(); }

  function has(obj, key) { return Object.prototype.hasOwnProperty.call(obj, key); }

  function isStreamMode(m) { return has(STREAM_MODES, m); }

  /* What 'stream' means here. The original picks the forever-iframe only
   * where ActiveXObject (IE) or addEventStream (Opera <= 12) exists, and
   * xhrinteractive everywhere else; none of the browsers this file supports
   * has either. Ours reads xhrinteractive with a streamed fetch(), so it
   * needs the iframe only where that is missing. */
  function streamTransport() {
    var fetchStreams = !!(window.fetch && window.ReadableStream && window.TextDecoder &&
      window.AbortController);
    return fetchStreams ? 'xhrinteractive' : 'iframe';
  }

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
    var channels = {};       // name -> {backtrack (Number|null), last (Number|null), probing, empty}
    var mode = 'xhrinteractive';
    var status = -1;
    var generation = 0;      // bumps on every (re)connect; stale callbacks check it
    var running = false;
    var failures = 0;        // consecutive failed attempts, for back-off
    var silentStreams = 0;   // consecutive stream connections without pings
    var pollfreq = 3000;     // current poll interval (smartpoll adapts it)
    var arrivals = [];       // smartpoll: times of the last few messages
    var pollfreqTimer = null;
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

    /* Every mode but the stream transports and longpoll asks once and gets
     * one complete answer (the original treats unknown modes so too). */
    function isShortPoll() { return !isStreamMode(mode) && mode !== 'longpoll'; }

    /* The original's markers: after a message .r<next id>; before, .b<n>
     * for a backtrack above 0, .h (the whole history) for any other given
     * backtrack (0 included), and no marker (live only) without one. */
    function channelSpec(name) {
      var ch = channels[name];
      if (ch.last !== null) return name + '.r' + (ch.last + 1);
      if (ch.backtrack > 0) return name + '.b' + Math.floor(ch.backtrack);
      if (ch.backtrack !== null) return name + '.h';
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
      return path + '/' + cfg.hostid + '/' + mode + '/' + specs.join('/') +
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
            if (!isStreamMode(mode)) break;
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
      if (isStreamMode(mode)) silentStreams = 0;
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
      if (mode === 'smartpoll') {
        arrivals.push(now());
        while (arrivals.length > SMARTPOLL_ARRIVALS_KEPT) arrivals.shift();
      }
      post({ t: 'msg', id: id, channel: chan, text: text == null ? '' : String(text) });
    }

    function onChannelInfo(name, lastId) {
      var ch = channels[name];
      var id = toId(lastId);
      // Only a position for a live-only channel that has none; with a
      // backtrack (or .h) it would make us drop the backlog we asked for.
      if (ch && ch.last === null && ch.backtrack === null && id >= 0) ch.last = id;
    }

    function onEof() {
      log('eof from server');
      stopRunning();
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
        // No ping at all (a buffering proxy holds them back): this
        // connection counts as silent.
        if (isStreamMode(mode) && !c.gotData && ++silentStreams >= SILENT_STREAMS_BEFORE_FALLBACK) {
          log('stream stays silent, falling back to', FALLBACK_MODE);
          silentStreams = 0;
          // No reset event: the page connects again in the new mode, as the
          // original does (and from pollhost's frame when it has one).
          stopRunning();
          setMode(FALLBACK_MODE);
          return;
        }
        finish(c, 'timeout');
      }, limit);
    }

    function setMode(m) {
      if (m === mode) return;
      mode = m;
      startSmartpoll();
      post({ t: 'mode', mode: m });
    }

    /* The original's smart poll rate rule (see SMARTPOLL_*), reported to the
     * page so that Meteor.pollfreq reads the interval in use. */
    function adaptPollfreq() {
      var n = arrivals.length;
      var gaps = 0;
      for (var i = 1; i < n; i++) gaps += arrivals[i] - arrivals[i - 1];
      gaps += now() - arrivals[n - 1];
      var target = gaps / n / 2;
      var old = pollfreq;
      if (target < pollfreq && pollfreq > cfg.minpollfreq) pollfreq = Math.ceil(pollfreq * SMARTPOLL_FASTER);
      if (target > pollfreq && pollfreq < cfg.maxpollfreq) pollfreq = Math.floor(pollfreq * SMARTPOLL_SLOWER);
      if (pollfreq !== old) post({ t: 'pollfreq', pollfreq: pollfreq });
    }

    function startSmartpoll() {
      if (pollfreqTimer) { clearInterval(pollfreqTimer); pollfreqTimer = null; }
      if (mode !== 'smartpoll' || !running) return;
      arrivals = [now()];
      pollfreqTimer = setInterval(adaptPollfreq, SMARTPOLL_UPDATE_EVERY);
    }

    function stopRunning() {
      running = false;
      stopCurrent();
      clearTimer();
      if (pollfreqTimer) { clearInterval(pollfreqTimer); pollfreqTimer = null; }
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
      // As the original: the next request is due pollfreq after this one
      // began (a stream or long poll that lived longer goes straight back).
      var due = Math.max(MIN_REQUEST_GAP, pollfreq - lived);
      if (how === 'done' && (isShortPoll() || c.delivered > 0 || c.complete ||
          lived >= MIN_HEALTHY_CONNECTION)) {
        // The original's reset event: a stream ended and is re-opened.
        if (isStreamMode(mode)) post({ t: 'reset', reason: 'closed' });
        schedule(due, false);
      } else {
        failures++;
        setStatus(1);
        if (isStreamMode(mode)) post({ t: 'reset', reason: how });
        schedule(Math.max(due, backoffDelay(failures)), true);
      }
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
      if (mode === 'iframe') openIframe(c, url);
      else openFetch(c, url);
    }

    /* fetch(): streamed for the persistent modes, one body for short polls.
     * The stream and long-poll bodies are split at message boundaries
     * (</script> resp. end of line) and parsed as they arrive. */
    function openFetch(c, url) {
      var ctl = new AbortController();
      c.abort = function () { ctl.abort(); };
      var isStream = isStreamMode(mode);
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
      stopRunning();
      cfg = {
        hostid: String(c.hostid),
        pushpath: c.pushpath,
        debugmode: !!c.debugmode,
        pingtimeout: Math.max(1000, Number(c.pingtimeout) || 20000),
        polltimeout: Math.max(1000, Number(c.polltimeout) || 30000),
        minpollfreq: Number(c.minpollfreq) || 2000,
        maxpollfreq: Number(c.maxpollfreq) || 60000
      };
      mode = MODE_SYNTAX.test(c.mode) && c.mode !== 'stream' ? c.mode : streamTransport();
      pollfreq = Number(c.pollfreq) || 3000;
      // connect() put the page at 1; from here on the frame reports changes.
      status = 1;
      failures = 0;
      silentStreams = 0;
      var next = {};
      for (var k = 0; k < c.channels.length; k++) {
        var d = c.channels[k];
        var old = channels[d.name];
        var last = d.last === null || d.last === undefined ? null : toId(d.last);
        if (old && old.last !== null && (last === null || old.last > last)) last = old.last;
        next[d.name] = {
          backtrack: d.backtrack === undefined || d.backtrack === null ? null : Number(d.backtrack),
          last: isNaN(last) ? null : last,
          probing: false,
          empty: false
        };
      }
      channels = next;
      running = true;
      startSmartpoll();
      log('connect', mode, JSON.stringify(channels));
      open();
    }

    window.addEventListener('message', function (ev) {
      if (ev.source !== window.parent) return;
      if (parentOrigin !== '*' && ev.origin !== parentOrigin) return;
      var d = ev.data;
      if (!d || d.tag !== TAG) return;
      if (d.t === 'connect') configure(d);
      else if (d.t === 'disconnect') stopRunning();
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
   * PAGE ROLE: the public Meteor API, with the original's names, defaults,
   * values and errors (the transport itself runs in the frame)
   * ================================================================== */

  function startPage() {
    if (window.Meteor && window.Meteor.isMeteorJs) return; // loaded twice

    var frame = null;          // the stream.html iframe (also Meteor.frameref)
    var frameOrigin = null;
    var frameReady = false;
    var frameTimer = null;
    var frameFailures = 0;
    var wanted = false;        // connect() called and not disconnected
    var waitingForLoad = false;
    var connectQueued = false;

    function noop() {}

    var M = {
      isMeteorJs: true,
      callbacks: {},
      channelcount: 0,
      channels: {},            // name -> {backtrack, lastmsgreceived (after the first message)}
      debugmode: false,
      frameref: null,
      host: null,              // null: the page's own host (the original throws)
      hostid: null,            // null: connect() makes one, as the original: ms time + 6 random digits
      maxpollfreq: 60000,
      minpollfreq: 2000,
      mode: 'stream',          // connect() resolves 'stream' to xhrinteractive (or iframe)
      pingtimeout: 20000,
      pollfreq: 3000,
      pollhost: null,          // host for longpoll/smartpoll/simplepoll, when set
      polltimeout: 30000,
      port: 80,                // 80 is the default port (443 on an https page)
      status: 0,
      /* Extension: path of the dynamic pages (SubscriberDynamicPageAddress). */
      pushpath: '/push'
    };
    for (var e = 0; e < EVENTS.length; e++) M.callbacks[EVENTS[e]] = noop;

    var log = makeLogger('[meteor]', function () { return M.debugmode; });

    function report(err) {
      if (window.reportError) window.reportError(err);
      else if (window.console) window.console.error(err);
    }

    function fire(evt, args) {
      var fn = M.callbacks[evt];
      if (typeof fn !== 'function') return;
      // A broken callback must not break the transport.
      try { fn.apply(M, args); } catch (err) { report(err); }
    }

    function setStatus(s) {
      if (M.status === s) return;
      M.status = s;
      log('status', s);
      fire('statuschanged', [s]);
    }

    function originOf(url) { return new URL(url, location.href).origin; }

    /* Where meteord answers for the current mode: Meteor.pollhost for the
     * three poll modes when it is set (as the original), Meteor.host
     * otherwise, and the page's own host when that is unset too. */
    function baseUrl() {
      var https = location.protocol === 'https:';
      var dflt = https ? 443 : 80;
      var host = has(POLLHOST_MODES, M.mode) && M.pollhost ? M.pollhost : M.host;
      var port = M.port === null || M.port === undefined || M.port === '' ? 80 : Number(M.port);
      if (!host) {
        host = location.hostname;
        if (port === 80 && location.port) port = Number(location.port);
      }
      host = String(host);
      if (port === 80) port = dflt;
      if (host.indexOf(':') >= 0 && host.charAt(0) !== '[') host = '[' + host + ']';
      return (https ? 'https:' : 'http:') + '//' + host + (port === dflt ? '' : ':' + port);
    }

    function channelList() {
      var out = [];
      for (var name in M.channels) {
        if (!has(M.channels, name)) continue;
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
      // The original reports 4 once its stream frame is there; polls never.
      if (isStreamMode(M.mode)) setStatus(4);
      send({
        t: 'connect', hostid: String(M.hostid), mode: M.mode, channels: channelList(),
        debugmode: !!M.debugmode, pingtimeout: Number(M.pingtimeout), polltimeout: Number(M.polltimeout),
        pollfreq: Number(M.pollfreq), minpollfreq: Number(M.minpollfreq), maxpollfreq: Number(M.maxpollfreq),
        pushpath: String(M.pushpath)
      });
    }

    /* Several connect()s in one task (joinChannel then leaveChannel) send
     * the frame one request: two requests with one hostid racing to meteord
     * could end with the older one closing the newer (eof). */
    function queueConnect() {
      if (connectQueued) return;
      connectQueued = true;
      Promise.resolve().then(function () {
        connectQueued = false;
        if (wanted && frame && frameReady) sendConnect();
      });
    }

    function dropFrame() {
      if (frameTimer) { clearTimeout(frameTimer); frameTimer = null; }
      if (frame) {
        send({ t: 'disconnect' });
        if (frame.parentNode) frame.parentNode.removeChild(frame);
      }
      frame = null;
      M.frameref = null;
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
      var origin = location.origin && location.origin !== 'null' ? location.origin : '*';
      var f = document.createElement('iframe');
      f.title = 'Meteor stream';
      f.setAttribute('aria-hidden', 'true');
      f.tabIndex = -1;
      f.style.cssText = 'position:absolute;width:0;height:0;border:0;left:-9999px;top:-9999px';
      f.src = baseUrl() + '/stream.html#origin=' + encodeURIComponent(origin);
      frameOrigin = originOf(f.src);
      frame = f;
      M.frameref = f;
      frameTimer = setTimeout(function () {
        frameTimer = null;
        if (frame !== f || frameReady) return;
        frameFailures++;
        log('stream.html did not answer, retrying');
        setStatus(3);
        if (f.parentNode) f.parentNode.removeChild(f);
        frame = null;
        M.frameref = null;
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
          if (wanted) sendConnect();
          break;
        case 'msg':
          M.process(d.id, d.channel, d.text);
          break;
        case 'status':
          // 1 (re-opening) and 5 (receiving) come from the transport; 4 and
          // 6 are the page's (frame loaded, eof).
          if (d.status === 1 || d.status === 5) setStatus(d.status);
          break;
        case 'mode':
          // The stream fell back to polling: the original's mode and event.
          M.mode = d.mode;
          log('mode', d.mode);
          fire('changemode', ['poll']);
          // ... then connects again as the original does (status 0, 1; with
          // a pollhost, from a frame loaded there).
          if (wanted) M.connect();
          break;
        case 'pollfreq':
          M.pollfreq = d.pollfreq;
          break;
        case 'reset':
          if (M.status !== 0 && M.status !== 6) fire('reset', [d.reason]);
          break;
        case 'eof':
          M.eof();
          break;
        default:
          break;
      }
    });

    function joinedChannel(name) {
      return typeof name === 'string' && has(M.channels, name) ? M.channels[name] : null;
    }

    /* backtrack as the original: > 0 the last n messages, any other value
     * (0 too) the whole history, left out: live messages only. */
    M.joinChannel = function (name, backtrack) {
      if (!name || !name.length) throw 'No channel specified';
      if (joinedChannel(name)) throw 'Cannot join channel ' + name + ': already subscribed';
      M.channels[name] = { backtrack: backtrack };
      M.channelcount++;
      log('joined channel', name);
      if (M.status !== 0 && M.status !== 6) M.connect();
    };

    M.leaveChannel = function (name) {
      if (!name || !name.length) throw 'No channel specified';
      if (!joinedChannel(name)) throw 'Cannot leave channel ' + name + ': not subscribed';
      delete M.channels[name];
      M.channelcount--;
      log('left channel', name);
      if (M.channelcount && M.status !== 0 && M.status !== 6) M.connect();
      else M.disconnect();
    };

    M.connect = function () {
      if (isNaN(M.port)) throw 'Meteor port not specified';
      if (!M.channelcount) throw 'No channels specified';
      // The original's order: it disconnects first (status 0, unless it was
      // 6) and reports 1 before it makes a hostid and resolves 'stream'.
      if (M.status && M.status !== 6) setStatus(0);
      wanted = true;
      setStatus(1);
      if (!M.hostid || !/^[0-9a-z]+$/i.test(String(M.hostid))) M.hostid = newHostid();
      if (!MODE_SYNTAX.test(M.mode)) M.mode = 'stream';
      if (M.mode === 'stream') M.mode = M.selectStreamTransport();
      if (M.mode === 'longpoll') M.pollfreq = M.minpollfreq;
      log('selected', M.mode, 'transport');
      if (frame && originOf(baseUrl()) !== frameOrigin) dropFrame();
      if (frame && frameReady) queueConnect();
      else if (!frame) loadFrame();
      // else: the frame is still loading; its "ready" sends the settings.
    };

    M.disconnect = function () {
      wanted = false;
      dropFrame();
      if (M.status && M.status !== 6) setStatus(0);
    };

    M.registerEventCallback = function (evt, fn) {
      if (typeof fn !== 'function') return;
      // As the original: one function per event, each registration chained
      // after the earlier ones; any event name; callbacks[evt] may be set by
      // the page too. A throwing callback does not stop the next one.
      var before = M.callbacks[evt];
      M.callbacks[evt] = typeof before !== 'function' ? fn : function () {
        try { before.apply(this, arguments); } catch (err) { report(err); }
        fn.apply(this, arguments);
      };
    };

    /* Deliver one message: strictly increasing ids per channel. The callback
     * gets the text, as the original's, then (an extension) id and channel. */
    M.process = function (id, channel, text) {
      id = toId(id);
      var ch = joinedChannel(channel);
      if (id >= 0 && ch && !(typeof ch.lastmsgreceived === 'number' && id <= ch.lastmsgreceived)) {
        ch.lastmsgreceived = id;
        fire('process', [text, id, channel]);
      }
      if (wanted) setStatus(5);
    };

    M.channelInfo = function (name, lastId) {
      var ch = joinedChannel(name);
      var id = toId(lastId);
      var liveOnly = ch && (ch.backtrack === undefined || ch.backtrack === null);
      if (liveOnly && ch.lastmsgreceived === undefined && id >= 0) ch.lastmsgreceived = id;
    };

    M.reset = function () {
      if (M.status !== 0 && M.status !== 6) fire('reset', []);
    };

    /* The server ended the stream for good: no reconnect. */
    M.eof = function () {
      wanted = false;
      fire('eof', []);
      setStatus(6);
      M.disconnect();
    };

    /* For the classic iframe template when a page hosts it itself. */
    M.register = function (w) {
      w.p = M.process;
      w.r = M.reset;
      w.eof = M.eof;
      w.ch = M.channelInfo;
      setStatus(4);
    };

    M.selectStreamTransport = streamTransport;
    M.isSupportedBrowser = function () { return typeof window.postMessage === 'function'; };
    M.setstatus = setStatus;
    M.log = function (text) { log(text); };
    M.time = now;
    M.clearpoll = noop; // poll answers are parsed in the frame

    window.Meteor = M;
  }

  /* As the original's: the time in ms and up to 6 random digits. */
  function newHostid() {
    var r = new Uint32Array(1);
    if (window.crypto && window.crypto.getRandomValues) window.crypto.getRandomValues(r);
    else r[0] = Math.floor(Math.random() * 4294967296);
    return String(now()) + String(r[0] % 1000000);
  }

  if (isFrame) startFrame();
  else startPage();
})(window, document);
