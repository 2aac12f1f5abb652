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
