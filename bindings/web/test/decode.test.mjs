// Bad input through the JS API: corrupt, truncated and random bytes given as changes, snapshots
// and segments, and malformed arguments, each give a WeftError (never another exception, never an
// abort of the WebAssembly module), change nothing, and leave the module working.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { weft } from './lib.mjs';
import { randomEdit, Rng } from './sim.mjs';

const { Document, ROOT, WeftError, Status } = weft;

// Runs fn; it must return normally or throw a WeftError.
function weftErrorOrOk(fn, what) {
  try {
    fn();
    return 'ok';
  } catch (e) {
    assert.ok(e instanceof WeftError, `${what}: ${e && e.name}: ${e && e.message}`);
    assert.ok(Number.isInteger(e.code) && e.code > 0, what);
    return e.codeName;
  }
}

function sample() {
  const d = new Document({ nodeId: '5a' });
  const rng = new Rng(7);
  const changes = [];
  for (let i = 0; i < 40; i++) {
    const t = d.begin({ time: 1_700_000_000_000 + i });
    randomEdit(d, t, rng);
    const c = t.commit();
    if (c) changes.push(c.bytes);
  }
  return { d, changes };
}

function stillWorks() {
  const a = new Document({ nodeId: '61' });
  const c = a.transact((t) => t.root.text('t').insert(0, 'still here'));
  const b = new Document({ nodeId: '62' });
  b.applyChanges([c.bytes]);
  assert.equal(b.readText(b.lookup('t')), 'still here');
  a.free();
  b.free();
}

test('every truncation and every byte flip of changes gives a WeftError or a valid change', () => {
  const { d, changes } = sample();
  const codes = new Map();
  const count = (c) => codes.set(c, (codes.get(c) ?? 0) + 1);
  for (const bytes of changes.slice(0, 12)) {
    for (let n = 0; n < bytes.length; n++) {
      const cut = bytes.slice(0, n);
      count(weftErrorOrOk(() => weft.decodeChange(cut), `truncated to ${n}`));
      const fresh = new Document({ nodeId: '77' });
      const before = fresh.canonicalState();
      const r = weftErrorOrOk(() => fresh.applyChanges([cut]), `apply truncated to ${n}`);
      if (r !== 'ok') assert.deepEqual(fresh.canonicalState(), before);
      fresh.free();
    }
    for (let i = 0; i < bytes.length; i++) {
      for (const mask of [0x01, 0x80, 0xff]) {
        const bad = bytes.slice();
        bad[i] ^= mask;
        count(weftErrorOrOk(() => weft.decodeChange(bad), `flip ${mask} at ${i}`));
        const copy = new Document({ nodeId: '78' });
        copy.applyChanges(changes.slice(0, changes.indexOf(bytes)));
        weftErrorOrOk(() => copy.applyChanges([bad]), `apply flip ${mask} at ${i}`);
        copy.free();
      }
    }
  }
  assert.ok(codes.get('Corruption') > 100, JSON.stringify([...codes]));
  d.free();
  stillWorks();
});

test('corrupt snapshots and segments give a WeftError; random bytes too', () => {
  const { d, changes } = sample();
  for (const withHistory of [false, true]) {
    const snap = d.encodeSnapshot({ withHistory });
    for (let n = 0; n < snap.length; n += 3) {
      weftErrorOrOk(() => Document.load(snap.slice(0, n)).free(), `snapshot cut at ${n}`);
    }
    for (let i = 0; i < snap.length; i++) {
      const bad = snap.slice();
      bad[i] ^= 0x5a;
      weftErrorOrOk(() => Document.load(bad).free(), `snapshot flip at ${i}`);
    }
  }
  const seg = weft.encodeSegment(changes);
  for (let i = 0; i < seg.length; i++) {
    const bad = seg.slice();
    bad[i] ^= 0x10;
    // The segment's checksum catches every single-byte change.
    assert.throws(() => weft.decodeSegment(bad), (e) => e instanceof WeftError);
  }
  const rng = new Rng(99);
  for (let k = 0; k < 3000; k++) {
    const bytes = new Uint8Array(rng.below(64));
    for (let i = 0; i < bytes.length; i++) bytes[i] = rng.below(256);
    if (k % 2 && bytes.length > 4) bytes.set([0x57, 0x45, 0x46, 0x54], 0);  // "WEFT"
    weftErrorOrOk(() => weft.decodeChange(bytes), 'random change');
    weftErrorOrOk(() => Document.load(bytes).free(), 'random snapshot');
    weftErrorOrOk(() => weft.decodeSegment(bytes), 'random segment');
  }
  assert.throws(() => Document.load(new Uint8Array()), (e) => e.code === Status.CORRUPTION);
  d.free();
  stillWorks();
});

test('malformed arguments give a WeftError and change nothing', () => {
  const d = new Document({ nodeId: '63' });
  d.transact((t) => {
    t.root.text('t').insert(0, 'abc');
    t.root.list('l').push(1);
  });
  const text = d.lookup('t');
  const before = d.canonicalState();
  const bad = [
    (t) => t.put('nonsense', 'k', 1),
    (t) => t.put('1:2:3', 'k', 1),
    (t) => t.put('zz:1', 'k', 1),
    (t) => t.put('00000000000000001:1', 'k', 1),
    (t) => t.put('1:99999999999999999999999', 'k', 1),
    (t) => t.put(ROOT, 7, 1),
    (t) => t.put(ROOT, 'k', () => 1),
    (t) => t.putObject(ROOT, 'k', 'tree'),
    (t) => t.textInsert(text, -1, 'x'),
    (t) => t.textInsert(text, 1.5, 'x'),
    (t) => t.textInsert(text, NaN, 'x'),
    (t) => t.textInsert(text, 0, 42),
    (t) => t.textInsert(text, 0, 'bad \ud800 surrogate'),
    (t) => t.textDelete(text, 2, 5),
    (t) => t.listInsert(d.lookup('l'), 0, 'not an array'),
    (t) => t.listInsert(d.lookup('l'), 0, [{}]),
    (t) => t.increment(text, 1),
    (t) => t.putAfterRead(ROOT, 'k', 1, { zz: 1 }),
    (t) => t.putAfterRead(ROOT, 'k', 1, { '01': -1 }),
    (t) => t.putAfterRead(ROOT, 'k', 1, null),
    (t) => t.setRegister(ROOT, 1),
  ];
  for (const [i, f] of bad.entries()) {
    assert.throws(() => d.transact(f), (e) => e instanceof WeftError, `case ${i}`);
    assert.deepEqual(d.canonicalState(), before, `case ${i}`);
  }
  assert.throws(() => d.changesSince({ x: 1 }), WeftError);
  assert.throws(() => d.changesSince({ '01': 'a' }), WeftError);
  assert.throws(() => d.at('01'), WeftError);
  assert.throws(() => d.applyChanges(['not bytes']), WeftError);
  assert.throws(() => d.applyChanges([new Uint8Array(4), 'x']), WeftError);
  assert.throws(() => weft.decodeChange('string'), WeftError);
  assert.throws(() => Document.load(null), WeftError);
  assert.throws(() => d.anchorAt(text, 99), (e) => e.code === Status.OUT_OF_RANGE);
  assert.throws(() => d.indexOfAnchor(text, { item: 'x', bias: 'left' }), WeftError);
  assert.deepEqual(d.canonicalState(), before);
  stillWorks();
});
