// Weft in JavaScript: documents of the crdt/ core (compiled to WebAssembly) behind a small API.
//
//   import * as weft from '@weft/web';
//   await weft.init();
//   const doc = new weft.Document();
//   const change = doc.transact((t) => {
//     const todo = t.root.map('todo');
//     todo.put('title', 'Buy milk');
//     todo.counter('likes').add(1);
//     todo.text('notes').insert(0, 'oat');
//   });
//   other.applyChanges([change.bytes]);     // the same bytes the native core reads and writes
//
// Values: null, booleans, Numbers (an integer Number within 2^53 is stored as an int64, any other
// Number as a double; weft.float64(x) forces a double), BigInt (int64), strings and Uint8Array
// (bytes). Reads return int64 as a Number when it fits in 2^53, else a BigInt. Nested objects are
// ObjectRef {kind, id}; object IDs are "<node hex>:<seq>" strings, the root map is ROOT.
// Errors: every failure throws a WeftError whose `code` is the Weft status code (the numbers of
// weft.h: 2 invalid argument, 3 corruption, ...). Bytes from elsewhere are validated by the core
// before anything is applied: corrupt input throws, it never breaks the module.
//
// Ownership: a Document holds memory inside the WebAssembly module. free() releases it at once; a
// Document that is dropped without free() is released when it is garbage-collected.
// Thread safety: a Document belongs to one thread (one worker); nothing here is shared.

import createWeftCore from './weft-core.js';

// Web Crypto: a global in browsers and in Node.js 19 and later; Node.js 18 (Debian 12's) has it
// only in its crypto module.
const webCrypto = globalThis.crypto ?? (await import('node:crypto')).webcrypto;

let core = null;
let loading = null;

/**
 * Loads the WebAssembly module. Call (and await) it once before anything else; later calls
 * return the same promise.
 * @param {object} [options] passed to the emscripten module: e.g. `wasmBinary` (the bytes of
 *   weft-core.wasm, when the page fetches it itself) or `locateFile(name)`.
 * @returns {Promise<void>}
 */
export function init(options = {}) {
  if (!loading) {
    loading = (async () => {
      const opts = { ...options };
      // The module is built for browsers and workers; under Node.js (tests, tools) the .wasm
      // beside this file is read from disk instead of fetched.
      if (!opts.wasmBinary && !opts.locateFile && !opts.instantiateWasm &&
          typeof process === 'object' && process.versions && process.versions.node) {
        const { readFile } = await import('node:fs/promises');
        opts.wasmBinary = await readFile(new URL('./weft-core.wasm', import.meta.url));
      }
      core = await createWeftCore(opts);
    })();
  }
  return loading;
}

function need() {
  if (!core) throw new Error('weft: call (and await) init() first');
  return core;
}

/** The failure of a Weft call: `code` is the Weft status code, `codeName` its name. */
export class WeftError extends Error {
  constructor(code, codeName, message) {
    super(message);
    this.name = 'WeftError';
    /** @type {number} */
    this.code = code;
    /** @type {string} */
    this.codeName = codeName;
  }
}

/** Status codes (weft.h, weft::StatusCode). */
export const Status = Object.freeze({
  NOT_FOUND: 1,
  INVALID_ARGUMENT: 2,
  CORRUPTION: 3,
  MISSING_DEPENDENCY: 7,
  OUT_OF_RANGE: 8,
  TYPE_MISMATCH: 9,
  UNSUPPORTED_VERSION: 10,
  CLOCK_DRIFT: 11,
  HISTORY_TRUNCATED: 12,
});

function check(r) {
  if (r instanceof Error) throw new WeftError(r.code, r.codeName, r.message);
  return r;
}

/** The root map's object ID. */
export const ROOT = '0000000000000000:0';

/** Object kinds. */
export const KINDS = Object.freeze(['map', 'register', 'lww', 'counter', 'set', 'list', 'text']);

/** A nested object: its kind and ID. */
export class ObjectRef {
  /** @param {string} kind @param {string} id */
  constructor(kind, id) {
    this.kind = kind;
    this.id = id;
    Object.freeze(this);
  }
}

/**
 * A double, even when it is integral (a plain integral Number is stored as an int64).
 * @param {number} x
 */
