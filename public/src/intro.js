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
