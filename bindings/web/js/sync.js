// The sync client for the browser (and Node.js): a device that keeps documents of weft.js in sync
// with a relay over a WebSocket, speaking the protocol of docs/protocol.md (version 3) exactly as
// the native client does (sdk/src/sync/link.cpp, the dialer's side), with the authenticated
// handshake of docs/security.md ("Sessions"): Ed25519 keys through Web Crypto.
//
//   const id = await Identity.generate();              // or Identity.load(store)
//   const client = new SyncClient({url: 'ws://127.0.0.1:8080/', identity: id, store});
//   const doc = await client.open('notes');            // loads what the store holds, then syncs
//   doc.transact((t) => t.root.text('body').append('hi'));  // sent live; stored first
//   client.setPresence('notes', bytes);                 // ephemeral, fanned out by the relay
//   client.on('presence', ({doc, node, payload}) => ...);
//   client.close();
//
// What it does: Hello (key, nonce, audience = the URL) -> checks the relay's proof -> Auth; then a
// Have per open document; sends what the relay's Have shows it lacks and every local change live;
// applies (and stores, before acknowledging) what the relay sends; Presence both ways; reconnects
// with exponential backoff and jitter while not closed. The store (idb-store.js in a browser,
// MemoryStore otherwise) is the op log: edits made offline are in it and go out on reconnecting.
//
// Owned documents (docs/security.md): a document opened with {owned: true} is created with this
// device as its owner; in any owned document this device's author is bound to its key (a signed
// bind op in its first change) and its changes are signed as they are stored; every change
// received of an owned document is checked (bindings and signature) before anything of its batch
// is applied. Not here: granting and revoking from JS. Snapshots from the relay (SnapshotChunk) are answered
// with an Error, as a peer that does not take them.
//
// Thread safety: one client per thread (page or worker); callbacks run on that thread's loop.

import * as weft from './weft.js';
import * as wire from './wire.js';
import { blake2b } from './blake2b.js';

const webCrypto = globalThis.crypto ?? (await import('node:crypto')).webcrypto;
const subtle = webCrypto.subtle;
const utf8 = new TextEncoder();

export const SESSION_PURPOSE = 'weft/session/v1';
const BIND_PURPOSE = 'weft/bind/v1';     // sdk/include/weft/identity.h
const CHANGE_PURPOSE = 'weft/change/v1';
const PROOF_LIFETIME_S = 120;  // sdk/src/sync/session_auth.h
const CLOCK_SKEW_S = 300;
const NONCE_BYTES = 32;
const BATCH_CHANGES = 512;     // docs/protocol.md: at most 512 changes and about 1 MiB a batch
const BATCH_BYTES = 1 << 20;
const ANTI_ENTROPY_MS = 30000;

function concat(parts) {
  const n = parts.reduce((a, p) => a + p.length, 0);
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}

function u64(v) {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(v));
  return b;
}

/** The bytes a signature covers (sdk/src/identity.cpp, Signed): purpose, a zero byte, message. */
function signed(purpose, message) {
  return concat([utf8.encode(purpose), new Uint8Array([0]), message]);
}

/** sdk/src/sync/session_auth.cpp, SessionTranscript (exported for tests that play a relay). */
export function sessionTranscript(acceptor, signer, other, otherNonce, audience, expires) {
  const aud = utf8.encode(audience);
  return concat([utf8.encode(acceptor ? 'acceptor' : 'dialer'), new Uint8Array([0]), signer, other,
    u64(otherNonce.length), otherNonce, u64(aud.length), aud, u64(expires)]);
}

const nowS = () => Math.floor(Date.now() / 1000);

/** Random bytes from Web Crypto. */
export function randomBytes(n) {
  return webCrypto.getRandomValues(new Uint8Array(n));
}

/** A random node ID (16 hex digits, never 0). */
export function randomNodeId() {
  for (;;) {
    const id = Array.from(randomBytes(8), (b) => b.toString(16).padStart(2, '0')).join('');
    if (!/^0+$/.test(id)) return id;
  }
}

/**
 * A device's Ed25519 key pair (Web Crypto). The public key (32 bytes) is the device's identity,
 * as `weft id` prints it for a native device. The private key is a non-extractable CryptoKey when
 * generated with {extractable: false} (a browser keeps it in IndexedDB as it is).
 */
