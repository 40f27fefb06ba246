// The WebAssembly core and the SDK: a replica on SQLite (the Python package over libweft.so, the C
// API: test/native/sdk_peer.py) and a document in WebAssembly exchange raw changes, the bytes the
// sync protocol carries, in both directions, concurrent edits included, and reach the same
// document. Public documents only: the web side does not sign changes yet.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { hex, unhex, weft } from './lib.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const python = process.env.WEFT_PYTHON ?? '/usr/bin/python3';
const library = process.env.WEFT_LIBRARY ?? path.join(here, '../../../build/bindings/c/libweft.so');

function sdkPeer(db, doc, lines) {
  const out = execFileSync(python, [path.join(here, 'native/sdk_peer.py'), db, doc], {
    input: lines.join('\n') + '\n',
    encoding: 'utf8',
    maxBuffer: 1 << 26,
    env: { ...process.env, WEFT_LIBRARY: library, PYTHONPATH: path.join(here, '../../python'),
           PYTHONDONTWRITEBYTECODE: '1' },
  });
  const r = { json: null, changes: [] };
  for (const line of out.split('\n')) {
    if (line.startsWith('json ')) r.json = JSON.parse(line.slice(5));
    else if (line.startsWith('change ')) r.changes.push(unhex(line.slice(7)));
  }
  assert.ok(out.trimEnd().endsWith('end'), out);
  return r;
}

test('a WebAssembly document and an SDK replica exchange changes both ways and converge', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'weft-web-sdk-'));
  try {
    const db = path.join(dir, 'sdk.db');
    // The SDK replica edits first, on its own.
    const first = sdkPeer(db, 'notes', []);
    assert.equal(first.json.from, 'python');
    assert.ok(first.changes.length >= 1);
    for (const c of first.changes) assert.equal(weft.decodeChange(c).signed, false);

    // Meanwhile the web document edits every kind, some of the same keys concurrently.
    const web = new weft.Document({ nodeId: '00000000c0ffee01' });
    const mine = [];
    mine.push(web.transact((t) => {
      t.root.put('title', 'from the web');
      t.root.counter('likes').add(1);
      t.root.text('notes').insert(0, 'web');
      t.root.list('items').push('wasm', 1.5);
      t.root.set('tags').add('web');
      t.root.register('color').set('red');
      t.root.lww('status').set('open');
      t.root.map('meta').put('browser', true);
    }).bytes);
    mine.push(web.transact((t) => t.root.text('notes').append('!')).bytes);

    // Each takes the other's changes.
    const sdk = sdkPeer(db, 'notes', [...mine.map((c) => `change ${hex(c)}`), 'readonly']);
    const r = web.applyChanges(first.changes);
    assert.equal(r.pending, 0);
    assert.deepEqual(web.toJSON(), sdk.json);
    assert.deepEqual(web.siblings('title').values.map((e) => e.value).sort(),
                     ['from python', 'from the web']);
    // Concurrent writes merged the same way on both sides.
    assert.equal(web.readCounter(web.lookup('likes')), 11);
    assert.deepEqual(web.readSet(web.lookup('tags')), ['sdk', 'web']);
    assert.equal(web.readText(web.lookup('notes')).length, 'sdk: '.length + 'web!'.length);
    assert.deepEqual(web.keys(web.lookup('meta')), ['browser', 'device']);

    // The replica's log, read into a fresh WebAssembly document, is the same document again.
    const fresh = new weft.Document({ nodeId: '00000000c0ffee02' });
    fresh.applyChanges(sdk.changes);
    assert.equal(fresh.pending, 0);
    assert.deepEqual(fresh.canonicalState(), web.canonicalState());
    // The replica kept the web's changes byte for byte.
    const kept = new Set(sdk.changes.map(hex));
    for (const c of mine) assert.ok(kept.has(hex(c)));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