export function float64(x) {
  return Object.freeze({ float64: Number(x) });
}

// A string with a lone UTF-16 surrogate has no UTF-8 form: refuse it rather than store a
// replacement.
const LONE_SURROGATE = /\p{Surrogate}/u;
function wellFormed(s, what) {
  if (typeof s === 'string' && LONE_SURROGATE.test(s)) {
    throw new WeftError(Status.INVALID_ARGUMENT, 'InvalidArgument',
                        `${what} holds a lone UTF-16 surrogate (not valid Unicode)`);
  }
  return s;
}
function scalar(v) {
  if (Array.isArray(v)) return v.map((x) => wellFormed(x, 'a value'));
  return wellFormed(v, 'a value');
}

function idOf(obj) {
  if (obj instanceof ObjectRef) return obj.id;
  if (obj && typeof obj === 'object' && typeof obj.id === 'string') return obj.id;
  return obj;
}

function value(v) {
  if (v !== null && typeof v === 'object' && typeof v.kind === 'string' && !(v instanceof Uint8Array)) {
    return new ObjectRef(v.kind, v.id);
  }
  return v;
}

function tagged(v) {
  if (v !== null && typeof v === 'object') {
    if ('$int' in v) return BigInt(v.$int);
    if ('$float' in v) return Number(v.$float);
    if ('$bytes' in v) return new Uint8Array((v.$bytes.match(/../g) ?? []).map((h) => parseInt(h, 16)));
  }
  return v;
}

// Patches come from the core as JSON text; parsed when first read.
function parsePatches(json) {
  const patches = JSON.parse(json);
  for (const p of patches) {
    if ('element' in p) p.element = tagged(p.element);
    if ('delta' in p) p.delta = tagged(p.delta);
  }
  return patches;
}

/**
 * One committed transaction: `bytes` to send to other replicas, the `patches` it made, and what
 * the change holds (decoded from the bytes when first read).
 */
export class Change {
  constructor(bytes, patchesJson) {
    /** @type {Uint8Array} */
    this.bytes = bytes;
    this._patchesJson = patchesJson;
    this._patches = null;
    this._info = null;
  }
  /** @returns {Patch[]} */
  get patches() { return (this._patches ??= parsePatches(this._patchesJson)); }
  _decoded() { return (this._info ??= decodeChange(this.bytes)); }
  /** "<author>:<startSeq>" */
  get id() { return this._decoded().id; }
  get author() { return this._decoded().author; }
  get startSeq() { return this._decoded().startSeq; }
  get endSeq() { return this._decoded().endSeq; }
  /** The version it depends on (the author's causal frontier). */
  get deps() { return this._decoded().deps; }
  get lamport() { return this._decoded().lamport; }
  /** Its hybrid logical time: {ms, logical}. */
  get time() { return this._decoded().time; }
  /** The number of ops. */
  get ops() { return this._decoded().ops; }
}

function values(read) {
  for (const e of read.values) e.value = value(e.value);
  return read;
}

