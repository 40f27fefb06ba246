// Interop between the WebAssembly core and the native one (the helper weft-web-native, built from
// the same crdt/ sources by the native compiler): changes and snapshots made by either are read
// by the other, byte for byte, and both reach the same canonical state.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { hex, runNative, unhex, weft } from './lib.mjs';
import { randomEdit, Rng } from './sim.mjs';

const { Document } = weft;

const SEEDS = process.env.WEFT_SEED ? [Number(process.env.WEFT_SEED)] : [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];

test('native histories (every value kind, 3 authors) apply in WebAssembly to the same state', () => {
  for (const seed of SEEDS) {
    const native = runNative(['history', String(seed), '3', '60']);
    assert.equal(native.error, undefined, native.error);
    const changes = native.change.map(unhex);
    assert.ok(changes.length >= 30, `seed ${seed}: ${changes.length} changes`);

    // In causal order, as the native document applied them: the very same bytes come out of
    // every encoder (changes, canonical state, snapshot with history).
    const doc = new Document({ nodeId: '0000000000000099' });
    doc.applyChanges(changes);
    assert.equal(doc.pending, 0);
    assert.equal(hex(doc.canonicalState()), native.state, `seed ${seed}: canonical state`);
    assert.deepEqual(doc.toJSON(), JSON.parse(native.json), `seed ${seed}: JSON`);
    assert.deepEqual(doc.changesSince({}).map(hex), native.change, `seed ${seed}: changes`);
    assert.equal(hex(doc.encodeSnapshot({ withHistory: true })), native.snapshot,
                 `seed ${seed}: snapshot`);

    // In reverse order (each held until its dependencies arrive), and from the native snapshot.
    const reversed = new Document({ nodeId: '00000000000000aa' });
    reversed.applyChanges([...changes].reverse());
    assert.equal(reversed.pending, 0);
    assert.equal(hex(reversed.canonicalState()), native.state, `seed ${seed}: reversed`);
    const loaded = Document.load(unhex(native.snapshot), { nodeId: '00000000000000ab' });
    assert.equal(hex(loaded.canonicalState()), native.state, `seed ${seed}: native snapshot`);
    assert.deepEqual(loaded.changesSince({}).map(hex), native.change);
    for (const d of [doc, reversed, loaded]) d.free();
  }
});

test('changes and snapshots made in WebAssembly apply natively to the same state', () => {
  for (const seed of SEEDS) {
    // Three WebAssembly replicas edit at random (every value kind), each catching up on a random
    // part of what the others did first, so changes are concurrent and depend on several authors.
    const rng = new Rng(seed);
    const authors = [1, 2, 3].map((i) => new Document({ nodeId: (seed * 16 + i).toString(16) }));
    const log = [];
    const seen = authors.map(() => 0);
    for (let step = 0; step < 60; step++) {
      const a = rng.below(authors.length);
      const upto = seen[a] + rng.below(log.length - seen[a] + 1);
      authors[a].applyChanges(log.slice(seen[a], upto));
      seen[a] = upto;
      const t = authors[a].begin({ time: 1_700_000_000_000 + step });
      for (let e = 0, n = rng.range(1, 3); e < n; e++) randomEdit(authors[a], t, rng);
      const c = t.commit();
      if (c) log.push(c.bytes);
    }
    const reader = new Document({ nodeId: '0000000000000077' });
    reader.applyChanges(log);
    assert.equal(reader.pending, 0);
    const snapshot = reader.encodeSnapshot({ withHistory: true });
    const input = [...log.map((c) => `change ${hex(c)}`), `snapshot ${hex(snapshot)}`].join('\n');
    const native = runNative(['apply', '0000000000000077'], input + '\n');
    assert.equal(native.error, undefined, native.error);
    assert.equal(native.reencoded, `0 of ${log.length} differ`, `seed ${seed}: re-encoding`);
    assert.equal(native.pending, '0');
    assert.equal(native.state, hex(reader.canonicalState()), `seed ${seed}: canonical state`);
    assert.deepEqual(JSON.parse(native.json), reader.toJSON(), `seed ${seed}: JSON`);
    assert.deepEqual(native['snapshot-state'], [hex(reader.canonicalState())]);
    for (const d of [...authors, reader]) d.free();
  }
});

test('a WebAssembly replica and a native one edit concurrently and converge', () => {
  // The native side's changes come from its random history; the WebAssembly side adds its own
  // edits on top of part of it; each then takes the other's changes.
  const native = runNative(['history', '42', '2', '40']);
  const nativeChanges = native.change.map(unhex);
  const web = new Document({ nodeId: '00000000000000ee' });
  web.applyChanges(nativeChanges.slice(0, 10));
  const rng = new Rng(42);
  const mine = [];
  for (let i = 0; i < 20; i++) {
    const t = web.begin({ time: 1_700_000_000_000 + i });
    randomEdit(web, t, rng);
    const c = t.commit();
    if (c) mine.push(c.bytes);
  }
  web.applyChanges(nativeChanges.slice(10));
  const input = [...nativeChanges, ...mine].map((c) => `change ${hex(c)}`).join('\n');
  const merged = runNative(['apply', '0000000000000055'], input + '\n');
  assert.equal(merged.error, undefined, merged.error);
  assert.equal(merged.pending, '0');
  assert.equal(merged.state, hex(web.canonicalState()));
});
