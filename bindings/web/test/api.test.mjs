// The JavaScript API over the WebAssembly core: every value kind, transactions, changes between
// replicas, snapshots, the change feed, time travel and errors.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { weft } from './lib.mjs';

const { Document, ROOT, ObjectRef, WeftError, Status } = weft;

function pair() {
  return [new Document({ nodeId: 'a1' }), new Document({ nodeId: 'b2' })];
}

// Sends every change `from` has that `to` lacks.
function sync(from, to) {
  return to.applyChanges(from.changesSince(to.version));
}

test('a document has its node ID, an empty root and an empty version', () => {
  const d = new Document({ nodeId: '00000000000000ab' });
  assert.equal(d.nodeId, '00000000000000ab');
  assert.deepEqual(d.keys(), []);
  assert.deepEqual(d.version, {});
  assert.deepEqual(d.toJSON(), {});
  const r = new Document();
  assert.match(r.nodeId, /^[0-9a-f]{16}$/);
  assert.notEqual(r.nodeId, new Document().nodeId);
  assert.throws(() => new Document({ nodeId: '0' }), WeftError);
  assert.throws(() => new Document({ nodeId: 'xyz' }), WeftError);
  d.free();
  assert.throws(() => d.keys(), /freed/);
});

test('scalars: null, booleans, int64, doubles, strings and bytes round-trip', () => {
  const [a, b] = pair();
  const big = -(2n ** 63n);
  a.transact((t) => {
    t.put(ROOT, 'null', null);
    t.put(ROOT, 'true', true);
    t.put(ROOT, 'int', 42);
    t.put(ROOT, 'neg', -7);
    t.put(ROOT, 'big', big);
    t.put(ROOT, 'max', 2n ** 63n - 1n);
    t.put(ROOT, 'double', 1.5);
    t.put(ROOT, 'whole double', weft.float64(2));
    t.put(ROOT, 'str', 'héllo 😀');
    t.put(ROOT, 'bytes', new Uint8Array([0, 1, 255]));
  });
  sync(a, b);
  for (const d of [a, b]) {
    assert.equal(d.get('null'), null);
    assert.equal(d.get('true'), true);
    assert.equal(d.get('int'), 42);
    assert.equal(d.get('neg'), -7);
    assert.equal(d.get('big'), big);
    assert.equal(d.get('max'), 2n ** 63n - 1n);
    assert.equal(d.get('double'), 1.5);
    assert.equal(d.get('whole double'), 2);
    assert.equal(d.get('str'), 'héllo 😀');
    assert.deepEqual(d.get('bytes'), new Uint8Array([0, 1, 255]));
    assert.equal(d.get('absent'), undefined);
  }
  // An integral double and an int64 are different values: the canonical JSON says which.
  assert.match(a.canonicalJson(), /1\.5/);
  assert.deepEqual(a.canonicalState(), b.canonicalState());
  assert.throws(() => a.transact((t) => t.put(ROOT, 'x', 2n ** 64n)), (e) => e.code === Status.INVALID_ARGUMENT);
  assert.throws(() => a.transact((t) => t.put(ROOT, 'x', {})), (e) => e.code === Status.INVALID_ARGUMENT);
  assert.throws(() => a.transact((t) => t.put(ROOT, 'x', Symbol('s'))), (e) => e.code === Status.INVALID_ARGUMENT);
});