export class Identity {
  constructor(privateKey, publicKey, publicBytes) {
    this.privateKey = privateKey;
    this.publicKey = publicKey;
    /** @type {Uint8Array} */
    this.publicBytes = publicBytes;
  }

  /** @returns {Promise<Identity>} */
  static async generate({ extractable = false } = {}) {
    const kp = await subtle.generateKey({ name: 'Ed25519' }, extractable, ['sign', 'verify']);
    const raw = new Uint8Array(await subtle.exportKey('raw', kp.publicKey));
    return new Identity(kp.privateKey, kp.publicKey, raw);
  }

  /** The identity a store keeps (made and kept there on first use). @returns {Promise<Identity>} */
  static async load(store) {
    const kept = await store.getIdentity();
    if (kept) return new Identity(kept.privateKey, kept.publicKey, kept.publicBytes);
    const id = await Identity.generate();
    await store.putIdentity({ privateKey: id.privateKey, publicKey: id.publicKey,
      publicBytes: id.publicBytes });
    return id;
  }

  /** The public key as 64 hex digits. */
  get hex() { return Array.from(this.publicBytes, (b) => b.toString(16).padStart(2, '0')).join(''); }

  /** An Ed25519 signature of `message` under `purpose` (domain-separated, as the SDK signs). */
  async sign(purpose, message) {
    return new Uint8Array(await subtle.sign({ name: 'Ed25519' }, this.privateKey, signed(purpose, message)));
  }
}

/** Verifies an Ed25519 signature by a raw 32-byte public key; false for anything malformed. */
export async function verify(publicBytes, purpose, message, signature) {
  if (publicBytes.length !== 32 || signature.length !== 64) return false;
  try {
    const key = await subtle.importKey('raw', publicBytes, { name: 'Ed25519' }, false, ['verify']);
    return await subtle.verify({ name: 'Ed25519' }, key, signature, signed(purpose, message));
  } catch {
    return false;
  }
}

/** An op log kept in memory (what a Node.js tool or a test uses instead of IndexedDB). */
export class MemoryStore {
  constructor() { this._docs = new Map(); this._identity = null; this._meta = new Map(); }
  async getIdentity() { return this._identity; }
  async putIdentity(id) { this._identity = id; }
  /** @returns {Promise<Uint8Array[]>} every change stored for `doc`, in the order stored */
  async loadChanges(doc) { return [...(this._docs.get(doc) ?? [])]; }
  async appendChanges(doc, changes) {
    if (!this._docs.has(doc)) this._docs.set(doc, []);
    this._docs.get(doc).push(...changes);
  }
  async getMeta(key) { return this._meta.get(key); }
  async putMeta(key, value) { this._meta.set(key, value); }
  /** The latest snapshot of `doc` (Uint8Array) or null. */
  async loadSnapshot(doc) { return this._snapshots?.get(doc) ?? null; }
  /**
   * Keeps `snapshot` as the document's base and drops the first `covered` changes stored for it
   * (those the snapshot holds), at once.
   */
  async putSnapshot(doc, snapshot, covered) {
    (this._snapshots ??= new Map()).set(doc, snapshot);
    this._docs.set(doc, (this._docs.get(doc) ?? []).slice(covered));
  }
}

/** The entry-wise maximum of two version vectors (what a peer is known to hold, from either). */
const versionMax = (a, b) => {
  const out = { ...(a ?? {}) };
  for (const [n, s] of Object.entries(b ?? {})) if ((out[n] ?? 0) < s) out[n] = s;
  return out;
};
const versionCovers = (a, b) => Object.entries(b).every(([n, s]) => (a[n] ?? 0) >= s);
const lagOf = (local, acked) =>
  Object.entries(local).reduce((sum, [n, s]) => sum + Math.max(0, s - (acked?.[n] ?? 0)), 0);

/** A fatal refusal of the session (the relay's, or this client's of the relay). */
export class SyncError extends Error {
  constructor(code, message, doc = '') {
    super(message);
    this.name = 'SyncError';
    this.code = code;
    this.doc = doc;
  }
}

/**
 * A device's connection to one relay, for the documents it opens.
 * Events (on(name, fn)): 'status' ({state: 'connecting'|'open'|'closed', error?}), 'presence'
 * ({doc, node, payload}), 'error' ({code, message, doc, fatal}: the relay's Error or this
 * client's refusal), 'ack' ({doc, version}), 'change' ({doc}: remote changes applied).
 */
