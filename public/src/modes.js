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
