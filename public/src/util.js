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