test('maps: put, delete, nested maps and keys; concurrent writes are siblings', () => {
  const [a, b] = pair();
  a.transact((t) => {
    const todo = t.root.map('todo');
    todo.put('title', 'Buy milk').put('done', false);
    todo.map('meta').put('by', 'ann');
  });
  sync(a, b);
  assert.deepEqual(b.toJSON(), { todo: { done: false, meta: { by: 'ann' }, title: 'Buy milk' } });
  const todo = b.lookup('todo');
  assert.ok(todo instanceof ObjectRef);
  assert.equal(todo.kind, 'map');
  assert.equal(b.kindOf(todo), 'map');
  assert.deepEqual(b.keys(todo), ['done', 'meta', 'title']);

  // Concurrent writes of one key: both stay, as siblings, on both replicas.
  a.transact((t) => t.put(todo, 'title', 'Buy oat milk'));
  b.transact((t) => t.put(todo, 'title', 'Buy soy milk'));
  sync(a, b);
  sync(b, a);
  for (const d of [a, b]) {
    const s = d.siblings(todo, 'title');
    assert.deepEqual(s.values.map((e) => e.value).sort(), ['Buy oat milk', 'Buy soy milk']);
    assert.equal(Object.keys(s.context).length, 2);
  }
  assert.deepEqual(a.canonicalState(), b.canonicalState());
  // A write after reading both replaces both; a plain put also replaces what it sees.
  const read = a.siblings(todo, 'title');
  a.transact((t) => t.putAfterRead(todo, 'title', 'Buy milk (any)', read.context));
  sync(a, b);
  assert.deepEqual(b.siblings(todo, 'title').values.map((e) => e.value), ['Buy milk (any)']);

  b.transact((t) => t.delete(todo, 'done'));
  sync(b, a);
  assert.deepEqual(a.keys(todo), ['meta', 'title']);
  // Update wins over a concurrent delete.
  a.transact((t) => t.put(todo, 'title', 'kept'));
  b.transact((t) => t.delete(todo, 'title'));
  sync(a, b);
  sync(b, a);
  assert.equal(a.get(todo, 'title'), 'kept');
  assert.equal(b.get(todo, 'title'), 'kept');
});

test('multi-value registers keep concurrent writes as siblings until resolved', () => {
  const [a, b] = pair();
  a.transact((t) => t.root.register('color').set('red'));
  sync(a, b);
  const reg = a.lookup('color');
  assert.equal(reg.kind, 'register');
  a.transact((t) => t.ref(reg).set('green'));
  b.transact((t) => t.ref(reg).set('blue'));
  sync(a, b);
  sync(b, a);
  const s = b.readRegister(reg);
  assert.deepEqual(s.values.map((e) => e.value).sort(), ['blue', 'green']);
  assert.ok(s.values.every((e) => /^[0-9a-f]{16}:\d+$/.test(e.dot)));
  b.transact((t) => t.ref(reg).resolve('teal'));
  sync(b, a);
  assert.deepEqual(a.readRegister(reg).values.map((e) => e.value), ['teal']);
  assert.deepEqual(a.toJSON(), { color: 'teal' });
});

test('LWW registers: the later write wins and the loser stays inspectable', () => {
  const [a, b] = pair();
  a.transact((t) => t.root.lww('status'), { time: 1000 });
  sync(a, b);
  const reg = a.lookup('status');
  assert.equal(reg.kind, 'lww');
  a.transact((t) => t.setRegister(reg, 'early'), { time: 2000 });
  b.transact((t) => t.setRegister(reg, 'late'), { time: 3000 });
  sync(a, b);
  sync(b, a);
  for (const d of [a, b]) {
    const r = d.readLww(reg);
    assert.equal(r.present, true);
    assert.equal(r.value, 'late');
    assert.ok(r.time.ms >= 3000);
    assert.deepEqual(r.overwritten.map((o) => o.value), ['early']);
  }
});

test('counters add concurrent increments, int64 throughout', () => {
  const [a, b] = pair();
  a.transact((t) => t.root.counter('likes').add(5));
  sync(a, b);
  const c = a.lookup('likes');
  a.transact((t) => t.increment(c, 3));
  b.transact((t) => t.increment(c, -10));
  b.transact((t) => t.increment(c, 2n ** 60n));
  sync(a, b);
  sync(b, a);
  assert.equal(a.readCounter(c), 2n ** 60n - 2n);
  assert.equal(b.readCounter(c), 2n ** 60n - 2n);
  assert.throws(() => a.transact((t) => t.increment(c, 1.5)), (e) => e.code === Status.INVALID_ARGUMENT);
});

test('sets: add wins over a concurrent remove', () => {
  const [a, b] = pair();
  a.transact((t) => t.root.set('tags').add('x').add('y').add(3));
  sync(a, b);
  const s = a.lookup('tags');
  assert.deepEqual(a.readSet(s), [3, 'x', 'y']);
  a.transact((t) => t.setRemove(s, 'x'));
  b.transact((t) => t.setAdd(s, 'x'));
  b.transact((t) => t.setRemove(s, 'y'));
  sync(a, b);
  sync(b, a);
  assert.deepEqual(a.readSet(s), [3, 'x']);
  assert.deepEqual(b.readSet(s), [3, 'x']);
});