function randomNodeId() {
  const b = new Uint8Array(8);
  do webCrypto.getRandomValues(b); while (b.every((x) => x === 0));
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

function asBytes(b, what) {
  if (b instanceof Uint8Array) return b;
  if (b instanceof ArrayBuffer) return new Uint8Array(b);
  throw new WeftError(Status.INVALID_ARGUMENT, 'InvalidArgument', `${what} must be a Uint8Array`);
}

const registry = new FinalizationRegistry((raw) => raw.delete());

function newRaw(nodeId) {
  const raw = new (need().Doc)(nodeId);
  if (!raw.valid()) {
    raw.delete();
    throw new WeftError(Status.INVALID_ARGUMENT, 'InvalidArgument',
                        `node ID "${nodeId}" must be 1 to 16 lowercase hex digits, not zero`);
  }
  return raw;
}

/**
 * One replica's copy of a document: a root map of values and nested CRDT objects, changed in
 * transactions that each become one change (bytes to send to other replicas).
 */
export class Document {
  /**
   * @param {{nodeId?: string}} [options] this replica's node ID (16 hex digits; random when
   *   absent). Two replicas must never share one.
   */
  constructor({ nodeId } = {}) {
    this._raw = newRaw(nodeId ?? randomNodeId());
    this._token = {};
    registry.register(this, this._raw, this._token);
    this._listeners = new Set();
    this._readOnly = false;
  }

  /**
   * A document from a snapshot (encodeSnapshot), owned by replica `nodeId` (random when absent).
   * Throws a WeftError (CORRUPTION, UNSUPPORTED_VERSION) for bytes that do not decode.
   * @param {Uint8Array} snapshot
   * @param {{nodeId?: string}} [options]
   */
  static load(snapshot, options = {}) {
    const doc = new Document(options);
    try {
      check(doc._raw.loadSnapshot(asBytes(snapshot, 'a snapshot')));
    } catch (e) {
      doc.free();
      throw e;
    }
    return doc;
  }

  /** Releases the document's memory now; the document cannot be used afterwards. */
  free() {
    if (!this._raw) return;
    registry.unregister(this._token);
    this._raw.delete();
    this._raw = null;
  }

  get _r() {
    if (!this._raw) throw new Error('weft: this Document was freed');
    return this._raw;
  }

  /** This replica's node ID (16 hex digits). */
  get nodeId() { return this._r.nodeId(); }
  /** The changes held, as {node ID: last seq}. */
  get version() { return this._r.version(); }
  /** The causal frontier of the version (what the next local change depends on). */
  get heads() { return this._r.heads(); }
  /**
   * The access list as far as syncing needs it: {owned, owner, bound} (owner: the owner's key,
   * bound: the key this document's author is bound to; Uint8Arrays or null).
   */
  get access() { return this._r.accessInfo(); }
  /**
   * What checking a change's authorship against this document needs: {author, creates, key,
   * binds: [{key, proof}], signature} (see sync.js, which verifies the signatures).
   */
  authorship(change) { return check(this._r.authorship(asBytes(change, 'a change'))); }
  /** Changes received before their dependencies, held until they arrive. */
  get pending() { return this._r.pending(); }

  // --- Transactions ---------------------------------------------------------------------------

  /**
   * Starts a transaction; commit() or rollback() it. One at a time per document.
   * @param {{time?: number, at?: object}} [options] `time`: physical time in ms (default
   *   Date.now()); `at`: a version to edit the document as it was then (text edits only; the
   *   change merges as a concurrent one would).
   * @returns {Transaction}
   */
  begin({ time, at } = {}) {
    if (this._readOnly) {
      throw new WeftError(Status.INVALID_ARGUMENT, 'InvalidArgument',
                          'a document read at an earlier version cannot be changed');
    }
    const now = time ?? Date.now();
    check(at ? this._r.beginAt(at, now) : this._r.begin(now));
    return new Transaction(this);
  }

  /**
   * Runs fn(txn) in one transaction and commits it; when fn throws, rolls back and rethrows.
   * @param {(t: Transaction) => void} fn synchronous
   * @param {{time?: number, at?: object}} [options] as for begin()
   * @returns {Change|null} the change (null when fn changed nothing)
   */
  transact(fn, options) {
    const t = this.begin(options);
    try {
      const r = fn(t);
      if (r && typeof r.then === 'function') {
        throw new WeftError(Status.INVALID_ARGUMENT, 'InvalidArgument',
                            'a transaction body must be synchronous');
      }
    } catch (e) {
      if (t.open) t.rollback();
      throw e;
    }
    return t.open ? t.commit() : null;
  }

  // --- Changes --------------------------------------------------------------------------------

  /**
   * Applies changes from other replicas (in any order: one that arrives before its dependencies
   * is held until they do; a duplicate is a no-op). Every change is decoded first: when one does
   * not decode, none is applied (WeftError CORRUPTION). A change that decodes but is invalid here
   * stops the batch with its error; those before it stay applied.
   * @param {Uint8Array[]} changes
   * @returns {{patches: Patch[], pending: number}}
   */
  applyChanges(changes) {
    if (!Array.isArray(changes)) changes = [changes];
    const [json, pending] = check(this._r.applyChanges(changes.map((c) => asBytes(c, 'a change'))));
    let patches = null;
    const r = { pending, get patches() { return (patches ??= parsePatches(json)); } };
    if (this._listeners.size) this._emit({ local: false, change: null, patches: r.patches });
    return r;
  }

  /** @param {Uint8Array} change @returns {{patches: Patch[], pending: number}} */
  applyChange(change) { return this.applyChanges([change]); }

  /**
   * The changes a replica at `version` lacks, in causal order (all changes for {}).
   * @param {object} [version]
   * @returns {Uint8Array[]}
   */
  changesSince(version = {}) { return check(this._r.changesSince(version)); }

  /**
   * Brings this document up to date with `other` (another Document in this thread).
   * @param {Document} other
   */
  merge(other) { return this.applyChanges(other.changesSince(this.version)); }

  /**
   * A compact snapshot of the document (Document.load reads it).
   * @param {{withHistory?: boolean}} [options] keep every change (needed to answer changesSince
   *   and to read at an earlier version after loading)
   * @returns {Uint8Array}
   */
  encodeSnapshot({ withHistory = false } = {}) { return this._r.encodeSnapshot(withHistory); }

  /**
   * Calls fn({local, change, patches}) after each local commit and each applyChanges.
   * @returns {() => void} unsubscribes
   */
  subscribe(fn) {
    this._listeners.add(fn);
    return () => this._listeners.delete(fn);
  }

  _emit(event) {
    // A local commit is reported even without patches (a change of access ops only).
    if (event.patches.length === 0 && !event.local) return;
    for (const fn of [...this._listeners]) fn(event);
  }

  // --- Time travel ----------------------------------------------------------------------------

  /**
   * The changes kept, in the order applied, each with the version it led to.
   * @returns {ChangeInfo[]}
   */
  history() { return check(this._r.history()); }

  /**
   * The document as it was at `version` (a version it was at: e.g. a history() entry's), as a
   * new read-only Document rebuilt from the history kept. Throws NOT_FOUND when this document
   * does not hold `version`, INVALID_ARGUMENT when it is not a version the document was at,
   * HISTORY_TRUNCATED when the history it needs was not kept.
   * @param {object} version
   * @returns {Document}
   */
  at(version) {
    const doc = new Document({ nodeId: this.nodeId });
    try {
      check(doc._raw.rebuildFrom(this._r, version, null));
    } catch (e) {
      doc.free();
      throw e;
    }
    doc._readOnly = true;
    return doc;
  }

  /**
   * What changed from version `from` to version `to` (default: now), as the patches applying
   * the changes in between reports.
   * @returns {Patch[]}
   */
  diff(from, to = this.version) {
    const doc = new Document({ nodeId: this.nodeId });
    try {
      return parsePatches(check(doc._raw.rebuildFrom(this._r, to, from)));
    } finally {
      doc.free();
    }
  }

  // --- Reads (they see an open transaction's writes) ------------------------------------------

  /** The kind of an object ('map', 'register', 'lww', 'counter', 'set', 'list', 'text'). */
  kindOf(obj) { return check(this._r.kindOf(idOf(obj))); }
  /** The keys of a map, sorted. */
  keys(obj = ROOT) { return check(this._r.keys(idOf(obj))); }
  /**
   * One value of a map key (the write with the greatest dot when there are siblings), or
   * undefined when the key is absent.
   */
  get(obj, key) {
    if (key === undefined) [obj, key] = [ROOT, obj];
    const r = check(this._r.get(idOf(obj), key));
    return r.values.length ? value(r.values[r.values.length - 1].value) : undefined;
  }
  /**
   * Every value of a map key (concurrent writes are siblings), sorted by dot, and the read's
   * context (to replace exactly these with Transaction.putAfterRead).
   * @returns {{values: {value: any, dot: string}[], context: object}}
   */
  siblings(obj, key) {
    if (key === undefined) [obj, key] = [ROOT, obj];
    return values(check(this._r.get(idOf(obj), key)));
  }
  /**
   * The nested object at a path of map keys from the root (e.g. lookup('todo', 'tags')), or
   * undefined when a key is absent or holds a scalar.
   * @returns {ObjectRef|undefined}
   */
  lookup(...path) {
    let at = new ObjectRef('map', ROOT);
    for (const key of path) {
      if (at.kind !== 'map') return undefined;
      const v = this.get(at, key);
      if (!(v instanceof ObjectRef)) return undefined;
      at = v;
    }
    return at;
  }
  /** A multi-value register's siblings and the read's context. */
  readRegister(obj) { return values(check(this._r.readRegister(idOf(obj)))); }
  /** An LWW register: {present, value, time, overwritten: [{value, time}]}. */
  readLww(obj) { return check(this._r.readLww(idOf(obj))); }
  /** A counter's value (a Number, or a BigInt beyond 2^53). */
  readCounter(obj) { return check(this._r.readCounter(idOf(obj))); }
  /** A set's elements, in a fixed order (the same on every replica). */
  readSet(obj) { return check(this._r.readSet(idOf(obj))); }
  /** A text as a string. */
  readText(obj) { return check(this._r.readText(idOf(obj))); }
  /** A list's values (scalars and ObjectRefs). */
  readList(obj) { return check(this._r.readList(idOf(obj))).map(value); }
  /** The length of a text (code points) or a list. */
  size(obj) { return check(this._r.sequenceSize(idOf(obj))); }
  /**
   * A stable position in a text or list (a cursor), tied to an element.
   * @param {'left'|'right'} [bias] which neighbour the anchor sticks to
   * @returns {{item: string, bias: string}}
   */
  anchorAt(obj, index, bias = 'left') {
    return check(this._r.anchorAt(idOf(obj), index, bias === 'right'));
  }
  /** The current index of an anchor. */
  indexOfAnchor(obj, anchor) {
    return check(this._r.indexOfAnchor(idOf(obj), anchor.item, anchor.bias === 'right'));
  }
  /** The whole document as a JS value (conflicts as {conflict: [...]}). */
  toJSON() { return JSON.parse(this._r.toJson()); }
  /** The whole document as human-readable JSON text. */
  toJsonString() { return this._r.toJson(); }
  /** The canonical state: equal bytes on two replicas exactly when their states are equal. */
  canonicalState() { return this._r.canonicalState(); }
  /** The canonical state as JSON, with every object, sibling, dot and context. */
  canonicalJson() { return this._r.canonicalJson(); }
}

/**
 * An open transaction (Document.begin, Document.transact). Writes apply at once (the document's
 * reads see them); commit() makes them one change, rollback() undoes them. A failed write
 * throws and changes nothing; the transaction stays usable.
 */
export class Transaction {
  constructor(doc) {
    this.doc = doc;
    this.open = true;
  }

  _raw() {
    if (!this.open) throw new Error('weft: this transaction is closed');
    return this.doc._r;
  }

  /** The root map, for the ref helpers (t.root.map('todo').put(...)). */
  get root() { return new MapRef(this, ROOT); }
  /** A ref for a nested object read from the document. */
  ref(obj) {
    const kind = obj instanceof ObjectRef ? obj.kind : this.doc.kindOf(obj);
    return makeRef(this, kind, idOf(obj));
  }

  /** key := value, replacing every value the key shows now. */
  put(obj, key, v) { check(this._raw().put(idOf(obj), wellFormed(key, 'a key'), scalar(v))); }
  /** key := value, replacing only the values a read returned (its `context`). */
  putAfterRead(obj, key, v, context) {
    check(this._raw().putAfterRead(idOf(obj), wellFormed(key, 'a key'), scalar(v), context));
  }
  /**
   * A new nested object of `kind` at `key`, replacing the key's values. Counters, sets, maps,
   * lists and texts are named by where they are made, so replicas that create one at the same
   * key concurrently get one object. @returns {ObjectRef}
   */
  putObject(obj, key, kind) {
    return new ObjectRef(kind, check(this._raw().putObject(idOf(obj), wellFormed(key, 'a key'), kind)));
  }
  /**
   * Access ops (owned documents; the sync client adds them, see sync.js): the owner's create,
   * and the bind of this document's author to a device key (32 bytes) with its signed proof.
   */
  createAccess(key) { check(this._raw().createAccess(asBytes(key, 'a key'))); }
  bindAuthor(key, proof) {
    check(this._raw().bindAuthor(asBytes(key, 'a key'), asBytes(proof, 'a proof')));
  }
  /** Removes the key's values. */
  delete(obj, key) { check(this._raw().del(idOf(obj), wellFormed(key, 'a key'))); }
  /** Register or LWW register := value. */
  setRegister(obj, v) { check(this._raw().setRegister(idOf(obj), scalar(v))); }
  /** Multi-value register := value, replacing exactly the siblings a read returned. */
  setRegisterAfterRead(obj, v, context) {
    check(this._raw().setRegisterAfterRead(idOf(obj), scalar(v), context));
  }
  /** Adds `delta` (a Number or BigInt, may be negative) to a counter. */
  increment(obj, delta = 1) { check(this._raw().increment(idOf(obj), delta)); }
  setAdd(obj, element) { check(this._raw().setAdd(idOf(obj), scalar(element))); }
  setRemove(obj, element) { check(this._raw().setRemove(idOf(obj), scalar(element))); }
  /** Inserts non-empty text at code point `pos`. */
  textInsert(obj, pos, text) {
    const id = idOf(obj);
    if (typeof id === 'string' && typeof pos === 'number' && typeof text === 'string') {
      check(this._raw().textInsertFast(id, pos, wellFormed(text, 'text')));
    } else {
      check(this._raw().textInsert(id, pos, text));  // reports what is wrong
    }
  }
  /** Deletes `count` code points at `pos`. */
  textDelete(obj, pos, count) {
    const id = idOf(obj);
    if (typeof id === 'string' && typeof pos === 'number' && typeof count === 'number') {
      check(this._raw().seqDeleteFast(id, pos, count));
    } else {
      check(this._raw().seqDelete(id, pos, count));
    }
  }
  /** Inserts scalars at `pos` of a list. */
  listInsert(obj, pos, vals) { check(this._raw().listInsert(idOf(obj), pos, scalar(vals))); }
  /** Inserts a new nested object of `kind` at `pos` of a list. @returns {ObjectRef} */
  listInsertObject(obj, pos, kind) {
    return new ObjectRef(kind, check(this._raw().listInsertObject(idOf(obj), pos, kind)));
  }
  /** Deletes `count` elements at `pos` of a list. */
  listDelete(obj, pos, count) { this.textDelete(obj, pos, count); }

  /** Ends the transaction: its writes become one change. @returns {Change|null} */
  commit() {
    // A hook of the sync client: access ops its document needs in every change (a bind).
    if (this.doc.beforeCommit) this.doc.beforeCommit(this);
    const r = check(this._raw().commit());
    this.open = false;
    if (!r) return null;
    const c = new Change(r[0], r[1]);
    if (this.doc._listeners.size) this.doc._emit({ local: true, change: c, patches: c.patches });
    return c;
  }
  /** Ends the transaction, undoing its writes. */
  rollback() {
    check(this._raw().rollback());
    this.open = false;
  }
}

class Ref {
  constructor(txn, id) {
    this.txn = txn;
    this.id = id;
  }
}

/** A map in a transaction. Nested helpers return the object at a key, creating it if absent. */
export class MapRef extends Ref {
  put(key, v) { this.txn.put(this.id, key, v); return this; }
  delete(key) { this.txn.delete(this.id, key); return this; }
  get(key) { return this.txn.doc.get(this.id, key); }
  _nested(key, kind) {
    const r = this.txn.doc.siblings(this.id, key);
    const mine = r.values.filter((e) => e.value instanceof ObjectRef && e.value.kind === kind);
    if (mine.length) return makeRef(this.txn, kind, mine[mine.length - 1].value.id);
    return makeRef(this.txn, kind, this.txn.putObject(this.id, key, kind).id);
  }
  map(key) { return this._nested(key, 'map'); }
  register(key) { return this._nested(key, 'register'); }
  lww(key) { return this._nested(key, 'lww'); }
  counter(key) { return this._nested(key, 'counter'); }
  set(key) { return this._nested(key, 'set'); }
  list(key) { return this._nested(key, 'list'); }
  text(key) { return this._nested(key, 'text'); }
}

/** A multi-value register in a transaction. */
export class RegisterRef extends Ref {
  set(v) { this.txn.setRegister(this.id, v); return this; }
  siblings() { return this.txn.doc.readRegister(this.id); }
  /** Replaces every sibling now visible with one value. */
  resolve(v) { this.txn.setRegisterAfterRead(this.id, v, this.siblings().context); return this; }
}

/** A last-writer-wins register in a transaction. */
export class LwwRef extends Ref {
  set(v) { this.txn.setRegister(this.id, v); return this; }
  get() { return this.txn.doc.readLww(this.id).value; }
}

export class CounterRef extends Ref {
  add(delta = 1) { this.txn.increment(this.id, delta); return this; }
  get value() { return this.txn.doc.readCounter(this.id); }
}

export class SetRef extends Ref {
  add(element) { this.txn.setAdd(this.id, element); return this; }
  remove(element) { this.txn.setRemove(this.id, element); return this; }
  get elements() { return this.txn.doc.readSet(this.id); }
}

export class ListRef extends Ref {
  insert(index, ...vals) { this.txn.listInsert(this.id, index, vals); return this; }
  push(...vals) { return this.insert(this.txn.doc.size(this.id), ...vals); }
  delete(index, count = 1) { this.txn.listDelete(this.id, index, count); return this; }
  /** A new nested object at `index`; returns its ref. */
  insertObject(index, kind) {
    return makeRef(this.txn, kind, this.txn.listInsertObject(this.id, index, kind).id);
  }
  insertMap(index) { return this.insertObject(index, 'map'); }
  get length() { return this.txn.doc.size(this.id); }
  get values() { return this.txn.doc.readList(this.id); }
}

export class TextRef extends Ref {
  insert(index, text) { this.txn.textInsert(this.id, index, text); return this; }
  append(text) { return this.insert(this.txn.doc.size(this.id), text); }
  delete(index, count = 1) { this.txn.textDelete(this.id, index, count); return this; }
  get length() { return this.txn.doc.size(this.id); }
  toString() { return this.txn.doc.readText(this.id); }
}

function makeRef(txn, kind, id) {
  switch (kind) {
    case 'map': return new MapRef(txn, id);
    case 'register': return new RegisterRef(txn, id);
    case 'lww': return new LwwRef(txn, id);
    case 'counter': return new CounterRef(txn, id);
    case 'set': return new SetRef(txn, id);
    case 'list': return new ListRef(txn, id);
    case 'text': return new TextRef(txn, id);
    default: throw new WeftError(Status.INVALID_ARGUMENT, 'InvalidArgument', `unknown kind ${kind}`);
  }
}

/**
 * What an encoded change holds (validated as the core validates it): id, author, startSeq,
 * endSeq, deps, lamport, time, ops (a count). Throws CORRUPTION for bytes that do not decode.
 * @param {Uint8Array} bytes
 */
/** The bytes a change's signature covers (its encoding without the signature). */
export function changeUnsigned(bytes) { return check(need().changeUnsigned(asBytes(bytes, 'a change'))); }
/** The change with `signature` (64 bytes) set. */
export function changeWithSignature(bytes, signature) {
  return check(need().changeWithSignature(asBytes(bytes, 'a change'), asBytes(signature, 'a signature')));
}
export function decodeChange(bytes) { return check(need().decodeChange(asBytes(bytes, 'a change'))); }

/**
 * Compacts a run of changes into a history segment (the column encoding of docs/storage.md).
 * @param {Uint8Array[]} changes @returns {Uint8Array}
 */
export function encodeSegment(changes) {
  return check(need().encodeSegment(changes.map((c) => asBytes(c, 'a change'))));
}
/** The changes of a segment (checksum and every field checked). @returns {Uint8Array[]} */
export function decodeSegment(bytes) {
  return check(need().decodeSegment(asBytes(bytes, 'a segment')));
}

/**
 * @typedef {object} Patch
 * @property {'mapKey'|'register'|'counter'|'setAdd'|'setRemove'|'insert'|'delete'} type
 * @property {string} object the object's ID
 * @property {string} [key] mapKey: the key, whose values now number `siblings` (0: gone)
 * @property {number} [siblings]
 * @property {number|bigint} [delta] counter
 * @property {*} [element] setAdd, setRemove
 * @property {number} [index] insert, delete
 * @property {number} [length] insert, delete
 * @property {string} [text] insert into a text
 */
/**
 * @typedef {object} ChangeInfo
 * @property {string} id "<author>:<startSeq>"
 * @property {string} author
 * @property {number} startSeq
 * @property {number} endSeq
 * @property {object} deps
 * @property {number} lamport
 * @property {{ms: number, logical: number}} time
 * @property {number} ops
 * @property {object} [version] history(): the version the change led to
 */
