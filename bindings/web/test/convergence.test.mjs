// Convergence of the WebAssembly core, through the JS API: a port of the native seeded harness
// (tests/crdt/convergence_test.cpp with tests/support/doc_sim.cpp's RandomEdit and random.h's
// splitmix64). Seeded runs of 3 to 5 replicas make random edits to nested maps, registers, LWW
// registers, counters, sets, lists and texts, and exchange the encoded changes with random delay,
// duplication and reordering; at the end every replica's canonical state is byte-identical, and a
// snapshot of it loads to the same state. A failing run names its seed; WEFT_SEED=N replays it.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { weft } from './lib.mjs';
import { collectObjects, randomEdit, Rng } from './sim.mjs';

const { Document, ROOT, ObjectRef } = weft;

// Half the edits create containers at shared keys, so replicas often create one concurrently.
function sharedContainerEdit(doc, t, rng) {
  if (rng.chance(50)) return randomEdit(doc, t, rng);
  const kinds = [['counter', 'text'], ['map', 'list'], ['set', 'counter']];
  let map = ROOT;
  for (const o of collectObjects(doc)) {
    if (o.kind === 'map' && o.depth < 2 && rng.chance(30)) map = o.id;
  }
  const k = rng.below(3);
  return t.putObject(map, ['a', 'b', 'c'][k], kinds[k][rng.below(100) < 85 ? 0 : 1]);
}

const MERGEABLE = new Set(['counter', 'set', 'map', 'list', 'text']);

// Keys holding several writes of one container; throws when a key holds two of one kind.
function countMerged(doc) {
  let merged = 0;
  for (const o of collectObjects(doc)) {
    if (o.kind !== 'map') continue;
    for (const key of doc.keys(o.id)) {
      const read = doc.siblings(o.id, key);
      const kinds = new Set();
      for (const e of read.values) {
        if (!(e.value instanceof ObjectRef) || !MERGEABLE.has(e.value.kind)) continue;
        assert.ok(!kinds.has(e.value.kind), `key ${key} holds two ${e.value.kind} containers`);
        kinds.add(e.value.kind);
      }
      if (Object.keys(read.context).length > read.values.length) merged++;
    }
  }
  return merged;
}

function runOnce(seed, edit) {
  const rng = new Rng(seed);
  const n = rng.range(3, 5);
  const replicas = [];
  const skew = [];
  for (let i = 0; i < n; i++) {
    const node = (BigInt(seed) * 8n + BigInt(i) + 1n).toString(16).padStart(16, '0');
    replicas.push(new Document({ nodeId: node }));
    skew.push(rng.range(-86_400_000, 86_400_000));  // clocks skewed by up to a day
  }
  const inbox = replicas.map(() => []);
  const deliver = (r, now) => {
    const due = inbox[r].filter((m) => m.at <= now);
    inbox[r] = inbox[r].filter((m) => m.at > now);
    for (let i = due.length; i > 1; --i) {
      const j = rng.below(i);
      [due[i - 1], due[j]] = [due[j], due[i - 1]];
    }
    for (const m of due) replicas[r].applyChanges([m.bytes]);
  };
  const steps = rng.range(20, 60);
  for (let step = 0; step < steps; step++) {
    const r = rng.below(n);
    const t = replicas[r].begin({ time: 1_700_000_000_000 + step * 10 + skew[r] });
    const edits = rng.range(1, 3);
    for (let e = 0; e < edits; e++) edit(replicas[r], t, rng);
    const change = t.commit();
    if (change) {
      for (let o = 0; o < n; o++) {
        if (o === r) continue;
        const at = step + rng.below(12);
        inbox[o].push({ at, bytes: change.bytes });
        if (rng.chance(15)) inbox[o].push({ at: at + rng.below(5), bytes: change.bytes });
      }
    }
    for (let o = 0; o < n; o++) deliver(o, step);
  }
  for (let o = 0; o < n; o++) deliver(o, Infinity);

  const reference = replicas[0].canonicalState();
  const json = replicas[0].canonicalJson();
  for (let o = 0; o < n; o++) {
    assert.equal(replicas[o].pending, 0, `replica ${o} holds changes`);
    assert.deepEqual(replicas[o].version, replicas[0].version, 'version vectors differ');
    assert.equal(replicas[o].canonicalJson(), json, 'canonical JSON differs');
    assert.deepEqual(replicas[o].canonicalState(), reference, 'state differs');
  }
  const copy = Document.load(replicas[0].encodeSnapshot({ withHistory: true }), { nodeId: '3e7' });
  assert.deepEqual(copy.canonicalState(), reference, 'snapshot state differs');
  const ops = Object.values(replicas[0].version).reduce((a, b) => a + b, 0);
  const merged = edit === sharedContainerEdit ? countMerged(replicas[0]) : 0;
  copy.free();
  for (const d of replicas) d.free();
  return { ops, merged };
}

function seeds(count) {
  const only = process.env.WEFT_SEED ? Number(process.env.WEFT_SEED) : 0;
  if (only) return [only];
  return Array.from({ length: count }, (_, i) => i + 1);
}

function runAll(count, edit) {
  let ops = 0;
  let merged = 0;
  for (const seed of seeds(count)) {
    try {
      const r = runOnce(seed, edit);
      ops += r.ops;
      merged += r.merged;
    } catch (e) {
      e.message = `seed ${seed} (replay: WEFT_SEED=${seed}): ${e.message}`;
      throw e;
    }
  }
  return { ops, merged, runs: seeds(count).length };
}

test('1,000 seeded runs of 3 to 5 replicas converge byte for byte', () => {
  const { ops, runs } = runAll(1000, randomEdit);
  assert.ok(ops >= 20 * runs, `every run made edits (${ops} ops)`);
});

test('300 seeded runs creating the same containers concurrently converge into one each', () => {
  const { merged, runs } = runAll(300, sharedContainerEdit);
  if (runs > 1) assert.ok(merged >= 10, `concurrent creations merged (${merged})`);
});
