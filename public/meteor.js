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
 *   Meteor.connect();                          // Meteor.mode: 'websocket'
 *
 * Meteor.token (extension): a subscriber token for channels meteord keeps
 * private (SubscriberTokenChannels); connect() passes it as token= on the
 * URL of every transport's requests (streams and polls alike). Set a new
 * one and connect() again before the old one expires.
 *
 * Meteor.mode is a mode name of the server, the path segment of
 * /push/<hostid>/<mode>/...; 'stream' (the default) is resolved by
 * connect() to the best transport this browser has: websocket, else
 * eventsource, else xhrinteractive, else iframe (where fetch() cannot
 * stream). One that a proxy blocks (no 101, the socket or the stream closes
 * before it opens, or it does not open within 10 s while meteord answers a
 * plain GET) hands over to the next in that order, resuming every channel
 * at its last id; Meteor.mode then names the transport in use:
 *     websocket  -> the browser's WebSocket; meteord sends one JSON text
 *                   frame per event; pings are protocol-level. Every
 *                   (re)connect asks each channel for what follows the
 *                   last id seen. A close with 1001 (meteord shutting down)
 *                   is eof, as the classic streams'.
 *     eventsource-> the browser's EventSource; one JSON event per message.
 *                   The browser re-opens a broken stream itself with
 *                   Last-Event-ID (meteord resumes every channel after it).
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
 *                               (websocket/eventsource set directly: two
 *                               blocked in a row; picked by 'stream': after
 *                               the classic stream, the last of the chain)
 *   gap(channel, requested, oldest)  (extension; websocket, eventsource)
 *                               meteord's history no longer holds what a
 *                               resume asked for: ids requested..oldest-1
 *                               of the channel are gone; fired before the
 *                               channel's next message
 */
/* Assembled by public/build.mjs from public/src/*.js: edit those, then run
 * `node public/build.mjs` (tests/run.sh fails while this file is stale). */
