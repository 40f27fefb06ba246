// In a real browser: Debian's Chromium, headless, driven by playwright-core (which never downloads
// a browser). Two pages, each its own browser context (its own IndexedDB), edit one document
// through a weft-relay the test starts; one goes offline (its WebSocket closed), both edit, it
// reloads the page (its offline edit comes back from IndexedDB), reconnects, and both converge;
// the native `weft` tool syncs the same document and prints the same state.
// Pages are served by a static server the test starts on loopback (test/browser/ and the built
// package); nothing reaches beyond this machine.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { readFile, realpath } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { startRelay, weftCli, tempDir, removeDir, until } from './relay.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const pkg = process.env.WEFT_WEB_PKG ?? path.join(here, '../../../build/bindings/web/pkg');
const CHROMIUM = process.env.WEFT_CHROMIUM ?? '/usr/bin/chromium';
// Without the background-networking flags Chromium's own connections fail on a closed network
// and its pages' connections with them; --no-sandbox because the tests run as root.
const FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript',
  '.wasm': 'application/wasm', '.json': 'application/json' };

/** A static server: /pkg/... from the built package, /test/... from test/browser/. */
async function startStatic() {
  const roots = { pkg: await realpath(pkg), test: path.join(here, 'browser') };
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, 'http://x');
    const [, top, ...rest] = url.pathname.split('/');
    const root = roots[top];
    const rel = path.normalize(rest.join('/'));
    if (!root || rel.startsWith('..') || path.isAbsolute(rel)) {
      res.writeHead(404).end();
      return;
    }
    try {
      const body = await readFile(path.join(root, rel));
      res.writeHead(200, { 'content-type': TYPES[path.extname(rel)] ?? 'application/octet-stream',
        'cache-control': 'no-store' });
      res.end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${server.address().port}` };
}

let dir;
let relay;
let web;
let browser;

before(async () => {
  dir = tempDir('weft-browser-');
  relay = await startRelay(path.join(dir, 'relay'));
  web = await startStatic();
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS });
});

after(async () => {
  await browser?.close();
  await relay?.stop();
  if (web) await new Promise((r) => web.server.close(r));
  removeDir(dir);
});

async function openPage(doc, { snapshotEvery = 1000 } = {}) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  const url = `${web.url}/test/page.html?relay=${encodeURIComponent(relay.url)}&doc=${doc}` +
    `&snapshotEvery=${snapshotEvery}`;
  await load(page, url, errors);
  return { page, url, errors };
}

async function load(page, url, errors) {
  await page.goto(url);
  await page.waitForFunction(() => window.app || window.appError, null, { timeout: 30000 });
  const err = await page.evaluate(() => window.appError);
  assert.equal(err, null, `the page failed to start: ${err} ${errors.join('\n')}`);
}

const call = (p, fn, ...args) => p.page.evaluate(([f, a]) => window.app[f](...a), [fn, args]);

async function waitFor(p, fn, pred, what) {
  await until(async () => pred(await call(p, fn)), what, 30000);
}

test('browser: two pages converge through the relay, one offline across a reload; the weft tool agrees', async () => {
  const doc = 'browser-doc';
  // A compacts its IndexedDB op log into a snapshot every 3 changes: its reload below starts
  // from a snapshot and the log after it.
  const a = await openPage(doc, { snapshotEvery: 3 });
  const b = await openPage(doc);
  await waitFor(a, 'status', (s) => s === 'open', 'page A to connect');
  await waitFor(b, 'status', (s) => s === 'open', 'page B to connect');

  await call(a, 'push', 'from A');
  await waitFor(b, 'items', (i) => i.includes('from A'), 'A\'s item on B');
  await call(b, 'push', 'from B');
  await waitFor(a, 'items', (i) => i.includes('from B'), 'B\'s item on A');

  // Presence, both ways through the relay.
  await call(a, 'setPresence', 'A at 1');
  const aNode = await a.page.evaluate(() => window.app.client.nodeId);
  await waitFor(b, 'presence', (p) => p[aNode] === 'A at 1', 'A\'s presence on B');

  // A goes offline; both edit.
  await call(a, 'offline');
  await waitFor(a, 'status', (s) => s === 'closed', 'A to go offline');
  await call(a, 'push', 'A offline');
  await call(a, 'append', 'notes', 'typed offline');
  await call(b, 'push', 'B meanwhile');
  await call(a, 'flush');
  assert.ok((await call(a, 'lag')) > 0);
  assert.ok(await call(a, 'hasSnapshot'), 'A kept a snapshot in IndexedDB');
  assert.ok((await call(a, 'stored')) < 3, 'the snapshot replaced the op log\'s rows');
  // B does not get A's offline edits while A is offline (a fixed check, not a wait: nothing can
  // carry them).
  assert.ok(!(await call(b, 'items')).includes('A offline'));

  // A reloads: its edits come back from IndexedDB, then it reconnects and both converge.
  await load(a.page, a.url, a.errors);
  const afterReload = await call(a, 'items');
  assert.ok(afterReload.includes('A offline'), `after the reload: ${afterReload}`);
  await waitFor(a, 'status', (s) => s === 'open', 'A to reconnect');
  await until(async () => (await call(a, 'canonical')) === (await call(b, 'canonical')),
    'the pages to converge', 30000);
  const state = JSON.parse(await call(a, 'state'));
  assert.deepEqual([...state.items].sort(), ['A offline', 'B meanwhile', 'from A', 'from B']);
  assert.equal(state.notes, 'typed offline');

  // The native tool syncs the same document from the relay and prints the same state.
  await a.page.evaluate(() => window.app.client.waitForAck(new URLSearchParams(location.search).get('doc')));
  const db = path.join(dir, 'cli.db');
  const s = await weftCli(db, 'sync', relay.url, '--doc', doc, '--timeout', '30');
  assert.equal(s.code, 0, s.stderr);
  const got = await weftCli(db, 'get', doc);
  assert.equal(got.code, 0, got.stderr);
  assert.deepEqual(JSON.parse(got.stdout), state);
  assert.deepEqual(a.errors, []);
  assert.deepEqual(b.errors, []);
});