test('lists: insert, push, delete, nested objects; concurrent inserts merge', () => {
  const [a, b] = pair();
  a.transact((t) => {
    const l = t.root.list('items');
    l.push(1, 2, 3);
    l.insert(0, 'zero');
    const m = l.insertMap(4);
    m.put('k', 'v');
  });
  sync(a, b);
  const l = b.lookup('items');
  assert.equal(b.size(l), 5);
  const vals = b.readList(l);
  assert.deepEqual(vals.slice(0, 4), ['zero', 1, 2, 3]);
  assert.ok(vals[4] instanceof ObjectRef);
  assert.equal(b.get(vals[4], 'k'), 'v');
  a.transact((t) => t.listInsert(l, 1, ['a']));
  b.transact((t) => t.listInsert(l, 1, ['b']));
  b.transact((t) => t.listDelete(l, 2, 2));
  sync(a, b);
  sync(b, a);
  assert.deepEqual(a.readList(l).slice(0, 4), b.readList(l).slice(0, 4));
  assert.equal(a.size(l), 5);
  assert.deepEqual(a.canonicalState(), b.canonicalState());
  assert.throws(() => a.transact((t) => t.listDelete(l, 4, 9)), (e) => e.code === Status.OUT_OF_RANGE);
  const c = a.transact((t) => t.listInsertObject(l, 0, 'counter'));
  assert.ok(c);
  assert.equal(a.readList(l)[0].kind, 'counter');
});

test('text: code point positions, concurrent edits, anchors', () => {
  const [a, b] = pair();
  a.transact((t) => t.root.text('notes').insert(0, 'héllo wörld'));
  sync(a, b);
  const txt = a.lookup('notes');
  assert.equal(a.readText(txt), 'héllo wörld');
  assert.equal(a.size(txt), 11);
  const anchor = b.anchorAt(txt, 6, 'left');
  a.transact((t) => t.textInsert(txt, 0, '😀 '));
  b.transact((t) => t.textInsert(txt, 11, '!'));
  b.transact((t) => t.textDelete(txt, 0, 1));
  sync(a, b);
  sync(b, a);
  assert.equal(a.readText(txt), '😀 éllo wörld!');
  assert.equal(b.readText(txt), a.readText(txt));
  assert.equal(b.indexOfAnchor(txt, anchor), 7);
  assert.throws(() => a.transact((t) => t.textInsert(txt, 99, 'x')), (e) => e.code === Status.OUT_OF_RANGE);
  assert.throws(() => a.transact((t) => t.textInsert(txt, 0, '')), WeftError);
});

test('kinds: the ref helpers find an existing object and refuse another kind at the key', () => {
  const d = new Document({ nodeId: 'c3' });
  d.transact((t) => t.root.counter('n').add(1));
  d.transact((t) => t.root.counter('n').add(1));
  assert.equal(d.readCounter(d.lookup('n')), 2);
  assert.throws(() => d.readText(d.lookup('n')), (e) => e.code === Status.TYPE_MISMATCH);
  assert.throws(() => d.readText('0000000000000099:5'), (e) => e.code === Status.NOT_FOUND);
  for (const kind of weft.KINDS) {
    d.transact((t) => t.putObject(ROOT, `k-${kind}`, kind));
    assert.equal(d.kindOf(d.lookup(`k-${kind}`)), kind);
  }
  assert.throws(() => d.transact((t) => t.putObject(ROOT, 'x', 'tree')), WeftError);
});

