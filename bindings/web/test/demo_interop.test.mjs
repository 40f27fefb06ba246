// The web demo and the Qt desktop demo edit the same documents: the desktop demo's model code
// (apps/desktop-demo/src/todo.cpp, through the native helper weft-web-demo-model, on a replica
// database the `weft` tool syncs) and the web demo's (demo/todo.js, over weft.js and sync.js in
// Node.js) write to-dos and text in one document through a real weft-relay (secure mode, a free
// loopback port, stopped by PID), and each reads what the other wrote, in the same order.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import WebSocket from 'ws';
import { weft } from './lib.mjs';
import { startRelay, weftCli, tempDir, removeDir, until } from './relay.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const pkg = process.env.WEFT_WEB_PKG ?? path.join(here, '../../../build/bindings/web/pkg');
const sync = await import(pathToFileURL(path.join(pkg, 'sync.js')).href);
const { TEXT_KEY, todoModel } = await import(pathToFileURL(path.join(here, '../demo/todo.js')).href);
const model = process.env.WEFT_WEB_DEMO_MODEL ??
    path.join(here, '../../../build/bindings/web/weft-web-demo-model');
const todos = todoModel(weft);

let dir;
let relay;
let client;

before(async () => {
  dir = tempDir('weft-web-demo-interop-');
  relay = await startRelay(path.join(dir, 'relay'));
});

after(async () => {
  client?.close();
  await relay?.stop();
  removeDir(dir);
});

// The desktop demo's model on its database: resolves with stdout; rejects on failure.
function desktop(db, ...args) {
  return new Promise((resolve, reject) => {
    execFile(model, [db, ...args], (err, stdout, stderr) => {
      if (err) reject(new Error(`weft-web-demo-model ${args.join(' ')}: ${stderr || err.message}`));
      else resolve(stdout);
    });
  });
}

