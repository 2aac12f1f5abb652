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
