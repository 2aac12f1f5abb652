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
