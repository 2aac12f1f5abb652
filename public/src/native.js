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
