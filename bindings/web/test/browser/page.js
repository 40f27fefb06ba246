// The page the browser_* tests drive: a device in the browser (IndexedDB op log, a key pair kept
// there, the browser's WebSocket) syncing one document with the relay named in the query string
// (?relay=ws://...&doc=NAME). window.app is what the test calls through page.evaluate.
import * as weft from '/pkg/weft.js';
import { SyncClient, Identity } from '/pkg/sync.js';
import { IdbStore } from '/pkg/idb-store.js';

const params = new URLSearchParams(location.search);
const relay = params.get('relay');
const docId = params.get('doc');

async function start() {
  await weft.init();
  const store = await IdbStore.open('weft-test');
  const identity = await Identity.load(store);
  const snapshotEvery = Number(params.get('snapshotEvery') ?? 1000);
  const client = new SyncClient({ url: relay, identity, store, backoffMs: 50, maxBackoffMs: 500,
    snapshotEvery });
  const doc = await client.open(docId);
  const show = () => { document.getElementById('state').textContent = doc.canonicalJson(); };
  doc.subscribe(show);
  show();
  const presence = new Map();
  client.on('presence', (p) => presence.set(p.node, new TextDecoder().decode(p.payload)));
  return {
    client, doc, identity: identity.hex,
    state: () => JSON.stringify(doc.toJSON()),
    canonical: () => doc.canonicalJson(),
    items: () => doc.toJSON().items ?? [],
    push: (item) => doc.transact((t) => t.root.list('items').push(item)),
    put: (key, value) => doc.transact((t) => t.root.put(key, value)),
    append: (key, s) => doc.transact((t) => t.root.text(key).append(s)),
    flush: () => client.docs.get(docId).writes,
    stored: async () => (await store.loadChanges(docId)).length,
    hasSnapshot: async () => (await store.loadSnapshot(docId)) !== null,
    offline: () => client.goOffline(),
    online: () => client.goOnline(),
    status: () => client.state,
    lag: () => client.lag(docId),
    setPresence: (s) => client.setPresence(docId, new TextEncoder().encode(s)),
    presence: () => Object.fromEntries(presence),
  };
}

window.app = null;
window.appError = null;
start().then((a) => { window.app = a; }, (e) => { window.appError = String(e?.stack ?? e); });