async function cli(db, ...args) {
  const r = await weftCli(db, ...args);
  assert.equal(r.code, 0, `weft ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

// What the web demo shows, in the shape the helper prints.
function webView(doc) {
  const id = doc.lookup(TEXT_KEY)?.id;
  return {
    text: id ? doc.readText(id) : '',
    todos: todos.readTodos(doc).map(({ title, done, order, conflicted }) =>
      ({ title, done, order, conflicted })),
  };
}

test('the desktop demo\'s to-dos and text reach the web demo, and the web demo\'s reach it', async () => {
  const db = path.join(dir, 'desktop.db');
  const syncDesktop = () => cli(db, 'sync', relay.url, '--doc', 'demo', '--timeout', '30');
  const desktopView = async () => JSON.parse(await desktop(db, 'read', 'demo'));

  // The desktop demo makes the document (owned by its device) and writes to it.
  await desktop(db, 'init', 'demo');
  await desktop(db, 'add', 'demo', 'buy milk');
  await desktop(db, 'add', 'demo', 'call Bob');
  await desktop(db, 'done', 'demo', '1', '1');
  await cli(db, 'text-insert', 'demo', 'text', '0', 'hello from Qt');
  const identity = await sync.Identity.generate();
  await cli(db, 'grant', 'demo', identity.hex, 'writer');
  await syncDesktop();

  // The web demo reads the same state.
  client = new sync.SyncClient({ url: relay.url, identity, WebSocket, backoffMs: 20,
    maxBackoffMs: 200 });
  const doc = await client.open('demo');
  await until(() => webView(doc).todos.length === 2, 'the desktop demo\'s to-dos to reach the web');
  assert.deepEqual(webView(doc), {
    text: 'hello from Qt',
    todos: [
      { title: 'buy milk', done: false, order: 1, conflicted: false },
      { title: 'call Bob', done: true, order: 2, conflicted: false },
    ],
  });
  assert.deepEqual(webView(doc), await desktopView());

  // The web demo adds an item, ticks one, edits the text; the desktop demo reads them.
  doc.transact((t) => todos.addTodo(t, 'from the web'));
  doc.transact((t) => todos.setDone(t, todos.readTodos(doc)[0], true));
  doc.transact((t) => t.root.text(TEXT_KEY).append(' and the web'));
  await client.waitForAck('demo');
  await syncDesktop();
  const afterWeb = await desktopView();
  assert.deepEqual(afterWeb, {
    text: 'hello from Qt and the web',
    todos: [
      { title: 'buy milk', done: true, order: 1, conflicted: false },
      { title: 'call Bob', done: true, order: 2, conflicted: false },
      // order 3 as a double: the desktop demo ignores any other (it would sort the item first)
      { title: 'from the web', done: false, order: 3, conflicted: false },
    ],
  });
  assert.deepEqual(webView(doc), afterWeb);

  // Both write concurrently (the desktop offline until its sync): a new item each, and opposite
  // ticks of one item, which stay as siblings, shown alike on both sides.
  await desktop(db, 'add', 'demo', 'desktop, offline');
  await desktop(db, 'done', 'demo', '2', '1');
  doc.transact((t) => todos.addTodo(t, 'web, online'));
  doc.transact((t) => todos.setDone(t, todos.readTodos(doc)[2], false));
  await client.waitForAck('demo');
  await syncDesktop();
  const both = await desktopView();
  await until(() => webView(doc).todos.length === 5, 'the desktop demo\'s offline item');
  assert.deepEqual(webView(doc), both);
  assert.equal(both.todos.length, 5);
  assert.deepEqual(both.todos.map((i) => i.title).sort(),
    ['buy milk', 'call Bob', 'desktop, offline', 'from the web', 'web, online']);
  const ticked = both.todos.find((i) => i.title === 'from the web');
  assert.equal(ticked.conflicted, true);
  assert.equal(ticked.done, false);  // done only when every sibling says so
  // Both new items took order 4 (concurrent adds at the end): the ID breaks the tie alike.
  assert.deepEqual(both.todos.slice(3).map((i) => i.order), [4, 4]);

  // The web demo removes an item; the desktop demo no longer shows it.
  doc.transact((t) => assert.ok(todos.removeTodo(t, todos.readTodos(doc)[0])));
  await client.waitForAck('demo');
  await syncDesktop();
  const removed = await desktopView();
  assert.deepEqual(removed.todos.map((i) => i.title), both.todos.slice(1).map((i) => i.title));
  assert.deepEqual(webView(doc), removed);
});

test('presence: the web demo\'s payloads are the desktop demo\'s, so each shows the other\'s cursor', async () => {
  const { colorFor, decodePresence, encodePresence } =
    await import(pathToFileURL(path.join(here, '../demo/presence.js')).href);
  const db = path.join(dir, 'desktop-presence.db');
  const docId = 'presence';
  await desktop(db, 'init', docId);
  await cli(db, 'text-insert', docId, 'text', '0', 'hello, presence');
  const identity = await sync.Identity.generate();
  await cli(db, 'grant', docId, identity.hex, 'writer');
  await cli(db, 'sync', relay.url, '--doc', docId, '--timeout', '30');

  const web = new sync.SyncClient({ url: relay.url, identity, WebSocket, backoffMs: 20, maxBackoffMs: 200 });
  let timer;
  try {
    const doc = await web.open(docId);
    await until(() => webView(doc).text === 'hello, presence', 'the desktop\'s text to reach the web');
    // Text by both authors, so that the anchors name items of both.
    doc.transact((t) => t.root.text(TEXT_KEY).append(' and the web'));
    await web.waitForAck(docId);
    const id = doc.lookup(TEXT_KEY).id;
    assert.equal(doc.readText(id), 'hello, presence and the web');
    // The web demo's presence: caret in the web's text, the selection's other end in the desktop's.
    const name = 'web, ünïcode';
    const mine = encodePresence({ name, color: colorFor(doc.nodeId), cursor: doc.anchorAt(id, 20),
      anchor: doc.anchorAt(id, 3) });
    const got = [];
    web.on('presence', (e) => got.push(e));
    timer = setInterval(() => web.setPresence(docId, mine), 100);

    // The desktop demo's presence code, through the SDK's sync client: caret after "hello", the
    // other end before "web"; it prints what it received, decoded by presence.cpp.
    const out = await desktop(db, 'presence', docId, relay.url, 'qt desktop', '#3cb44b', '5', '24',
      '20000');
    const lines = out.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
    const fromWeb = lines.filter((l) => l.node === web.nodeId);
    assert.ok(fromWeb.length > 0, `the desktop received no presence from the web: ${out}`);
    for (const l of fromWeb) {
      assert.deepEqual(l, { node: web.nodeId, name, color: colorFor(doc.nodeId), cursor: 20, anchor: 3 });
    }

    // And the web read the desktop's, with its anchors at the same places in its text.
    const desktopPresence = got.map((e) => decodePresence(e.payload)).filter(Boolean)
      .find((p) => p.name === 'qt desktop');
    assert.ok(desktopPresence, `the web received no valid presence from the desktop (${got.length} payloads)`);
    assert.equal(desktopPresence.color, '#3cb44b');
    assert.equal(doc.indexOfAnchor(id, desktopPresence.cursor), 5);
    assert.equal(doc.indexOfAnchor(id, desktopPresence.anchor), 24);
    assert.equal(doc.readText(id).slice(24), 'web');
    // The anchors stay on their characters while the text changes before them.
    doc.transact((t) => t.root.text(TEXT_KEY).insert(0, '>> '));
    assert.equal(doc.indexOfAnchor(id, desktopPresence.cursor), 8);
    assert.equal(doc.indexOfAnchor(id, desktopPresence.anchor), 27);
  } finally {
    clearInterval(timer);
    web.close();
  }
});

test('presence payloads: malformed ones are refused, as the desktop demo refuses them', async () => {
  const { decodePresence, encodePresence, sanitizeName } =
    await import(pathToFileURL(path.join(here, '../demo/presence.js')).href);
  const enc = (s) => new TextEncoder().encode(s);
  const ok = 'weft-demo-presence/1\nann\n#00ff00\n00000000000000a1.3.L\n0.0.R';
  assert.deepEqual(decodePresence(enc(ok)), { name: 'ann', color: '#00ff00',
    cursor: { item: '00000000000000a1:3', bias: 'left' }, anchor: { item: '0000000000000000:0', bias: 'right' } });
  assert.deepEqual(decodePresence(encodePresence(decodePresence(enc(ok)))), decodePresence(enc(ok)));
  assert.deepEqual(decodePresence(enc('weft-demo-presence/1\nann\n#00ff00\n-\n-')).cursor, null);
  for (const bad of [
    'weft-demo-presence/2\nann\n#00ff00\n-\n-', 'weft-demo-presence/1\n\n#00ff00\n-\n-',
    'weft-demo-presence/1\nann\n00ff00\n-\n-', 'weft-demo-presence/1\nann\n#00ff00\n-',
    'weft-demo-presence/1\nann\n#00ff00\na1.0.L\n-', 'weft-demo-presence/1\nann\n#00ff00\n0.1.L\n-',
    'weft-demo-presence/1\nann\n#00ff00\na1.3.X\n-', 'weft-demo-presence/1\nann\n#00ff00\nA1.3.L\n-',
    'weft-demo-presence/1\nann\n#00ff00\na1.18446744073709551616.L\n-',
    `weft-demo-presence/1\n${'x'.repeat(65)}\n#00ff00\n-\n-`, 'weft-demo-presence/1\na\tb\n#00ff00\n-\n-',
    '{"name":"ann","anchor":null}',
  ]) assert.equal(decodePresence(enc(bad)), null, bad);
  assert.equal(decodePresence(new Uint8Array(2000)), null);
  assert.equal(sanitizeName('a\u0001b'), 'ab');
  assert.equal(sanitizeName(''), 'anonymous');
  assert.equal(new TextEncoder().encode(sanitizeName('é'.repeat(40))).length, 64);
});
