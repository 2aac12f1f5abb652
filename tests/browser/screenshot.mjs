// screenshot.mjs — renders docs/chat-screenshot.png: the chat page against
// the real meteord and fcgi-chat with a short multilingual conversation.
// Not part of run.sh (it writes a tracked file). Usage:
//   node screenshot.mjs [desktop|phone]
// CJK and emoji need fonts-noto-cjk and fonts-noto-color-emoji installed.

import path from 'node:path';
import { Env, say, waitConnected, waitForTexts } from './env.mjs';
import { ROOT } from './servers.mjs';

const variant = process.argv[2] || 'desktop';
const VIEWPORTS = {
  desktop: { width: 960, height: 640 },
  phone: { width: 390, height: 760 },
};
const out = path.join(ROOT, 'docs', variant === 'desktop' ? 'chat-screenshot.png' : `chat-screenshot-${variant}.png`);

const others = [
  ['Lena', 'Guten Morgen! Wer ist heute schon wach? ☕'],
  ['Hiro', 'おはようございます！東京は今日も晴れです。'],
  ['Camille', 'Salut tout le monde ! Ça marche très bien, même les accents : é, è, ç, œ.'],
  ['Wei', '大家好！这个聊天室支持中文。🎉'],
];
const mine = 'Hello everyone 👋 — messages stream in live, in any language.';

const env = new Env();
try {
  await env.start();
  for (const [user, text] of others) {
    const { status } = await env.chat.post(user, text);
    if (status !== 200) throw new Error(`post failed: HTTP ${status}`);
  }
  const page = await env.newPage(VIEWPORTS[variant]);
  await page.goto(`${env.chat.url}/?mode=stream`);
  await page.fill('#user', 'Sam');
  await waitConnected(page, 'stream');
  await say(page, mine);
  await waitForTexts(page, [...others.map((o) => o[1]), mine]);
  await page.fill('#message', 'See you at 5 ✨');
  await page.evaluate(() => document.activeElement.blur());
  await page.screenshot({ path: out });
  console.log(`wrote ${out}`);
} finally {
  await env.stop();
}
