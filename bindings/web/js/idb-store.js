// Offline storage for the browser: the op log of each document in IndexedDB (the SDK keeps it in
// SQLite), and the device's key pair (its private key a non-extractable CryptoKey, which
// IndexedDB stores as it is). The interface is sync.js's MemoryStore: a SyncClient stores every
// local change before sending it and every received change before acknowledging it, so an edit
// made offline survives a reload of the page and goes out when the client reconnects.
//
// Layout (database `name`, version 1): object store `changes` (auto-increment key; {doc, bytes},
// index `doc`): the op log; `snapshots` (doc -> the latest snapshot, with history, that replaced
// the log's first rows); `meta` (key -> value; `identity` holds the key pair).
// Thread safety: one IdbStore per page or worker; IndexedDB orders the transactions.

const req = (r) => new Promise((resolve, reject) => {
  r.onsuccess = () => resolve(r.result);
  r.onerror = () => reject(r.error);
});

const done = (tx) => new Promise((resolve, reject) => {
  tx.oncomplete = () => resolve();
  tx.onerror = () => reject(tx.error);
  tx.onabort = () => reject(tx.error ?? new Error('IndexedDB transaction aborted'));
});

export class IdbStore {
  /** @param {IDBDatabase} db */
  constructor(db) { this.db = db; }

  /** Opens (making it on first use) the database `name`. @returns {Promise<IdbStore>} */
  static async open(name = 'weft', indexedDB = globalThis.indexedDB) {
    if (!indexedDB) throw new Error('IdbStore: this environment has no IndexedDB');
    const r = indexedDB.open(name, 1);
    r.onupgradeneeded = () => {
      const db = r.result;
      const changes = db.createObjectStore('changes', { autoIncrement: true });
      changes.createIndex('doc', 'doc');
      db.createObjectStore('meta');
      db.createObjectStore('snapshots');
    };
    return new IdbStore(await req(r));
  }

  async getIdentity() { return this.getMeta('identity'); }
  async putIdentity(id) { return this.putMeta('identity', id); }

  async getMeta(key) {
    const tx = this.db.transaction('meta', 'readonly');
    return req(tx.objectStore('meta').get(key));
  }

  async putMeta(key, value) {
    const tx = this.db.transaction('meta', 'readwrite');
    tx.objectStore('meta').put(value, key);
    return done(tx);
  }

  /** Every change stored for `doc`, in the order stored. @returns {Promise<Uint8Array[]>} */
  async loadChanges(doc) {
    const tx = this.db.transaction('changes', 'readonly');
    const rows = await req(tx.objectStore('changes').index('doc').getAll(IDBKeyRange.only(doc)));
    return rows.map((r) => new Uint8Array(r.bytes));
  }

  /** Appends changes of `doc` in one transaction (all or none). */
  async appendChanges(doc, changes) {
    const tx = this.db.transaction('changes', 'readwrite');
    const s = tx.objectStore('changes');
    for (const bytes of changes) s.add({ doc, bytes });
    return done(tx);
  }

  /** The latest snapshot of `doc` (Uint8Array) or null. */
  async loadSnapshot(doc) {
    const tx = this.db.transaction('snapshots', 'readonly');
    const b = await req(tx.objectStore('snapshots').get(doc));
    return b ? new Uint8Array(b) : null;
  }

  /**
   * Keeps `snapshot` as the document's base and drops the first `covered` changes stored for it
   * (those the snapshot holds), in one transaction: a reload finds either the old log or the
   * snapshot and the rest of the log, never a mix.
   */
  async putSnapshot(doc, snapshot, covered) {
    const tx = this.db.transaction(['changes', 'snapshots'], 'readwrite');
    const changes = tx.objectStore('changes');
    tx.objectStore('snapshots').put(snapshot, doc);
    const keys = await req(changes.index('doc').getAllKeys(IDBKeyRange.only(doc)));
    for (const k of keys.slice(0, covered)) changes.delete(k);
    return done(tx);
  }

  close() { this.db.close(); }
}
