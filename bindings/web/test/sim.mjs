// Seeded random edits through the JS API, for the convergence and interop tests: ports of
// tests/support/random.h (splitmix64: the same sequence as the native Rng) and of
// tests/support/doc_sim.cpp (CollectObjects, RandomScalar, RandomEdit).
import { weft } from './lib.mjs';

const { ROOT, ObjectRef } = weft;

const MASK = (1n << 64n) - 1n;

// random.h's Rng: the same sequence as the native harness's.
export class Rng {
  constructor(seed) { this.state = BigInt(seed) & MASK; }
  next() {
    let z = this.state = (this.state + 0x9e3779b97f4a7c15n) & MASK;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK;
    return z ^ (z >> 31n);
  }
  below(n) { return Number(this.next() % BigInt(n)); }
  range(lo, hi) { return lo + this.below(hi - lo + 1); }
  chance(percent) { return this.below(100) < percent; }
}

// Every object reachable from the root, in a deterministic order (doc_sim's CollectObjects).
export function collectObjects(doc) {
  const out = [{ id: ROOT, kind: 'map', depth: 0 }];
  for (let i = 0; i < out.length; i++) {
    const o = out[i];
    if (o.kind === 'list') {
      for (const v of doc.readList(o.id)) {
        if (v instanceof ObjectRef) out.push({ id: v.id, kind: v.kind, depth: o.depth + 1 });
      }
      continue;
    }
    if (o.kind !== 'map') continue;
    for (const k of doc.keys(o.id)) {
      for (const e of doc.siblings(o.id, k).values) {
        if (e.value instanceof ObjectRef) {
          out.push({ id: e.value.id, kind: e.value.kind, depth: o.depth + 1 });
        }
      }
    }
  }
  return out;
}

export function randomScalar(rng) {
  switch (rng.below(7)) {
    case 0: return null;
    case 1: return rng.chance(50);
    case 2: return rng.range(-1000, 1000);
    case 3: return weft.float64(rng.range(-50, 50) / 4);
    case 4: return String.fromCharCode(97 + rng.below(5));
    case 5: return new Uint8Array(1 + rng.below(3)).fill(1);
    default: return `héllo ${rng.below(4)}`;
  }
}

const KEYS = ['a', 'b', 'c', 'title', 'items'];
const RUNS = ['a', 'hello', 'été', '😀!', 'xyz '];

// doc_sim's RandomEdit: one random edit on a random object.
export function randomEdit(doc, t, rng) {
  const objects = collectObjects(doc);
  const o = objects[rng.below(objects.length)];
  switch (o.kind) {
    case 'map': {
      const key = KEYS[rng.below(5)];
      const what = rng.below(10);
      if (what < 4) return t.put(o.id, key, randomScalar(rng));
      if (what < 7 && o.depth < 3) return t.putObject(o.id, key, weft.KINDS[rng.below(7)]);
      if (what < 8) {
        const read = doc.siblings(o.id, key);
        return t.putAfterRead(o.id, key, randomScalar(rng), read.context);
      }
      return t.delete(o.id, key);
    }
    case 'register':
    case 'lww': return t.setRegister(o.id, randomScalar(rng));
    case 'counter': return t.increment(o.id, rng.range(-10, 10));
    case 'set': {
      const e = rng.below(4);
      return rng.chance(60) ? t.setAdd(o.id, e) : t.setRemove(o.id, e);
    }
    case 'text': {
      const size = doc.size(o.id);
      if (size > 0 && rng.chance(35)) {
        const pos = rng.below(size);
        return t.textDelete(o.id, pos, 1 + rng.below(Math.min(size - pos, 6)));
      }
      const pos = rng.below(size + 1);
      return t.textInsert(o.id, pos, RUNS[rng.below(5)]);
    }
    case 'list': {
      const size = doc.size(o.id);
      if (size > 0 && rng.chance(30)) {
        const pos = rng.below(size);
        return t.listDelete(o.id, pos, 1 + rng.below(Math.min(size - pos, 3)));
      }
      if (o.depth < 3 && rng.chance(25)) {
        const pos = rng.below(size + 1);
        return t.listInsertObject(o.id, pos, rng.chance(50) ? 'map' : 'counter');
      }
      const values = [];
      for (let k = 0, n = 1 + rng.below(3); k < n; k++) values.push(randomScalar(rng));
      return t.listInsert(o.id, rng.below(size + 1), values);
    }
    default: throw new Error(`unknown kind ${o.kind}`);
  }
}
