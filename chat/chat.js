/*
 * chat.js — the chat page: subscribes to channel "chat" through meteor.js
 * (loaded from meteord) and posts messages to fcgi-chat with fetch().
 *
 * Received text is HTML produced by fcgi-chat,
 *   <strong>USER HH:MM:SS</strong> MESSAGE
 * with every special and non-ASCII character as a numeric character
 * reference. It is parsed in an inert DOMParser document (no script runs,
 * nothing loads there) and only its text is copied into the page with
 * textContent: no received markup ever reaches the live document.
 *
 * Private mode (subscriber tokens): when CHAT_CONFIG.tokenUrl is set
 * (fcgi-chat --token-secret), the page first asks that URL for a token
 * bound to its hostid, reads the channel from the reply (a private one,
 * which meteord serves only with a token), sets Meteor.token and renews it
 * a minute before it expires.
 *
 * URL query (for tests and the curious): ?mode=stream|websocket|eventsource|
 * longpoll|smartpoll|simplepoll (stream, the default, is the best transport
 * the browser has and gets through), &transport=iframe, &pollfreq= &minpollfreq= &maxpollfreq= (ms),
 * &debug=1.
 */
(function () {
  'use strict';

  /* How many old messages a fresh page shows. */
  var BACKTRACK = 10;
  /* Retry delays for loading meteor.js (meteord down at page load). */
  var SCRIPT_RETRY_MIN = 1000;
  var SCRIPT_RETRY_MAX = 15000;
  /* After the server ended the stream (eof: shutdown or restart), wait this
   * long (+ jitter) before connecting again. */
  var EOF_RECONNECT_DELAY = 1500;
  /* Keep the view pinned to the newest message if the reader is this close
   * (px) to the bottom; otherwise leave their scroll position alone. */
  var STICKY_SCROLL_PX = 48;
  /* Smart/simple poll defaults for a chat: faster than meteor.js' generic
   * 2 s .. 60 s so a quiet room still answers within a few seconds. */
  var CHAT_MIN_POLL = 1000;
  var CHAT_MAX_POLL = 8000;
  var CHANNEL = 'chat';
  var STREAM_MODES = { stream: 1, websocket: 1, eventsource: 1, xhrinteractive: 1, iframe: 1 };
  /* How the status line names the transport in use (Meteor.mode). */
  var TRANSPORT_NAMES = {
    websocket: 'WebSocket',
    eventsource: 'EventSource',
    xhrinteractive: 'HTTP stream',
    iframe: 'iframe stream'
  };
  var NAME_KEY = 'chat.user';
  /* Renew the token this long before it expires; retry a failed fetch
   * after TOKEN_RETRY. */
  var TOKEN_RENEW_EARLY = 60000;
  var TOKEN_MIN_RENEW = 5000;
  var TOKEN_RETRY = 3000;

  var config = window.CHAT_CONFIG || {};
  var params = new URLSearchParams(location.search);
  var wantedMode = params.get('mode') || 'stream';

  var $ = function (id) { return document.getElementById(id); };
  var list = $('messages');
  var logBox = $('log');
  var statusBox = $('status');
  var statusText = $('status-text');
  var form = $('composer');
  var userInput = $('user');
  var messageInput = $('message');
  var sendButton = $('send');
  var errorBox = $('error');

  var everLive = false;
  var scriptFailures = 0;

  /* ---------------- connection status ---------------- */

  var LABELS = {
    connecting: 'connecting',
    live: 'live',
    polling: 'polling',
    reconnecting: 'reconnecting',
    offline: 'offline — retrying'
  };

  /* state: one of LABELS; transport: Meteor.mode while connected. */
  function showState(state, transport) {
    statusBox.setAttribute('data-state', state);
    if (transport) statusBox.setAttribute('data-transport', transport);
    else statusBox.removeAttribute('data-transport');
    var label = LABELS[state] || state;
    if (transport) label += ' · ' + (TRANSPORT_NAMES[transport] || transport);
    statusText.textContent = label;
  }

  function onStatus(code) {
    if (code === 5) {
      everLive = true;
      // After connect() Meteor.mode names the transport, as the original's
      // does: 'stream' became websocket (or what got through).
      var mode = window.Meteor.mode;
      showState(STREAM_MODES[mode] ? 'live' : 'polling', mode);
    } else if (code === 6) {
      showState('reconnecting');
    } else {
      showState(everLive ? 'reconnecting' : 'connecting');
    }
  }

  /* ---------------- rendering ---------------- */

  var parser = new DOMParser();

  /* Split "<strong>USER HH:MM:SS</strong> MESSAGE" into plain strings. */
  function parseMessage(html) {
    var doc = parser.parseFromString('<!DOCTYPE html><body>' + html, 'text/html');
    var body = doc.body;
    var head = body.firstElementChild;
    if (head && head.tagName === 'STRONG' && body.firstChild === head) {
      var meta = head.textContent;
      body.removeChild(head);
      var m = /^(.*)\s+(\d{1,2}:\d{2}(?::\d{2})?)$/.exec(meta);
      return {
        user: m ? m[1] : meta,
        time: m ? m[2] : '',
        text: body.textContent.replace(/^ /, '')
      };
    }
    return { user: '', time: '', text: body.textContent };
  }

  /* A stable colour per user name, so a conversation is easy to follow. */
  function hue(name) {
    var h = 0;
    for (var i = 0; i < name.length; i++) h = (h * 31 + name.charCodeAt(i)) % 360;
    return h;
  }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function addMessage(html, id) {
    var msg = parseMessage(String(html));
    var atBottom = logBox.scrollHeight - logBox.scrollTop - logBox.clientHeight < STICKY_SCROLL_PX;

    var li = el('li', 'msg');
    li.setAttribute('data-id', String(id));
    if (msg.user) {
      var meta = el('div', 'meta');
      var who = el('span', 'user', msg.user);
      who.style.setProperty('--hue', String(hue(msg.user)));
      meta.appendChild(who);
      if (msg.time) {
        var t = el('time', 'time', msg.time);
        meta.appendChild(t);
      }
      li.appendChild(meta);
      if (msg.user === currentUser()) li.classList.add('mine');
    }
    li.appendChild(el('div', 'text', msg.text));
    list.appendChild(li);
    $('empty').hidden = true;

    if (atBottom || li.classList.contains('mine')) logBox.scrollTop = logBox.scrollHeight;
  }

  /* ---------------- sending ---------------- */

  function currentUser() {
    return userInput.value.trim() || 'Guest';
  }

  function showError(text) {
    errorBox.textContent = text;
    errorBox.hidden = !text;
  }

  function send(ev) {
    ev.preventDefault();
    var message = messageInput.value;
    if (message.trim() === '') { messageInput.focus(); return; }
    var user = userInput.value.trim();
    try { window.localStorage.setItem(NAME_KEY, user); } catch (e) { /* private mode */ }

    sendButton.disabled = true;
    showError('');
    var body = new URLSearchParams();
    body.set('user', user);
    body.set('message', message);
    fetch(config.postUrl || 'chat.php', {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded;charset=UTF-8' },
      body: body.toString()
    }).then(function (res) {
      return res.text().then(function (text) {
        var data = null;
        try { data = JSON.parse(text); } catch (e) { /* not JSON */ }
        if (res.ok && data && data.ok) {
          if (messageInput.value === message) messageInput.value = '';
          return;
        }
        var reason = data && data.error ? data.error : 'HTTP ' + res.status + (res.statusText ? ' ' + res.statusText : '');
        showError('Not sent: ' + reason);
      });
    }, function () {
      showError('Not sent: the chat server cannot be reached');
    }).then(function () {
      sendButton.disabled = false;
      messageInput.focus();
    });
  }

  /* ---------------- connecting ---------------- */

  function pushBase() {
    var base = config.pushBase || (location.protocol + '//data.' + location.hostname);
    return String(base).replace(/\/+$/, '');
  }

  function numberParam(name, fallback) {
    var v = Number(params.get(name));
    return params.has(name) && v > 0 ? v : fallback;
  }

  function startMeteor() {
    var M = window.Meteor;
    var base = new URL(pushBase(), location.href);
    M.host = base.hostname;
    M.port = base.port || (base.protocol === 'https:' ? 443 : 80);
    M.mode = params.get('transport') === 'iframe' && wantedMode === 'stream' ? 'iframe' : wantedMode;
    M.debugmode = params.get('debug') === '1';
    M.minpollfreq = numberParam('minpollfreq', CHAT_MIN_POLL);
    M.maxpollfreq = numberParam('maxpollfreq', CHAT_MAX_POLL);
    M.pollfreq = numberParam('pollfreq', M.minpollfreq);

    M.registerEventCallback('process', addMessage);
    M.registerEventCallback('statuschanged', onStatus);
    M.registerEventCallback('changemode', function () { onStatus(M.status); });
    M.registerEventCallback('eof', function () {
      // The server closed our stream on purpose (restart or shutdown). Come
      // back after a pause: the resume markers make sure nothing is missed.
      setTimeout(function () { M.connect(); },
        EOF_RECONNECT_DELAY + Math.round(Math.random() * EOF_RECONNECT_DELAY));
    });
    if (!config.tokenUrl) {
      M.joinChannel(CHANNEL, BACKTRACK);
      M.connect();
      return;
    }
    // The token is bound to the hostid, so the page picks it (meteor.js
    // would make one only at connect()).
    if (!M.hostid) M.hostid = String(Date.now()) + String(Math.floor(Math.random() * 1e6));
    fetchToken(function (channel) {
      CHANNEL = channel;
      document.body.classList.add('private');
      document.querySelector('.bar h1').textContent = 'Private chat';
      M.joinChannel(CHANNEL, BACKTRACK);
      M.connect();
    });
  }

  /* Ask fcgi-chat for a token for this page's hostid; then(channel) once
   * Meteor.token is set. Renews itself before expiry (and reconnects with
   * the new token: the resume markers make sure nothing is missed). */
  function fetchToken(then) {
    var M = window.Meteor;
    var url = config.tokenUrl + (config.tokenUrl.indexOf('?') < 0 ? '?' : '&') +
      'hostid=' + encodeURIComponent(M.hostid);
    fetch(url, { cache: 'no-store', credentials: 'same-origin' }).then(function (res) {
      return res.json();
    }).then(function (data) {
      if (!data || !data.ok || !data.token || !data.channel) throw new Error('no token');
      M.token = data.token;
      var renewIn = Math.max(TOKEN_MIN_RENEW, data.exp * 1000 - Date.now() - TOKEN_RENEW_EARLY);
      setTimeout(function () { fetchToken(function () { M.connect(); }); }, renewIn);
      then(data.channel);
    }).catch(function () {
      showState('offline');
      setTimeout(function () { fetchToken(then); }, TOKEN_RETRY);
    });
  }

  function loadMeteor() {
    var s = document.createElement('script');
    s.src = pushBase() + '/meteor.js';
    s.onload = function () {
      if (window.Meteor && window.Meteor.joinChannel) startMeteor();
      else retry();
    };
    s.onerror = retry;
    function retry() {
      if (s.parentNode) s.parentNode.removeChild(s);
      scriptFailures++;
      showState('offline');
      var delay = Math.min(SCRIPT_RETRY_MAX, SCRIPT_RETRY_MIN * Math.pow(2, scriptFailures - 1));
      setTimeout(loadMeteor, delay);
    }
    document.head.appendChild(s);
  }

  try { userInput.value = window.localStorage.getItem(NAME_KEY) || ''; } catch (e) { /* private mode */ }
  form.addEventListener('submit', send);
  showState('connecting');
  loadMeteor();
})();
