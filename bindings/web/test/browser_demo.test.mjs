// The web demo (demo/, `make web-demo`) in headless Chromium: demo/serve.mjs (a relay and the
// static server, on loopback, stopped by its PID) and two pages in their own browser contexts:
// typing in one shows in the other, a to-do added in one and ticked in the other, presence
// cursors. See browser_sync.test.mjs for the browser's flags.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { RELAY_BIN, tempDir, removeDir } from './relay.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const pkg = process.env.WEFT_WEB_PKG ?? path.join(here, '../../../build/bindings/web/pkg');
const CHROMIUM = process.env.WEFT_CHROMIUM ?? '/usr/bin/chromium';
const FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

let server;
let browser;
const data = tempDir('weft-web-demo-');

after(async () => {
  await browser?.close();
  if (server && server.exitCode === null && server.signalCode === null) {
    const exited = new Promise((r) => server.on('exit', r));
    process.kill(server.pid, 'SIGTERM');
    await exited;
  }
  removeDir(data);
});

test('browser: the web demo syncs text, to-dos and cursors between two pages', async () => {
  server = spawn(process.execPath, [path.join(here, '../demo/serve.mjs'), RELAY_BIN, pkg, '0', data],
    { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise((resolve, reject) => {
    let out = '';
    server.stdout.on('data', (d) => {
      out += d;
      const m = /(http:\/\/127\.0\.0\.1:\d+\/)/.exec(out);
      if (m) resolve(m[1]);
    });
    server.on('exit', (code) => reject(new Error(`serve.mjs exited (${code}): ${out}`)));
  });
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS });
  const pages = [];
  const errors = [];
  for (let i = 0; i < 2; ++i) {
    const page = await (await browser.newContext()).newPage();
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(url);
    await page.waitForFunction(() => document.getElementById('status').textContent === 'open', null,
      { timeout: 30000 });
    pages.push(page);
  }
  const [one, two] = pages;
  const wait = (page, fn, arg) => page.waitForFunction(fn, arg, { timeout: 30000 });
  await one.fill('#text', 'hello from one');
  await wait(two, () => document.getElementById('text').value === 'hello from one');
  await one.fill('#item', 'buy milk');
  await one.click('#add button');
  await wait(two, () => document.querySelectorAll('#todos li').length === 1);
  assert.match(await two.textContent('#todos li'), /buy milk/);
  await two.click('#todos li input');
  await wait(one, () => document.querySelector('#todos li')?.className === 'done');
  await one.fill('#name', 'alice');
  await one.dispatchEvent('#name', 'change');
  await one.click('#text');
  await wait(two, () => /alice @ \d+/.test(document.getElementById('cursors').textContent));
  assert.deepEqual(errors, []);
});