test('transactions: one change each, atomic rollback, reads see own writes', () => {
  const d = new Document({ nodeId: 'd4' });
  const c = d.transact((t) => {
    t.put(ROOT, 'a', 1);
    assert.equal(d.get('a'), 1);
    t.put(ROOT, 'b', 2);
  }, { time: 1_700_000_000_000 });
  assert.equal(c.author, '00000000000000d4');
  assert.equal(c.id, '00000000000000d4:1');
  assert.equal(c.startSeq, 1);
  assert.equal(c.endSeq, 2);
  assert.equal(c.ops, 2);
  assert.equal(c.time.ms, 1_700_000_000_000);
  assert.ok(c.bytes instanceof Uint8Array);
  assert.deepEqual(c.patches.map((p) => [p.type, p.key, p.siblings]), [['mapKey', 'a', 1], ['mapKey', 'b', 1]]);
  assert.deepEqual(weft.decodeChange(c.bytes).id, c.id);

  const before = d.canonicalState();
  assert.throws(() => d.transact((t) => {
    t.put(ROOT, 'c', 3);
    throw new Error('no');
  }), /no/);
  assert.deepEqual(d.canonicalState(), before);
  const t = d.begin();
  t.put(ROOT, 'c', 3);
  assert.throws(() => d.begin(), WeftError);  // one at a time
  t.rollback();
  assert.deepEqual(d.canonicalState(), before);
  assert.throws(() => t.put(ROOT, 'x', 1), /closed/);
  assert.equal(d.transact(() => {}), null);
  // A failed write leaves the transaction usable.
  const c2 = d.transact((tx) => {
    assert.throws(() => tx.increment(ROOT, 1), WeftError);
    tx.put(ROOT, 'c', 3);
  });
  assert.equal(c2.ops, 1);
  assert.deepEqual(d.version, { '00000000000000d4': 3 });
});

test('changes arrive in any order and twice: held until ready, duplicates are no-ops', () => {
  const [a, b] = pair();
  const cs = [];
  for (let i = 0; i < 5; i++) cs.push(a.transact((t) => t.root.counter('n').add(i + 1)).bytes);
  let r = b.applyChanges([cs[4], cs[2]]);
  assert.equal(r.pending, 2);
  assert.deepEqual(b.keys(), []);
  r = b.applyChanges([cs[0], cs[1], cs[0]]);
  assert.equal(r.pending, 1);
  r = b.applyChanges([cs[3], cs[4]]);
  assert.equal(r.pending, 0);
  assert.equal(b.readCounter(b.lookup('n')), 15);
  assert.deepEqual(b.canonicalState(), a.canonicalState());
  // merge() brings one document up to date with another.
  const c = new Document({ nodeId: 'c3' });
  c.merge(a);
  assert.deepEqual(c.canonicalState(), a.canonicalState());
});

test('patches: local commits and applied changes report what changed; subscribe feeds them', () => {
  const [a, b] = pair();
  const events = [];
  const off = b.subscribe((e) => events.push(e));
  a.transact((t) => {
    t.root.set('s').add('x');
    t.root.text('t').insert(0, 'hi');
    t.root.counter('c').add(2);
  });
  const r = sync(a, b);
  const types = r.patches.map((p) => p.type);
  assert.ok(types.includes('setAdd'));
  assert.ok(types.includes('insert'));
  assert.ok(types.includes('counter'));
  assert.equal(r.patches.find((p) => p.type === 'insert').text, 'hi');
  assert.equal(r.patches.find((p) => p.type === 'setAdd').element, 'x');
  assert.equal(events.length, 1);
  assert.equal(events[0].local, false);
  b.transact((t) => t.textDelete(b.lookup('t'), 0, 1));
  assert.equal(events.length, 2);
  assert.equal(events[1].local, true);
  assert.deepEqual(events[1].patches.map((p) => [p.type, p.index, p.length]), [['delete', 0, 1]]);
  off();
  b.transact((t) => t.put(ROOT, 'z', 1));
  assert.equal(events.length, 2);
});

test('snapshots: encode and load, with and without history', () => {
  const [a] = pair();
  a.transact((t) => {
    t.root.text('t').insert(0, 'snapshot');
    t.root.map('m').put('k', 2);
  });
  a.transact((t) => t.root.counter('c').add(7));
  const lean = a.encodeSnapshot();
  const full = a.encodeSnapshot({ withHistory: true });
  const l = Document.load(lean, { nodeId: 'e5' });
  const f = Document.load(full, { nodeId: 'e6' });
  for (const d of [l, f]) {
    assert.deepEqual(d.canonicalState(), a.canonicalState());
    assert.deepEqual(d.version, a.version);
  }
  assert.equal(f.changesSince({}).length, 2);
  assert.throws(() => l.changesSince({}), (e) => e.code === Status.HISTORY_TRUNCATED);
  // The loaded document goes on: its changes reach the original.
  const c = f.transact((t) => t.root.counter('c').add(1));
  a.applyChanges([c.bytes]);
  assert.equal(a.readCounter(a.lookup('c')), 8);
});