export class SyncClient {
  /**
   * @param {object} o
   * @param {string} o.url ws:// or wss:// URL of the relay (also the handshake's audience)
   * @param {Identity} o.identity the device's key pair
   * @param {object} [o.store] where the op log is kept (MemoryStore by default)
   * @param {Function} [o.WebSocket] the WebSocket class (globalThis.WebSocket by default; `ws`
   *   in Node.js 18, which has none)
   * @param {Uint8Array} [o.token] an admission token (weft issue-token), when the relay asks
   * @param {string} [o.relayKey] refuse a relay whose key is not this (64 hex digits)
   * @param {string} [o.nodeId] this client's node ID (random by default)
   * @param {number} [o.backoffMs] first reconnect delay (doubles up to maxBackoffMs)
   * @param {number} [o.maxBackoffMs]
   * @param {number} [o.snapshotEvery] stored changes after which the op log is compacted into a
   *   snapshot (1000)
   */
  constructor(o) {
    this.url = o.url;
    this.identity = o.identity;
    this.store = o.store ?? new MemoryStore();
    this.WebSocket = o.WebSocket ?? globalThis.WebSocket;
    this.token = o.token ?? null;
    this.relayKey = o.relayKey ?? null;
    this.nodeId = o.nodeId ?? randomNodeId();
    this.backoffMs = o.backoffMs ?? 250;
    this.maxBackoffMs = o.maxBackoffMs ?? 10000;
    this.snapshotEvery = o.snapshotEvery ?? 1000;
    this.docs = new Map();       // doc ID -> {doc, peerHas, acked, presence, unsub}
    this.listeners = new Map();
    this.ws = null;
    this.state = 'closed';       // 'connecting' | 'open' | 'closed'
    this.closed = false;
    this.online = true;
    this.attempt = 0;
    this.timer = null;
    this.session = null;         // per connection: {nonce, authenticated}
    this.queue = Promise.resolve(); // frames are handled one after another (storage is async)
    if (!this.WebSocket) throw new TypeError('SyncClient: no WebSocket class (pass o.WebSocket)');
  }

  on(name, fn) {
    if (!this.listeners.has(name)) this.listeners.set(name, new Set());
    this.listeners.get(name).add(fn);
    return () => this.listeners.get(name).delete(fn);
  }

  _emit(name, ev) {
    for (const fn of [...(this.listeners.get(name) ?? [])]) {
      try { fn(ev); } catch (e) { setTimeout(() => { throw e; }); }
    }
  }

  /**
   * Opens a document: loads the changes the store holds (in a new Document, authoring under a
   * fresh node ID so that no seq is ever reused), subscribes it on this connection, and from then
   * on stores and sends its local changes. Returns the weft.Document.
   */
  async open(docId, { nodeId, owned = false } = {}) {
    if (this.docs.has(docId)) return this.docs.get(docId).doc;
    // The stored snapshot (with its history, so that changesSince can answer the relay), then
    // the changes stored after it.
    const options = { nodeId: nodeId ?? randomNodeId() };
    const snapshot = await this.store.loadSnapshot?.(docId);
    const doc = snapshot ? weft.Document.load(snapshot, options) : new weft.Document(options);
    const stored = await this.store.loadChanges(docId);
    if (stored.length) doc.applyChanges(stored);
    const st = { doc, peerHas: null, acked: null, presence: null, unsub: null, writes: Promise.resolve(),
      signed: new Map(), logged: stored.length };
    // Authorship in owned documents (the SDK's AddAuthorship): a new document opened with
    // {owned: true} gets this device's key as its owner in its first change; in an owned
    // document, this author's first change binds it to the key, with a proof signed now (a
    // transaction cannot wait for Web Crypto).
    const me = this.identity.publicBytes;
    const proof = await this.identity.sign(BIND_PURPOSE, concat([utf8.encode(docId), new Uint8Array([0]),
      u64(BigInt('0x' + doc.nodeId)), me]));
    doc.beforeCommit = (t) => {
      const access = doc.access;
      if (owned && !access.owned && Object.keys(doc.version).length === 0) {
        t.createAccess(me);
        t.bindAuthor(me, proof);
      } else if (access.owned && !access.bound) {
        t.bindAuthor(me, proof);
      }
    };
    st.unsub = doc.subscribe((ev) => {
      if (!ev.local || !ev.change) return;
      const bytes = ev.change.bytes;
      // Stored before it is sent: the op log is the offline queue. In an owned document the
      // change is signed first (stored signed, so that it goes out the same after a reload).
      st.writes = st.writes.then(() => this._signOwn(docId, st, [bytes]))
        .then(async (signed) => {
          await this._append(docId, st, signed);
          this._sendLive(docId, st, signed);
        })
        .catch((e) => this._emit('error', { code: 'storage', message: String(e), doc: docId, fatal: false }));
    });
    this.docs.set(docId, st);
    if (this.session?.authenticated) this._send({ have: { doc: docId, version: doc.version } });
    else this.connect();
    return doc;
  }