(function (window, document) {
  'use strict';

  /* ---- src/util.js ---- */

  /* util.js — what both roles share that is not about modes or parsing: the
   * postMessage tag, the reconnect back-off, time, ids and the debug logger.
   * No state. (Assembled into public/meteor.js by public/build.mjs.) */

  /* Tag on every postMessage payload so unrelated messages are ignored. */
  var TAG = 'meteor.js/1';
  /* Reconnect back-off after an error: doubles from MIN to MAX, +-20 % jitter
   * so that a restarted server is not hit by every client in the same tick.
   * The frame uses it between requests, the page between stream.html loads. */
  var BACKOFF_MIN = 500;
  var BACKOFF_MAX = 10000;

  function now() { return new Date().getTime(); }

  function has(obj, key) { return Object.prototype.hasOwnProperty.call(obj, key); }

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

  /* ---- src/parse.js ---- */

  /* parse.js — the parser for the JavaScript that meteord's classic templates
   * write (the stream chunks, poll bodies and forever-iframe pages). It turns
   * text into a list of calls and never evaluates anything; transports.js
   * hands the calls to the frame's engine. No state. */

  /* What the templates produce, e.g.
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

  /* ---- src/transports.js ---- */

  /* transports.js — the transports: each carries ONE request of the frame's
   * engine to meteord and turns what comes back into events. They run in the
   * frame only (same origin as /push); modes.js says which mode uses which.
   *
   * The interface (what a new transport, e.g. EventSource or WebSocket,
   * implements):
   *
   *   var t = open(url, sink);   start the request for url (the engine built
   *                              the /push/<hostid>/<mode>/<channels> path)
   *   t.close();                 end it early; afterwards the transport calls
   *                              nothing on the sink any more
   *   t.register(window)         optional: the forever-iframe's page calls
   *                              parent.Meteor.register(this) to get p()...
   *
   * and what it calls on the sink the engine gives it (one sink per request;
   * the engine ignores a sink whose request is no longer the current one):
   *
   *   sink.accepted()                 meteord took the request (status 5)
   *   sink.message(id, channel, text) a message; id -1 (or junk) is a ping,
   *                                   which only proves the line is alive
   *   sink.channelInfo(channel, id)   the position of a live-only channel
   *   sink.complete()                 the answer says it is complete
   *                                   (the templates' clearpoll())
   *   sink.eof()                      the server ended the stream for good
   *   sink.end(how)                   the request is over: 'done' (it ended
   *                                   normally) or 'error'
   *   sink.log(...)                   a debug line (Meteor.debugmode)
   *
   * The classic transports receive template JavaScript; deliverCalls() maps
   * the parsed calls onto the sink, so the engine never sees the framing. */

  /* Unparsed bytes we are willing to hold while waiting for the end of a
   * message; a stream that exceeds it is broken and gets re-opened. */
  var MAX_PENDING_CHARS = 4 * 1024 * 1024;

  /* The classic templates' calls, as sink events. A call after eof still
   * reaches the sink, which drops it because eof ended the request. */
  function deliverCalls(calls, sink) {
    for (var k = 0; k < calls.length; k++) {
      var c = calls[k];
      switch (c.fn) {
        case 'p':
        case 'process':
          sink.message(c.args[0], c.args[1], c.args[2]);
          break;
        case 'ch':
        case 'channelInfo':
          sink.channelInfo(c.args[0], c.args[1]);
          break;
        case 'eof':
          sink.eof();
          break;
        case 'clearpoll':
          sink.complete();
          break;
        default:
          break; // register() and friends: nothing to do here
      }
    }
  }

  /* Framings of a fetch() body: take the complete calls off the front of
   * buf (all of it when final) and return them with what is left. */

  /* A stream: one <script>...</script> chunk per message or ping. */
  function splitScripts(buf) {
    var calls = [];
    var cut;
    while ((cut = buf.indexOf('</script>')) >= 0) {
      var seg = buf.slice(0, cut);
      buf = buf.slice(cut + 9);
      var open = seg.lastIndexOf('<script');
      var body = open >= 0 ? seg.slice(seg.indexOf('>', open) + 1) : seg;
      calls = calls.concat(parseCalls(body));
    }
    return { calls: calls, rest: buf };
  }

  /* A poll answer: plain statements, one per line, parsed line by line as
   * they arrive (a long poll) and whole at the end. */
  function splitLines(buf, final) {
    var cut = final ? buf.length : buf.lastIndexOf('\n') + 1;
    if (cut <= 0) return { calls: [], rest: buf };
    return { calls: parseCalls(buf.slice(0, cut)), rest: buf.slice(cut) };
  }

  /* fetch() with the body read as it arrives and cut by split. */
  function fetchTransport(url, sink, split) {
    var ctl = new AbortController();
    var closed = false;
    var pending = '';
    var decoder = new TextDecoder('utf-8');

    function consume(final) {
      var r = split(pending, final);
      pending = r.rest;
      if (r.calls.length) deliverCalls(r.calls, sink);
      return pending.length <= MAX_PENDING_CHARS;
    }

    window.fetch(url, { signal: ctl.signal, cache: 'no-store', credentials: 'same-origin' })
      .then(function (res) {
        if (closed) return null;
        if (!res.ok) throw new Error('HTTP ' + res.status);
        // The server accepted the subscription: we are receiving. (Only
        // parsed messages and pings count as liveness for the watchdog.)
        sink.accepted();
        if (!res.body || !res.body.getReader) {
          return res.text().then(function (t) { pending += t; consume(true); });
        }
        var reader = res.body.getReader();
        function pump() {
          return reader.read().then(function (r) {
            if (closed) { reader.cancel().catch(function () {}); return null; }
            if (r.done) { pending += decoder.decode(); consume(true); return null; }
            pending += decoder.decode(r.value, { stream: true });
            if (!consume(false)) throw new Error('unparseable stream');
            return pump();
          });
        }
        return pump();
      })
      .then(function () {
        if (!closed) sink.end('done');
      }, function (err) {
        if (closed) return;
        sink.log('request failed:', err && err.message);
        sink.end('error');
      });

    return {
      close: function () { closed = true; ctl.abort(); }
    };
  }

  /* xhrinteractive (and the original's serversent): the stream read with a
   * fetch() ReadableStream, each chunk parsed as it completes. */
  function openScriptStream(url, sink) { return fetchTransport(url, sink, splitScripts); }

  /* longpoll, smartpoll, simplepoll: one answer per request. */
  function openPollBody(url, sink) { return fetchTransport(url, sink, splitLines); }

  /* The classic forever-iframe: the server's page calls
   * parent.Meteor.register(this) (see frame.js) and then p(id,"chan","text")
   * per message. */
  function openForeverIframe(url, sink) {
    var closed = false;
    var f = document.createElement('iframe');
    f.setAttribute('aria-hidden', 'true');
    f.tabIndex = -1;
    f.style.cssText = 'position:absolute;width:0;height:0;border:0;left:-9999px';
    f.onload = function () { if (!closed) sink.end('done'); };
    f.src = url;
    // A forever-iframe added before this frame finished loading would hold
    // the page's load event (the endless "hourglass") for good.
    if (document.readyState === 'complete') document.body.appendChild(f);
    else {
      window.addEventListener('load', function () {
        if (!closed) document.body.appendChild(f);
      });
    }
    return {
      close: function () {
        closed = true;
        f.onload = null;
        try { f.src = 'about:blank'; } catch (e) { /* ignore */ }
        if (f.parentNode) f.parentNode.removeChild(f);
      },
      register: function (w) {
        if (closed || f.contentWindow !== w) return;
        sink.accepted();
        w.p = function (id, chan, text) { sink.message(id, chan, text); };
        w.eof = function () { sink.eof(); };
        w.ch = function (name, id) { sink.channelInfo(name, id); };
      }
    };
  }

  /* ---- src/native.js ---- */

  /* native.js — the transports on the browser's own EventSource and
   * WebSocket (modes eventsource and websocket), the same interface as
   * transports.js. Both carry meteord's JSON events, one object each:
   *   {"type":"message","id":17,"channel":"chat","text":"..."}
   *   {"type":"gap","channel":"chat","requested":5,"oldest":120}
   * Neither lets script see the server's pings (EventSource comment lines,
   * WebSocket ping frames), so what proves such a connection alive is that
   * it opened (sink.accepted); the engine treats the rows as quietPings.
   *
   * What they add to the sink calls of transports.js:
   *   sink.gap(channel, requested, oldest)  history no longer holds what the
   *                                         request asked for (from oldest on
   *                                         the messages are complete again)
   *   sink.reconnecting()                   the browser lost the connection and
   *                                         re-opens it by itself (EventSource)
   *   sink.end('refused')                   it closed before it ever opened: a
   *                                         proxy may refuse it (frame.js asks) */

  /* The JSON event types of the contract; anything else is logged and
   * dropped (the server's {"type":"error"} answers included). */
  function deliverEvent(data, sink) {
    var ev;
    try { ev = JSON.parse(data); } catch (e) { sink.log('not JSON:', String(data).slice(0, 80)); return; }
    if (!ev || typeof ev !== 'object') return;
    switch (ev.type) {
      case 'message':
        sink.message(ev.id, ev.channel, ev.text);
        break;
      case 'gap':
        sink.gap(ev.channel, ev.requested, ev.oldest);
        break;
      case 'eof':
        sink.eof();
        break;
      default:
        sink.log('event', data);
    }
  }

  /* A transport whose constructor threw: it ends as refused, after the
   * engine has it (never inside open()). */
  function refusedTransport(sink, err) {
    var closed = false;
    sink.log('cannot open:', err && err.message);
    setTimeout(function () { if (!closed) sink.end('refused'); }, 0);
    return { close: function () { closed = true; } };
  }

  /* EventSource: /push/<hostid>/eventsource/<markers>. When the stream
   * breaks the browser re-opens the same URL with a Last-Event-ID header,
   * which meteord reads as "everything after that id" for every channel of
   * the stream (one id sequence for all of them), so nothing is missed; the
   * engine drops anything it has already seen. The engine opens a fresh one
   * (with fresh markers) only when the browser gives up: a non-200 answer or
   * a wrong Content-Type. */
  function openEventSource(url, sink) {
    var closed = false;
    var everOpen = false;
    var es;
    try { es = new window.EventSource(url); } catch (err) { return refusedTransport(sink, err); }
    es.onopen = function () {
      if (closed) return;
      everOpen = true;
      sink.accepted();
    };
    es.onmessage = function (ev) { if (!closed) deliverEvent(ev.data, sink); };
    es.addEventListener('gap', function (ev) { if (!closed) deliverEvent(ev.data, sink); });
    // Not in meteord's contract today; understood should a server end a
    // stream for good this way (an EventSource would reconnect otherwise).
    es.addEventListener('eof', function () { if (!closed) sink.eof(); });
    es.onerror = function () {
      if (closed) return;
      if (es.readyState === 2) { // CLOSED: the browser will not retry
        closed = true;
        es.close();
        sink.end(everOpen ? 'error' : 'refused');
      } else if (everOpen) {
        sink.reconnecting();
      }
      // CONNECTING before the first open: the browser retries by itself; the
      // engine's open bound decides whether that is a blocked path.
    };
    return { close: function () { closed = true; es.close(); } };
  }

  /* WebSocket close codes that end the session rather than the connection,
   * as eof() does in the classic streams: meteord's 1001 (shutting down),
   * 4001 (another connection took this hostid over) and 4002
   * (/disconnect/<hostid>). Every other close — 1000 (MaxTime), 4000 (fell
   * out of the history), 1008 (no pong) — is re-opened by the engine with
   * the markers of the last ids seen. */
  var WS_EOF_CODES = { 1001: true, 4001: true, 4002: true };

  /* WebSocket: ws(s)://<this host>/push/<hostid>/websocket/<markers>, the
   * same markers as every other mode: each reconnect asks every channel for
   * <chan>.r<last id seen + 1> (the subscribe frame's since = last id), so
   * nothing is missed and the engine drops anything already seen. */
  function openWebSocket(url, sink) {
    var closed = false;
    var everOpen = false;
    var loc = window.location;
    var ws;
    try {
      ws = new window.WebSocket((loc.protocol === 'https:' ? 'wss://' : 'ws://') + loc.host + url);
    } catch (err) {
      return refusedTransport(sink, err);
    }
    ws.onopen = function () {
      if (closed) return;
      everOpen = true;
      sink.accepted();
    };
    ws.onmessage = function (ev) {
      if (!closed && typeof ev.data === 'string') deliverEvent(ev.data, sink);
    };
    ws.onclose = function (ev) {
      if (closed) return;
      closed = true;
      sink.log('websocket closed', ev.code, ev.reason);
      if (!everOpen) sink.end('refused');
      else if (WS_EOF_CODES[ev.code]) sink.eof();
      else sink.end('done');
    };
    // An error is always followed by close, which decides.
    ws.onerror = function () {};
    return {
      close: function () {
        closed = true;
        try { ws.close(); } catch (e) { /* already closing */ }
      }
    };
  }

  /* ---- src/modes.js ---- */

  /* modes.js — the one table of the modes this client speaks (Meteor.mode's
   * values: the server's mode names, the path segment of
   * /push/<hostid>/<mode>/...) and the one function that resolves
   * Meteor.mode to one of them. Every rule that differs between modes is a
   * field of its row; nothing else in the client compares mode names. Both
   * roles read it: the page for the host, status 4 and pollfreq, the frame
   * for the transport and the request rules. */

  /* A mode name the server's request line can carry. */
  var MODE_SYNTAX = /^[0-9a-z]+$/i;

  /* The fields of a row (absent = false):
   *   open         the transport (transports.js): open(url, sink) -> {close()}
   *   stream       holds one connection open and pinged: the page reports
   *                status 4 once the frame is there, a connection without a
   *                ping within pingtimeout counts as silent, an ended
   *                connection fires reset, and eof ends the session (a poll
   *                that says eof just ends)
   *   fallback     (stream modes) the mode used after
   *                SILENT_STREAMS_BEFORE_FALLBACK silent connections in a row
   *                (frame.js); the page then fires changemode("poll")
   *   shortPoll    one request gets one complete answer: watched with
   *                polltimeout, an answer without messages is a healthy end,
   *                and a live-only channel probes its position with .b1
   *   adaptive     pollfreq follows the message rate (the original's smart
   *                poll rule, frame.js)
   *   pollhost     requests go to Meteor.pollhost when it is set
   *   fastest      connect() sets pollfreq to minpollfreq
   *   supported    (the modes 'stream' may pick) whether this browser can
   *                run it; absent = always
   *   quietPings   the server's pings never reach script (EventSource
   *                comment lines, WebSocket ping frames): the connection
   *                proves itself once, by opening within OPEN_TIMEOUT
   *                (frame.js), and is trusted until the browser reports it
   *                closed; one that does not open while meteord answers
   *                plain requests is blocked on the way (a proxy)
   *   next         (quietPings modes, when 'stream' picked them) the mode
   *                tried next when this one is blocked, with no reset and
   *                no changemode: the page's Meteor.mode follows */
  var MODES = {
    websocket: { open: openWebSocket, stream: true, quietPings: true, next: 'eventsource', fallback: 'smartpoll', supported: webSocketWorks },
    eventsource: { open: openEventSource, stream: true, quietPings: true, next: 'xhrinteractive', fallback: 'smartpoll', supported: eventSourceWorks },
    xhrinteractive: { open: openScriptStream, stream: true, fallback: 'smartpoll', supported: fetchCanStream },
    iframe: { open: openForeverIframe, stream: true, fallback: 'smartpoll' },
    serversent: { open: openScriptStream, stream: true, fallback: 'smartpoll' },
    longpoll: { open: openPollBody, pollhost: true, fastest: true },
    smartpoll: { open: openPollBody, shortPoll: true, adaptive: true, pollhost: true },
    simplepoll: { open: openPollBody, shortPoll: true, pollhost: true }
  };

  /* Any other name the request line can carry is polled like simplepoll but
   * from Meteor.host, as the original treats unknown modes. */
  var OTHER_MODE = { open: openPollBody, shortPoll: true };

  /* What 'stream' resolves to: the first supported mode of this list. The
   * browser's own WebSocket first (one socket, no HTTP framing per message),
   * then its EventSource (plain HTTP, passes proxies that do not forward
   * upgrades, reconnects by itself with Last-Event-ID), then the classic
   * streams. The original picks the forever-iframe only where ActiveXObject
   * (IE) or addEventStream (Opera <= 12) exists, and xhrinteractive
   * everywhere else; none of the browsers this file supports has either.
   * Ours reads xhrinteractive with a streamed fetch(), so it needs the
   * iframe only where that is missing. A blocked websocket or eventsource
   * hands over to its row's next (frame.js). */
  var STREAM_PREFERENCE = ['websocket', 'eventsource', 'xhrinteractive', 'iframe'];

  function webSocketWorks() { return typeof window.WebSocket === 'function'; }

  function eventSourceWorks() { return typeof window.EventSource === 'function'; }

  function fetchCanStream() {
    return !!(window.fetch && window.ReadableStream && window.TextDecoder && window.AbortController);
  }

  /* The mode 'stream' means in this browser (Meteor.selectStreamTransport). */
  function streamTransport() {
    for (var i = 0; i < STREAM_PREFERENCE.length - 1; i++) {
      var row = MODES[STREAM_PREFERENCE[i]];
      if (!row.supported || row.supported()) return STREAM_PREFERENCE[i];
    }
    return STREAM_PREFERENCE[STREAM_PREFERENCE.length - 1];
  }

  /* Meteor.mode as connect() leaves it: 'stream', and anything the request
   * line cannot carry, become pickStream()'s choice; any other name stays. */
  function resolveMode(name, pickStream) {
    return MODE_SYNTAX.test(name) && name !== 'stream' ? name : pickStream();
  }

  /* The mode a blocked auto-picked mode hands over to: its row's next, or
   * the one after that where this browser lacks it; null: none (the row's
   * fallback rules then). */
  function nextStreamMode(name) {
    var seen = {};
    var m = has(MODES, name) ? MODES[name].next : null;
    while (m && has(MODES, m) && !seen[m]) {
      seen[m] = true;
      var row = MODES[m];
      if (!row.supported || row.supported()) return m;
      m = row.next;
    }
    return null;
  }

  /* The row of a resolved mode name. */
  function modeRules(name) {
    return has(MODES, name) ? MODES[name] : OTHER_MODE;
  }

  /* ---- src/frame.js ---- */

  /* frame.js — the FRAME ROLE: the engine that runs inside stream.html, same
   * origin as /push. It takes its settings from the page (postMessage
   * "connect"), keeps each channel's position, builds every request's URL,
   * opens it with the mode's transport (modes.js, transports.js), watches it,
   * decides when and how to ask again (next poll, reconnect, back-off,
   * fallback from a silent stream) and relays messages, status, mode and
   * pollfreq changes to the page. Only the frame's own parent at the origin
   * it named is listened to and posted to. */

  /* A persistent connection that ends sooner than this without delivering
   * anything is treated as an error (back-off) rather than as a normal
   * MaxTime close, so a misconfigured server cannot make us spin. */
  var MIN_HEALTHY_CONNECTION = 1000;
  /* Consecutive stream connections that went silent (no ping within
   * pingtimeout) before stream mode falls back to polling (the mode row's
   * fallback): one silent connection may be a dead TCP path, two in a row
   * mean something between us and meteord buffers the stream. */
  var SILENT_STREAMS_BEFORE_FALLBACK = 2;
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
  /* How long a quietPings connection (EventSource, WebSocket) may take to
   * open (pingtimeout when that is shorter). meteord answers at once; one
   * that does not open by then is held up on the way (a buffering proxy
   * holds the headers, or the 101) or meteord is down: a probe tells. */
  var OPEN_TIMEOUT = 10000;
  /* Bound on that probe: a plain GET of this frame's own page. */
  var PROBE_TIMEOUT = 5000;

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
    var mode = null;         // the resolved mode name, set by configure()
    var rules = modeRules(mode); // mode's row of MODES
    var status = -1;
    var running = false;
    var failures = 0;        // consecutive failed attempts, for back-off
    var silentStreams = 0;   // consecutive stream connections without pings
    var pollfreq = 3000;     // current poll interval (smartpoll adapts it)
    var arrivals = [];       // smartpoll: times of the last few messages
    var pollfreqTimer = null;
    var timer = null;        // pending reconnect / next poll
    var probing = null;      // the attempt whose blocked-or-down probe runs
    /* The request in flight: {start, gotData, delivered, complete, watchdog,
     * sink, transport}. A sink answers only while its request is current. */
    var current = null;

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
        try { if (c.transport) c.transport.close(); } catch (e) { /* already closed */ }
      }
    }

    /* The original's markers: after a message .r<next id>; before, .b<n>
     * for a backtrack above 0, .h (the whole history) for any other given
     * backtrack (0 included), and no marker (live only) without one. */
    function channelSpec(name) {
      var ch = channels[name];
      if (ch.last !== null) return name + '.r' + (ch.last + 1);
      if (ch.backtrack > 0) return name + '.b' + Math.floor(ch.backtrack);
      if (ch.backtrack !== null) return name + '.h';
      if (rules.shortPoll) {
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
        if (has(channels, name)) specs.push(channelSpec(name));
      }
      if (!specs.length) return null;
      var path = (cfg.pushpath || '/push').replace(/\/+$/, '');
      return path + '/' + cfg.hostid + '/' + mode + '/' + specs.join('/') +
        '?nc=' + now().toString(36) + randomId(4) +
        (cfg.token ? '&token=' + encodeURIComponent(cfg.token) : '');
    }

    /* ---- what a transport reports (the sink, see transports.js) ---- */

    function sinkFor(c) {
      function live() { return current === c; }
      return {
        // An open quietPings connection is the only sign of life it gives.
        accepted: function () { if (live()) { if (rules.quietPings) alive(); else setStatus(5); } },
        message: function (id, chan, text) { if (live()) onMessage(id, chan, text); },
        channelInfo: function (name, id) { if (live()) onChannelInfo(name, id); },
        complete: function () { if (live()) c.complete = true; },
        // Only a stream ends for good. A poll that says eof (the server is
        // shutting down) just ends; the next poll finds the new one.
        eof: function () { if (live() && rules.stream) onEof(); },
        gap: function (chan, requested, oldest) { if (live()) onGap(chan, requested, oldest); },
        reconnecting: function () { if (live()) onReconnecting(); },
        end: function (how) { finish(c, how); },
        log: log
      };
    }

    function alive() {
      if (!current) return;
      current.gotData = true;
      failures = 0;
      silentStreams = 0; // counts only streams; zero in every other mode
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
      if (rules.adaptive) {
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

    /* The server could not resume a channel where we asked (its history
     * moved on): say so, once, before that channel's next messages. */
    function onGap(chan, requested, oldest) {
      if (typeof chan !== 'string' || !channels[chan]) return;
      alive();
      log('gap on', chan, 'wanted', requested, 'first kept', oldest);
      post({ t: 'gap', channel: chan, requested: toId(requested), oldest: toId(oldest) });
    }

    /* The browser re-opens a broken EventSource by itself (Last-Event-ID):
     * the original's reset and status 1 until it is open again. */
    function onReconnecting() {
      setStatus(1);
      post({ t: 'reset', reason: 'reconnecting' });
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
      c.watchdog = null;
      if (rules.quietPings) {
        // Opened: nothing more to watch (its pings are out of our sight).
        if (c.gotData) return;
        var bound = Math.min(cfg.pingtimeout, OPEN_TIMEOUT);
        c.watchdog = setTimeout(function () {
          if (current !== c) return;
          log('not open after', bound, 'ms');
          finish(c, 'timeout');
        }, bound);
        return;
      }
      var limit = rules.shortPoll ? cfg.polltimeout : cfg.pingtimeout;
      c.watchdog = setTimeout(function () {
        if (current !== c) return;
        log('no data for', limit, 'ms');
        // No ping at all (a buffering proxy holds them back): this
        // connection counts as silent.
        if (rules.fallback && !c.gotData && ++silentStreams >= SILENT_STREAMS_BEFORE_FALLBACK) {
          log('stream stays silent, falling back to', rules.fallback);
          silentStreams = 0;
          // No reset event: the page connects again in the new mode, as the
          // original does (and from pollhost's frame when it has one).
          stopRunning();
          setMode(rules.fallback);
          return;
        }
        finish(c, 'timeout');
      }, limit);
    }

    /* A quietPings connection that never opened: meteord down (the usual
     * back-off), or a proxy that does not pass it (no 101, held headers)
     * while it passes plain requests. A GET of this frame's own page tells. */
    function probe(c, how) {
      probing = c;
      setStatus(1);
      var ctl = window.AbortController ? new AbortController() : null;
      var t = setTimeout(function () { if (ctl) ctl.abort(); }, PROBE_TIMEOUT);
      var url = location.pathname + '?probe=' + now().toString(36) + randomId(4);
      window.fetch(url, { cache: 'no-store', credentials: 'same-origin', signal: ctl ? ctl.signal : undefined })
        .then(function (res) { return res.ok; }, function () { return false; })
        .then(function (reachable) {
          clearTimeout(t);
          if (probing !== c || !running) return;
          probing = null;
          if (reachable) blocked(c);
          else retryLater(c, how);
        });
    }

    /* meteord answers but this transport does not get through. */
    function blocked(c) {
      var next = cfg.auto ? nextStreamMode(mode) : null;
      if (next) {
        // 'stream' picked this mode: hand over to the next one at once. The
        // channels keep their last ids, so it resumes exactly where this
        // one was (no reset, no changemode; the page's Meteor.mode follows).
        log(mode, 'is blocked on the way, switching to', next);
        mode = next;
        rules = modeRules(next);
        failures = 0;
        silentStreams = 0;
        post({ t: 'transport', mode: next });
        schedule(MIN_REQUEST_GAP, false);
        return;
      }
      if (rules.fallback && ++silentStreams >= SILENT_STREAMS_BEFORE_FALLBACK) {
        log(mode, 'stays blocked, falling back to', rules.fallback);
        silentStreams = 0;
        stopRunning();
        setMode(rules.fallback);
        return;
      }
      retryLater(c, 'blocked');
    }

    function setMode(m) {
      if (m === mode) return;
      mode = m;
      rules = modeRules(m);
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
      if (!rules.adaptive || !running) return;
      arrivals = [now()];
      pollfreqTimer = setInterval(adaptPollfreq, SMARTPOLL_UPDATE_EVERY);
    }

    function stopRunning() {
      running = false;
      probing = null;
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
        if (!has(channels, name)) continue;
        var ch = channels[name];
        if (ch.probing) { ch.probing = false; if (how === 'done') ch.empty = true; }
      }
      if (rules.quietPings && !c.gotData && (how === 'refused' || how === 'timeout')) {
        probe(c, how);
        return;
      }
      var lived = now() - c.start;
      // As the original: the next request is due pollfreq after this one
      // began (a stream or long poll that lived longer goes straight back).
      var due = Math.max(MIN_REQUEST_GAP, pollfreq - lived);
      if (how === 'done' && (rules.shortPoll || c.delivered > 0 || c.complete ||
          lived >= MIN_HEALTHY_CONNECTION)) {
        // The original's reset event: a stream ended and is re-opened.
        if (rules.stream) post({ t: 'reset', reason: 'closed' });
        schedule(due, false);
      } else {
        retryLater(c, how);
      }
    }

    /* A failed attempt: status 1, reset (streams) and the back-off. */
    function retryLater(c, how) {
      failures++;
      setStatus(1);
      if (rules.stream) post({ t: 'reset', reason: how });
      var due = Math.max(MIN_REQUEST_GAP, pollfreq - (now() - c.start));
      schedule(Math.max(due, backoffDelay(failures)), true);
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
      var c = {
        start: now(), gotData: false, delivered: 0, complete: false,
        watchdog: null, sink: null, transport: null
      };
      current = c;
      if (status !== 5) setStatus(1);
      log('GET', url);
      armWatchdog();
      c.sink = sinkFor(c);
      var t = rules.open(url, c.sink);
      // (a transport that ended at once already left current)
      if (current === c) c.transport = t;
      else t.close();
    }

    /* ---- commands from the page ---- */

    function configure(c) {
      stopRunning();
      cfg = {
        hostid: String(c.hostid),
        pushpath: c.pushpath,
        token: typeof c.token === 'string' ? c.token : '',
        debugmode: !!c.debugmode,
        pingtimeout: Math.max(1000, Number(c.pingtimeout) || 20000),
        polltimeout: Math.max(1000, Number(c.polltimeout) || 30000),
        minpollfreq: Number(c.minpollfreq) || 2000,
        maxpollfreq: Number(c.maxpollfreq) || 60000,
        // Meteor.mode was 'stream': a blocked mode may hand over to the next.
        auto: !!c.auto
      };
      mode = resolveMode(c.mode, streamTransport);
      rules = modeRules(mode);
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

    /* What the server's pages call in this window: the forever-iframe's
     * parent.Meteor.register(this), and the templates' Meteor.* calls. They
     * reach the request in flight. */
    window.Meteor = {
      register: function (w) {
        if (current && current.transport && current.transport.register) current.transport.register(w);
      },
      process: function (id, chan, text) { if (current) current.sink.message(id, chan, text); },
      channelInfo: function (name, id) { if (current) current.sink.channelInfo(name, id); },
      clearpoll: function () { if (current) current.sink.complete(); },
      eof: function () { if (current) current.sink.eof(); },
      parseCalls: parseCalls
    };

    post({ t: 'ready' });
  }

  /* ---- src/page.js ---- */

  /* page.js — the PAGE ROLE: the public Meteor object a page uses, with the
   * original's names, defaults, values, thrown strings, events and status
   * codes (see the top of meteor.js). It keeps the channels and their last
   * ids, resolves Meteor.mode (modes.js), loads the hidden stream.html frame
   * from meteord (Meteor.host, or Meteor.pollhost for the modes that use it),
   * sends it the settings and turns what the frame relays into callbacks.
   * No transport runs here; frame.js does that. */

  /* How long stream.html may take to load and say "ready" before we drop the
   * frame and try again (status 3). */
  var FRAME_TIMEOUT = 8000;
  var EVENTS = ['process', 'reset', 'eof', 'statuschanged', 'changemode'];

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
    /* Meteor.mode was 'stream' and connect() (or the frame, after a blocked
     * transport) set it to autoMode: the frame may hand over to the next
     * transport. A page that sets another mode itself turns this off. */
    var autoStream = false;
    var autoMode = null;

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
      mode: 'stream',          // connect() resolves 'stream' to websocket (or the next the browser has)
      pingtimeout: 20000,
      pollfreq: 3000,
      pollhost: null,          // host for longpoll/smartpoll/simplepoll, when set
      polltimeout: 30000,
      port: 80,                // 80 is the default port (443 on an https page)
      status: 0,
      /* Extension: path of the dynamic pages (SubscriberDynamicPageAddress). */
      pushpath: '/push',
      /* Extension: the subscriber token (a JWT for SubscriberTokenChannels),
       * sent as token= on every request from the next connect() on. */
      token: null
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
     * modes whose row says pollhost (longpoll, smartpoll, simplepoll) when it is set (as the original), Meteor.host
     * otherwise, and the page's own host when that is unset too. */
    function baseUrl() {
      var https = location.protocol === 'https:';
      var dflt = https ? 443 : 80;
      var host = modeRules(M.mode).pollhost && M.pollhost ? M.pollhost : M.host;
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
      if (modeRules(M.mode).stream) setStatus(4);
      send({
        t: 'connect', hostid: String(M.hostid), mode: M.mode, auto: autoStream, channels: channelList(),
        debugmode: !!M.debugmode, pingtimeout: Number(M.pingtimeout), polltimeout: Number(M.polltimeout),
        pollfreq: Number(M.pollfreq), minpollfreq: Number(M.minpollfreq), maxpollfreq: Number(M.maxpollfreq),
        pushpath: String(M.pushpath), token: M.token == null ? '' : String(M.token)
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
          autoMode = d.mode;
          log('mode', d.mode);
          fire('changemode', ['poll']);
          // ... then connects again as the original does (status 0, 1; with
          // a pollhost, from a frame loaded there).
          if (wanted) M.connect();
          break;
        case 'transport':
          // 'stream' picked a transport that does not get through; the frame
          // moved on to the next one, resuming every channel where it was.
          M.mode = d.mode;
          autoMode = d.mode;
          log('mode', d.mode);
          break;
        case 'gap':
          // Extension: gap(channel, requested, oldest), fired before the
          // channel's next message (see the top of meteor.js).
          if (joinedChannel(d.channel)) fire('gap', [d.channel, d.requested, d.oldest]);
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
      var asked = M.mode;
      M.mode = resolveMode(M.mode, function () { return M.selectStreamTransport(); });
      autoStream = M.mode !== asked || (autoStream && M.mode === autoMode);
      autoMode = M.mode;
      if (modeRules(M.mode).fastest) M.pollfreq = M.minpollfreq;
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

  /* ---- src/start.js ---- */

  /* start.js — which role this copy of the file plays: stream.html loads it
   * with data-meteor-frame (the frame role, frame.js); every other page gets
   * the Meteor API (the page role, page.js). Runs last, when every part of
   * the file is defined. */

  var script = document.currentScript;
  if (script && script.hasAttribute('data-meteor-frame')) startFrame();
  else startPage();
})(window, document);
