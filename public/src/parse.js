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