  /** Starts connecting (open() does it; after goOffline(), goOnline()). */
  connect() {
    if (this.closed || !this.online || this.ws || this.timer) return;
    this._dial();
  }

  /** Closes the connection and stops reconnecting until goOnline() (edits go on, stored). */
  goOffline() {
    this.online = false;
    clearTimeout(this.timer);
    this.timer = null;
    if (this.ws) this.ws.close(1000, 'offline');
  }

  goOnline() {
    this.online = true;
    this.attempt = 0;
    this.connect();
  }

  /** Closes for good. */
  close() {
    this.closed = true;
    this.goOffline();
    for (const st of this.docs.values()) st.unsub?.();
  }

  /** Sets (and sends, now and after every reconnect) this device's presence on `doc`. */
  setPresence(docId, payload) {
    const st = this.docs.get(docId);
    if (!st) throw new Error(`setPresence: ${docId} is not open`);
    st.presence = payload;
    if (this.session?.authenticated && st.peerHas) {
      this._send({ presence: { doc: docId, node: this.nodeId, payload, path: [this.nodeId] } });
    }
  }

  /**
   * How far the relay is behind on `doc`: the local changes' seqs it has not acknowledged
   * (every seq of every author this replica holds counts, as the SDK's lag does).
   */
  lag(docId) {
    const st = this.docs.get(docId);
    if (!st) return 0;
    return lagOf(st.doc.version, st.acked);
  }

  /** Resolves once the relay acknowledged everything this replica holds of `doc`. */
  waitForAck(docId, { timeoutMs = 10000 } = {}) {
    return this._waitFor(() => {
      const st = this.docs.get(docId);
      return st && st.acked && versionCovers(st.acked, st.doc.version);
    }, timeoutMs, `the relay to acknowledge ${docId}`);
  }