test('time travel: history, reading at a version, diff between versions, editing text at one', () => {
  const d = new Document({ nodeId: 'f7' });
  d.transact((t) => t.root.text('t').insert(0, 'one'));
  d.transact((t) => t.root.counter('n').add(1));
  d.transact((t) => t.root.text('t').append(' two'));
  const h = d.history();
  assert.equal(h.length, 3);
  assert.deepEqual(h.map((e) => e.version['00000000000000f7']), [4, 6, 10]);  // putObject takes a seq, each code point one
  const past = d.at(h[0].version);
  assert.deepEqual(past.toJSON(), { t: 'one' });
  assert.throws(() => past.transact((t) => t.put(ROOT, 'x', 1)), WeftError);
  assert.deepEqual(d.at(h[1].version).toJSON(), { n: 1, t: 'one' });
  assert.deepEqual(d.at({}).toJSON(), {});
  const patches = d.diff(h[0].version);
  assert.deepEqual(patches.map((p) => p.type), ['mapKey', 'counter', 'insert']);
  assert.throws(() => d.at({ '00000000000000f7': 99 }), (e) => e.code === Status.NOT_FOUND);
  assert.throws(() => d.at({ '00000000000000f7': 5 }), (e) => e.code === Status.INVALID_ARGUMENT);
  assert.throws(() => d.diff(h[2].version, h[0].version), (e) => e.code === Status.INVALID_ARGUMENT);
  // Another replica's edit made at the first version merges as a concurrent one would (the
  // author's own changes follow one another, so d itself cannot edit before its last change).
  const other = new Document({ nodeId: 'f8' });
  other.merge(d);
  const c = other.transact((t) => t.textInsert(other.lookup('t'), 1, '!'), { at: h[0].version });
  assert.deepEqual(c.deps, h[0].version);
  assert.equal(other.readText(other.lookup('t')), 'o!ne two');
  d.applyChanges([c.bytes]);
  assert.deepEqual(d.canonicalState(), other.canonicalState());
});

test('history segments: a run of changes compacts and decodes to the same changes', () => {
  const d = new Document({ nodeId: 'a9' });
  for (let i = 0; i < 20; i++) d.transact((t) => t.root.text('t').append(String(i % 10)));
  const changes = d.changesSince();
  const seg = weft.encodeSegment(changes);
  assert.ok(seg.length < changes.reduce((n, c) => n + c.length, 0));
  assert.deepEqual(weft.decodeSegment(seg), changes);
});

