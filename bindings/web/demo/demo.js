// The web demo: a shared text with presence cursors and a to-do list, as apps/desktop-demo, in
// the browser: weft.js (WebAssembly) for the document, sync.js to the relay, IndexedDB offline.
// Open the page in two windows (or two browsers); ?doc=NAME picks the document, ?relay=ws://...
// the relay (by default the one serve.mjs started, named in /demo/config.json).
import * as weft from '/pkg/weft.js';
import { SyncClient, Identity } from '/pkg/sync.js';
import { IdbStore } from '/pkg/idb-store.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const config = await (await fetch('/demo/config.json')).json();
const docId = params.get('doc') ?? 'web-demo';
await weft.init();
const store = await IdbStore.open('weft-demo');
const identity = await Identity.load(store);
const client = new SyncClient({ url: params.get('relay') ?? config.relay, identity, store });
const doc = await client.open(docId);
$('name').value = localStorage.getItem('weft-demo-name') ?? `guest-${identity.hex.slice(0, 4)}`;
$('name').onchange = () => { localStorage.setItem('weft-demo-name', $('name').value); sendPresence(); };

const chars = (s) => Array.from(s);
const textId = () => doc.lookup('notes')?.id;
const todosId = () => doc.lookup('todos')?.id;

// --- Text: local edits become the smallest insert/delete; remote ones keep the caret in place.
let shown = '';
$('text').addEventListener('input', () => {
  const before = chars(shown);
  const after = chars($('text').value);
  let p = 0;
  while (p < before.length && p < after.length && before[p] === after[p]) ++p;
  let s = 0;
  while (s < before.length - p && s < after.length - p &&
         before[before.length - 1 - s] === after[after.length - 1 - s]) ++s;
  doc.transact((t) => {
    const text = t.root.text('notes');
    if (before.length - p - s > 0) text.delete(p, before.length - p - s);
    if (after.length - p - s > 0) text.insert(p, after.slice(p, after.length - s).join(''));
  });
  shown = $('text').value;
  sendPresence();
});
$('text').addEventListener('keyup', () => sendPresence());
$('text').addEventListener('click', () => sendPresence());

function renderText() {
  const id = textId();
  const value = id ? doc.readText(id) : '';
  if (value === shown) return;
  const ta = $('text');
  const caret = id && document.activeElement === ta
    ? doc.anchorAt(id, chars(ta.value.slice(0, ta.selectionStart)).length) : null;
  ta.value = shown = value;
  if (caret) {
    const at = chars(value).slice(0, doc.indexOfAnchor(id, caret)).join('').length;
    ta.setSelectionRange(at, at);
  }
}

// --- Presence: name and caret as an anchor (stable under concurrent edits).
const peers = new Map();
function sendPresence() {
  const id = textId();
  const ta = $('text');
  const anchor = id ? doc.anchorAt(id, chars(ta.value.slice(0, ta.selectionStart)).length) : null;
  client.setPresence(docId, new TextEncoder().encode(JSON.stringify({ name: $('name').value, anchor })));
}
client.on('presence', ({ node, payload }) => {
  try { peers.set(node, { ...JSON.parse(new TextDecoder().decode(payload)), seen: Date.now() }); } catch {}
  renderCursors();
});
function renderCursors() {
  const id = textId();
  $('cursors').replaceChildren(...[...peers.values()].filter((p) => Date.now() - p.seen < 60000).map((p) => {
    const span = document.createElement('span');
    let at = '?';
    try { if (id && p.anchor) at = doc.indexOfAnchor(id, p.anchor); } catch {}
    span.textContent = `${p.name} @ ${at}`;
    return span;
  }));
}

// --- To-do list: a list of maps {title, done}.
$('add').onsubmit = (e) => {
  e.preventDefault();
  const title = $('item').value.trim();
  if (!title) return;
  doc.transact((t) => t.root.list('todos').insertMap(t.root.list('todos').length).put('title', title).put('done', false));
  $('item').value = '';
};
function renderTodos() {
  const id = todosId();
  const items = id ? doc.readList(id) : [];
  $('todos').replaceChildren(...items.map((ref, i) => {
    const li = document.createElement('li');
    const box = document.createElement('input');
    box.type = 'checkbox';
    box.checked = !!doc.get(ref.id, 'done');
    box.onchange = () => doc.transact((t) => t.put(ref.id, 'done', box.checked));
    const title = document.createElement('span');
    title.textContent = ` ${doc.get(ref.id, 'title')} `;
    const del = document.createElement('button');
    del.textContent = 'x';
    del.onclick = () => doc.transact((t) => t.listDelete(id, i, 1));
    li.className = box.checked ? 'done' : '';
    li.append(box, title, del);
    return li;
  }));
}

function render() { renderText(); renderTodos(); renderCursors(); }
doc.subscribe(render);
render();

client.on('status', ({ state }) => { $('status').textContent = state; $('status').className = state; });
$('toggle').onclick = () => {
  if (client.online) { client.goOffline(); $('toggle').textContent = 'Go online'; }
  else { client.goOnline(); $('toggle').textContent = 'Go offline'; }
};
setInterval(() => { $('lag').textContent = `unsent: ${client.lag(docId)}`; renderCursors(); }, 500);