  /** Resolves when `cond()` holds (checked after every frame and local change). */
  _waitFor(cond, timeoutMs, what) {
    if (cond()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const offs = [];
      const done = (err) => { clearTimeout(t); offs.forEach((f) => f()); err ? reject(err) : resolve(); };
      const check = () => { if (cond()) done(); };
      const t = setTimeout(() => done(new Error(`timed out waiting for ${what}`)), timeoutMs);
      for (const ev of ['ack', 'change', 'status']) offs.push(this.on(ev, check));
    });
  }

  // --- The connection -------------------------------------------------------------------

  _dial() {
    this._setState('connecting');
    let ws;
    try {
      ws = new this.WebSocket(this.url);
    } catch (e) {
      this._setState('closed', String(e));
      return this._retry();
    }
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    const session = { nonce: randomBytes(NONCE_BYTES), authenticated: false, ws };
    this.session = session;
    ws.onopen = () => {
      this._send({ hello: { nodeId: this.nodeId, credentials: this.token, agent: 'weft-web/0.1',
        role: 'device', publicKey: this.identity.publicBytes, nonce: session.nonce,
        audience: this.url } });
    };
    ws.onmessage = (ev) => {
      if (typeof ev.data === 'string') {
        return this._fail(session, 'malformed', 'a text frame (the protocol sends binary frames only)');
      }
      const frame = new Uint8Array(ev.data);
      this.queue = this.queue.then(() => this._onFrame(session, frame)).catch((e) =>
        this._fail(session, 'internal', `handling a frame failed: ${e?.message ?? e}`));
    };
    ws.onerror = () => {};
    ws.onclose = (ev) => {
      clearInterval(session.antiEntropy);
      if (this.ws !== ws) return;
      this.ws = null;
      this.session = null;
      for (const st of this.docs.values()) st.peerHas = null;
      this._setState('closed', ev.reason || `closed (${ev.code})`);
      this._retry();
    };
  }

  _retry() {
    if (this.closed || !this.online || this.timer) return;
    const base = Math.min(this.maxBackoffMs, this.backoffMs * 2 ** Math.min(this.attempt, 16));
    const delay = base / 2 + Math.random() * base / 2;
    this.attempt += 1;
    this.timer = setTimeout(() => { this.timer = null; this.connect(); }, delay);
  }

  _setState(state, error) {
    this.state = state;
    this._emit('status', { state, error });
  }

  _send(m) {
    const ws = this.ws;
    if (!ws || ws.readyState !== 1) return false;
    ws.send(wire.encode(m));
    return true;
  }

  /** Refuses the session: an Error to the relay, a close, and an 'error' event. */
  _fail(session, code, message) {
    if (this.session !== session) return;
    this._emit('error', { code, message, doc: '', fatal: true });
    this._send({ error: { code, message, fatal: true } });
    const closeCode = code === 'malformed' ? 1002 : code === 'tooLarge' ? 1009 : 1008;
    try {
      session.ws.close(closeCode, message.slice(0, 60));
    } catch {
      session.ws.close(1000); // a browser lets a page close only with 1000 or 3000-4999
    }
  }

  async _onFrame(session, frame) {
    if (this.session !== session) return;
    let m;
    try {
      m = wire.decode(frame);
    } catch (e) {
      return this._fail(session, e.code ?? 'malformed', e.message);
    }
    if (!session.authenticated && m.kind !== 'hello' && m.kind !== 'error') {
      return this._fail(session, 'unexpected', `a ${m.kind} message before the handshake completed`);
    }
    switch (m.kind) {
      case 'hello': return this._onHello(session, m);
      case 'have': return this._onHave(m);
      case 'changes': return this._onChanges(session, m);
      case 'ack': return this._onAck(m);
      case 'presence': return this._onPresence(m);
      case 'error': return this._onError(session, m);
      case 'snapshotChunk':
        // Not taken here: the relay then sends the log (docs/protocol.md, Snapshots).
        this._send({ error: { code: 'unexpected', message: 'this client takes no snapshots', doc: m.doc } });
        return;
      default:
        return this._fail(session, 'unexpected', `an unexpected ${m.kind} message`);
    }
  }

  async _onHello(session, m) {
    if (session.authenticated) return this._fail(session, 'unexpected', 'a second Hello');
    if (m.protocolVersion !== wire.PROTOCOL_VERSION) {
      return this._fail(session, 'unsupportedVersion', `protocol version ${m.protocolVersion} is not ` +
        `supported; this peer speaks version ${wire.PROTOCOL_VERSION} (upgrade the older side)`);
    }
    if (m.nodeId === '0000000000000000') return this._fail(session, 'malformed', 'a Hello without a node ID');
    if (m.nodeId === this.nodeId) return this._fail(session, 'unexpected', 'connected to itself');
    if (m.publicKey.length !== 32 || m.nonce.length !== NONCE_BYTES) {
      return this._fail(session, 'unauthenticated', 'a Hello without a public key and a nonce');
    }
    const keyHex = Array.from(m.publicKey, (b) => b.toString(16).padStart(2, '0')).join('');
    if (this.relayKey && keyHex !== this.relayKey.toLowerCase()) {
      return this._fail(session, 'unauthenticated', `the peer's key is ${keyHex}, not the expected ${this.relayKey}`);
    }
    const now = nowS();
    const expires = Number(m.expires);
    if (expires + CLOCK_SKEW_S < now) return this._fail(session, 'unauthenticated', 'the handshake proof has expired');
    if (expires > now + PROOF_LIFETIME_S + CLOCK_SKEW_S) {
      return this._fail(session, 'unauthenticated', 'the handshake proof claims to be valid for too long');
    }
    const transcript = sessionTranscript(true, m.publicKey, this.identity.publicBytes, session.nonce,
      this.url, m.expires);
    if (!(await verify(m.publicKey, SESSION_PURPOSE, transcript, m.proof))) {
      return this._fail(session, 'unauthenticated',
        "the handshake proof is not a signature of this session by the peer's key");
    }
    const ours = BigInt(nowS() + PROOF_LIFETIME_S);
    const proof = await this.identity.sign(SESSION_PURPOSE, sessionTranscript(false,
      this.identity.publicBytes, m.publicKey, m.nonce, this.url, ours));
    if (this.session !== session) return;
    this._send({ auth: { proof, expires: ours } });
    session.authenticated = true;
    session.relayKey = keyHex;
    this.attempt = 0;
    this._setState('open');
    for (const [docId, st] of this.docs) this._send({ have: { doc: docId, version: st.doc.version } });
    // Anti-entropy (docs/protocol.md): a Have for every document every 30 s; the relay sends
    // whatever it shows missing, and its answer shows what it lacks.
    session.antiEntropy = setInterval(() => {
      if (this.session !== session) return clearInterval(session.antiEntropy);
      for (const [docId, st] of this.docs) this._send({ have: { doc: docId, version: st.doc.version } });
    }, ANTI_ENTROPY_MS);
    session.antiEntropy.unref?.(); // Node.js: not what keeps a process alive
  }

  /**
   * In an owned document, this author's changes signed as the SDK signs them (Ed25519 over
   * `weft/change/v1` and BLAKE2b-256 of the document ID, a zero byte and the change without its
   * signature); every other change as it is. Signatures are deterministic: a change signed again
   * is the same bytes (kept per change ID anyway).
   */
  async _signOwn(docId, st, changes) {
    if (!st.doc.access.owned) return changes;
    const out = [];
    for (const bytes of changes) {
      const c = weft.decodeChange(bytes);
      if (c.signed || c.author !== st.doc.nodeId) { out.push(bytes); continue; }
      let signed = st.signed.get(c.id);
      if (!signed) {
        const digest = blake2b(concat([utf8.encode(docId), new Uint8Array([0]), weft.changeUnsigned(bytes)]));
        signed = weft.changeWithSignature(bytes, await this.identity.sign(CHANGE_PURPOSE, digest));
        st.signed.set(c.id, signed);
      }
      out.push(signed);
    }
    return out;
  }

  /**
   * In an owned document (or a batch that creates one), every change's bindings are signed by
   * the key they name (`weft/bind/v1`) and the change by its author's bound key
   * (`weft/change/v1`), as the SDK's replicas check (sdk/src/replica.cpp): so a relay cannot
   * forge, alter or move a change. Throws an Error saying which check failed.
   */
  async _checkAuthorship(docId, st, changes) {
    let owned = st.doc.access.owned;
    const learned = new Map(); // authors bound by earlier changes of this batch
    const docBytes = utf8.encode(docId);
    for (const bytes of changes) {
      const a = st.doc.authorship(bytes);
      owned ||= a.creates;
      if (!owned) continue;
      const authorBytes = u64(BigInt('0x' + a.author));
      for (const b of a.binds) {
        const message = concat([docBytes, new Uint8Array([0]), authorBytes, b.key]);
        if (!(await verify(b.key, BIND_PURPOSE, message, b.proof))) {
          throw new Error(`author ${a.author}'s binding to a key is not signed by that key`);
        }
      }
      const key = a.key ?? learned.get(a.author);
      if (!key) throw new Error(`author ${a.author} is not bound to a key in this owned document`);
      learned.set(a.author, key);
      const digest = blake2b(concat([docBytes, new Uint8Array([0]), weft.changeUnsigned(bytes)]));
      if (!(await verify(key, CHANGE_PURPOSE, digest, a.signature))) {
        throw new Error(`a change of author ${a.author} is not signed by its key`);
      }
    }
  }

  _onHave(m) {
    const st = this.docs.get(m.doc);
    if (!st) return; // not a document this client opened
    st.stopped = null; // a Have resumes a stopped document
    st.peerHas = m.version;
    // A Have counts as an acknowledgement of what it names.
    st.acked = versionMax(st.acked, m.version);
    // In the same queue as live changes, so that they go out in causal order.
    const session = this.session;
    const missing = st.doc.changesSince(m.version);
    st.writes = st.writes.then(() => this._signOwn(m.doc, st, missing)).then((signed) => {
      if (this.session === session) this._sendBatches(m.doc, signed);
    }).catch((e) => this._emit('error', { code: 'internal', message: String(e), doc: m.doc, fatal: false }));
    if (st.presence) {
      this._send({ presence: { doc: m.doc, node: this.nodeId, payload: st.presence, path: [this.nodeId] } });
    }
    this._emit('ack', { doc: m.doc, version: m.version });
  }

  /**
   * Appends changes to the store's op log; every `snapshotEvery` changes, replaces what the log
   * holds by a snapshot (with history) of the document, when nothing is held for dependencies
   * (a held change is in the log but not yet in the state a snapshot would keep).
   */
  async _append(docId, st, changes) {
    await this.store.appendChanges(docId, changes);
    st.logged += changes.length;
    if (this.store.putSnapshot && st.logged >= this.snapshotEvery && st.doc.pending === 0) {
      const covered = st.logged;
      await this.store.putSnapshot(docId, st.doc.encodeSnapshot({ withHistory: true }), covered);
      st.logged -= covered;
    }
  }

  _sendLive(docId, st, changes) {
    // Before the relay's Have, its reply covers these (changesSince its version).
    if (!this.session?.authenticated || !st.peerHas) return;
    this._sendBatches(docId, changes);
  }

  _sendBatches(docId, changes) {
    if (this.docs.get(docId)?.stopped === this.session) return;
    let batch = [];
    let bytes = 0;
    const flush = (remaining) => {
      if (batch.length) this._send({ changes: { doc: docId, changes: batch, path: [this.nodeId], remaining } });
      batch = [];
      bytes = 0;
    };
    changes.forEach((c, i) => {
      if (batch.length >= BATCH_CHANGES || (batch.length && bytes + c.length > BATCH_BYTES)) {
        flush(changes.length - i);
      }
      batch.push(c);
      bytes += c.length;
    });
    flush(0);
  }

  async _onChanges(session, m) {
    const st = this.docs.get(m.doc);
    // Not subscribed here, or stopped on this connection: dropped, as the native peer does.
    if (!st || !st.peerHas || st.stopped === session) return;
    if (m.changes.length === 0) return;
    try {
      // Validate first: a change that does not decode, or (in an owned document) whose author's
      // binding or signature does not verify, stops the document; nothing of the batch applied.
      const decoded = m.changes.map((c) => weft.decodeChange(c));
      await this._checkAuthorship(m.doc, st, m.changes);
      if (this.session !== session) return;
      st.doc.applyChanges(m.changes);
      // The relay holds what it sent: that counts as acknowledged (for lag and waitForAck).
      st.acked = { ...(st.acked ?? {}) };
      for (const c of decoded) {
        if ((st.acked[c.author] ?? 0) < c.endSeq) st.acked[c.author] = c.endSeq;
      }
    } catch (e) {
      // docs/protocol.md, Errors: the document stops on this connection, both ways, until a Have
      // resumes it (the next anti-entropy tick, or the next connection); the others go on.
      st.stopped = session;
      this._emit('error', { code: 'invalidChange', message: e.message, doc: m.doc, fatal: false });
      this._send({ error: { code: 'invalidChange', message: `a change does not apply here: ${e.message}`,
        doc: m.doc } });
      return;
    }
    // Stored before acknowledged (the store keeps what arrived; duplicates apply as no-ops).
    const stored = st.writes.then(() => this._append(m.doc, st, m.changes));
    st.writes = stored.catch(() => {});
    await stored;
    if (this.session !== session) return;
    this._send({ ack: { doc: m.doc, version: st.doc.version } });
    this._emit('change', { doc: m.doc });
  }

  _onAck(m) {
    const st = this.docs.get(m.doc);
    if (!st) return;
    // Acks and the changes the relay sent arrive in either order: keep the larger knowledge.
    st.acked = versionMax(st.acked, m.version);
    this._emit('ack', { doc: m.doc, version: m.version });
  }

  _onPresence(m) {
    if (!this.docs.has(m.doc) || m.node === this.nodeId) return;
    this._emit('presence', { doc: m.doc, node: m.node, payload: m.payload });
  }

  _onError(session, m) {
    this._emit('error', { code: m.code, message: m.message, doc: m.doc, fatal: m.fatal });
    const st = m.doc ? this.docs.get(m.doc) : null;
    if (!m.fatal && st && m.code !== 'diverged') st.stopped = session;
    if (m.fatal) session.ws.close(1000, 'fatal error from the relay');
  }
}
