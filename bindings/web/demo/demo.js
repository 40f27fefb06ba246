// The web demo: a shared text with presence cursors and a to-do list, as apps/desktop-demo, in
// the browser: weft.js (WebAssembly) for the document, sync.js to the relay, IndexedDB offline.
// Open the page in two windows (or two browsers); ?doc=NAME picks the document (by default "demo",
// the desktop demo's), ?relay=ws://... the relay (by default the one serve.mjs started, named in
// /demo/config.json). The document's layout is the desktop demo's (todo.js).
import * as weft from '/pkg/weft.js';
import { SyncClient, Identity } from '/pkg/sync.js';
import { IdbStore } from '/pkg/idb-store.js';
import { TEXT_KEY, todoModel } from './todo.js';
import { colorFor, decodePresence, encodePresence } from './presence.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const config = await (await fetch('/demo/config.json')).json();
const docId = params.get('doc') ?? 'demo';
const todos = todoModel(weft);
await weft.init();
const store = await IdbStore.open('weft-demo');
const identity = await Identity.load(store);
const client = new SyncClient({ url: params.get('relay') ?? config.relay, identity, store });
const doc = await client.open(docId);
$('name').value = localStorage.getItem('weft-demo-name') ?? `guest-${identity.hex.slice(0, 4)}`;
$('name').onchange = () => { localStorage.setItem('weft-demo-name', $('name').value); sendPresence(); };

const chars = (s) => Array.from(s);
const textId = () => doc.lookup(TEXT_KEY)?.id;

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
    const text = t.root.text(TEXT_KEY);
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

// --- Presence: the desktop demo's payloads (presence.js), so that the web and Qt demos show each
// other's cursors: a name, a colour, and the caret and the selection's other end as anchors
// (stable under concurrent edits). Sent on every caret move and each second, as the desktop
// demo does; a peer silent for 5 s has left (the desktop demo's timeout).
const PRESENCE_EVERY_MS = 1000;
const PRESENCE_TIMEOUT_MS = 5000;
const peers = new Map();
const color = colorFor(doc.nodeId);
function sendPresence() {
  const id = textId();
  const ta = $('text');
  const index = (utf16) => chars(ta.value.slice(0, utf16)).length;
  const [caret, other] = ta.selectionDirection === 'backward'
    ? [ta.selectionStart, ta.selectionEnd] : [ta.selectionEnd, ta.selectionStart];
  let cursor = null;
  let anchor = null;
  try {
    if (id) [cursor, anchor] = [doc.anchorAt(id, index(caret)), doc.anchorAt(id, index(other))];
  } catch {} // the text changed under the textarea: the next tick has it
  client.setPresence(docId, encodePresence({ name: $('name').value, color, cursor, anchor }));
}
setInterval(sendPresence, PRESENCE_EVERY_MS);
client.on('presence', ({ node, payload }) => {
  const p = decodePresence(payload);
  if (p) peers.set(node, { ...p, seen: Date.now() });
  renderCursors();
});
function renderCursors() {
  const id = textId();
  for (const [node, p] of peers) if (Date.now() - p.seen > PRESENCE_TIMEOUT_MS) peers.delete(node);
  $('cursors').replaceChildren(...[...peers.values()].map((p) => {
    const span = document.createElement('span');
    let at = '?';
    try { if (id && p.cursor) at = doc.indexOfAnchor(id, p.cursor); } catch {}
    span.textContent = `${p.name} @ ${at}`;
    span.style.color = p.color;
    return span;
  }));
}

// --- To-do list: a list of maps {title, done, order}, as the desktop demo's.
$('add').onsubmit = (e) => {
  e.preventDefault();
  const title = $('item').value.trim();
  if (!title) return;
  doc.transact((t) => todos.addTodo(t, title));
  $('item').value = '';
};
function renderTodos() {
  $('todos').replaceChildren(...todos.readTodos(doc).map((item) => {
    const li = document.createElement('li');
    const box = document.createElement('input');
    box.type = 'checkbox';
    box.checked = item.done;
    box.onchange = () => doc.transact((t) => todos.setDone(t, item, box.checked));
    const title = document.createElement('span');
    title.textContent = ` ${item.title}${item.conflicted ? ' (conflict)' : ''} `;
    const del = document.createElement('button');
    del.textContent = 'x';
    del.onclick = () => doc.transact((t) => todos.removeTodo(t, item));
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