test('a change\'s bytes and patches are the same read at once, after later commits, or by a listener', () => {
  const edit = (d, i) => d.transact((t) => {
    const text = t.root.text('t');
    if (i % 3 === 2) text.delete(0, 1); else text.insert(i, i % 2 ? 'é𝄞' : 'ab');
    t.root.map('m').put(`k${i}`, i);
    t.root.list('l').push(i);
  }, { time: 1_700_000_000_000 + i });
  const heard = new Document({ nodeId: 'e1' });
  const events = [];
  heard.subscribe((e) => events.push(e.patches));
  const quiet = new Document({ nodeId: 'e1' });
  const late = [];
  const sent = [];
  for (let i = 0; i < 12; i++) {
    sent.push(edit(heard, i).bytes);  // made at once, for the listener
    const c = edit(quiet, i);
    if (i % 4 === 0) {  // read before the next commit
      assert.deepEqual(c.patches, events[i]);
      assert.deepEqual(c.bytes, sent[i]);
    } else if (i % 4 === 1) {
      assert.deepEqual(c.bytes, sent[i]);
      late.push([i, c]);
    } else {
      late.push([i, c]);
    }
  }
  // Read after later commits: taken from the kept history.
  for (const [i, c] of late) {
    assert.deepEqual(c.patches, events[i]);
    assert.deepEqual(c.bytes, sent[i]);
    assert.equal(c.id, `00000000000000e1:${weft.decodeChange(sent[i]).startSeq}`);
  }
  // With a remote change in between: the version before a change is what the document had.
  const other = new Document({ nodeId: 'f2' });
  other.applyChanges(quiet.changesSince({}));
  const mine = quiet.transact((t) => t.root.text('t').insert(0, 'Q'));
  other.transact((t) => t.root.text('t').insert(0, 'R'));
  quiet.applyChanges(other.changesSince(quiet.version));
  quiet.transact((t) => t.root.text('t').insert(0, 'S'));
  assert.deepEqual(mine.patches.map((p) => [p.type, p.index, p.text]), [['insert', 0, 'Q']]);
  assert.deepEqual(weft.decodeChange(mine.bytes).id, mine.id);
  other.free();
  // Text edits through the lean path report bad arguments as the embind path does.
  heard.transact((t) => {
    const id = t.root.text('t').id;
    assert.throws(() => t.textInsert(id, 1e9, 'x'), (e) => e instanceof WeftError);
    assert.throws(() => t.textDelete(id, 0, 1e9), (e) => e instanceof WeftError);
    assert.throws(() => t.textInsert(id, -1, 'x'), (e) => e.code === Status.INVALID_ARGUMENT);
    assert.throws(() => t.textInsert(id, 0, '\ud800'), (e) => e.code === Status.INVALID_ARGUMENT);
    assert.throws(() => t.textInsert('00000000000000e1:99999999999999999999', 0, 'x'), WeftError);
    t.textInsert(id, 0, 'ok');
  });
  assert.equal(heard.readText(heard.lookup('t')).slice(0, 2), 'ok');
  heard.free();
  quiet.free();
});

test('applyChanges {atomic}: a change the access list refuses stops the batch with nothing of it applied', () => {
  // The core checks roles, not signatures (the sync client verifies those): keys and proofs
  // here are any 32 and 64 bytes.
  const ownerKey = new Uint8Array(32).fill(1);
  const granteeKey = new Uint8Array(32).fill(2);
  const proof = new Uint8Array(64).fill(9);
  const owner = new Document({ nodeId: 'a1' });
  const o1 = owner.transact((t) => { t.createAccess(ownerKey); t.bindAuthor(ownerKey, proof); t.root.put('title', 'owned'); });
  const o2 = owner.transact((t) => t.grant(granteeKey, 'writer'));
  const grantee = new Document({ nodeId: 'b2' });
  grantee.applyChanges([o1.bytes, o2.bytes]);
  // Written while a writer; the owner, not having it, then makes the key a reader.
  const g1 = grantee.transact((t) => { t.bindAuthor(granteeKey, proof); t.root.put('g', 1); });
  const o3 = owner.transact((t) => t.grant(granteeKey, 'reader'));
  const batch = [o1.bytes, o2.bytes, o3.bytes, g1.bytes];

  const atomic = new Document({ nodeId: 'c3' });
  assert.throws(() => atomic.applyChanges(batch, { atomic: true }),
    (e) => e instanceof WeftError && e.code === Status.PERMISSION_DENIED && /is a reader/.test(e.message));
  assert.deepEqual(atomic.version, {});
  assert.deepEqual(atomic.toJSON(), {});
  assert.equal(atomic.access.owned, false);
  // The same batch without the refused change applies.
  atomic.applyChanges(batch.slice(0, 3), { atomic: true });
  assert.deepEqual(atomic.toJSON(), { title: 'owned' });

  // Without atomic, the changes before the refused one stay applied.
  const partial = new Document({ nodeId: 'd4' });
  assert.throws(() => partial.applyChanges(batch), (e) => e.code === Status.PERMISSION_DENIED);
  assert.deepEqual(partial.toJSON(), { title: 'owned' });
  // In a list where the key is still a writer, the change is taken.
  const allowed = new Document({ nodeId: 'e5' });
  allowed.applyChanges([o1.bytes, o2.bytes, g1.bytes], { atomic: true });
  assert.deepEqual(allowed.toJSON(), { title: 'owned', g: 1 });
});
