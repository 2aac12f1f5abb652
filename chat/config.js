/*
 * Where the chat page finds its two servers. Deployments and tests may
 * rewrite the values (ports/paths only); fcgi-chat's dev HTTP mode serves a
 * generated config.js instead of this file.
 *   pushBase: base URL of meteord (meteor.js, stream.html and /push live
 *             there). null -> location.protocol + "//data." + location.hostname
 *   postUrl:  where messages are POSTed (fcgi-chat), relative to the page.
 *   tokenUrl: (private mode) where the page gets its subscriber token
 *             (fcgi-chat --token-secret: "chat.php?token=1"); unset or null
 *             = the public chat channel, no token.
 */
window.CHAT_CONFIG = {
  pushBase: null,
  postUrl: "chat.php"
};
