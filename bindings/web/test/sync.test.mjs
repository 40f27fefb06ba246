// The sync client (js/sync.js, js/wire.js) under Node.js against a real weft-relay that the test
// starts on a free loopback port (secure mode: authenticated sessions) and stops by its PID, with
// the native `weft` tool as another device.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import WebSocket, { WebSocketServer } from 'ws';
import { weft } from './lib.mjs';
import { startRelay, weftCli, tempDir, removeDir, until } from './relay.mjs';

const pkg = process.env.WEFT_WEB_PKG ?? path.join(path.dirname(new URL(import.meta.url).pathname),
  '../../../build/bindings/web/pkg');
const sync = await import(pathToFileURL(path.join(pkg, 'sync.js')).href);
const wire = await import(pathToFileURL(path.join(pkg, 'wire.js')).href);

let dir;
let relay;
const clients = [];

before(() => { dir = tempDir(); });

// The relay starts with the first test that needs it (the wire tests need none).
async function needRelay() {
  relay ??= await startRelay(path.join(dir, 'relay'));
  return relay;
}

after(async () => {
  for (const c of clients) c.close();
  await relay?.stop();
  removeDir(dir);
});

async function client(opts = {}) {
  await needRelay();
  const c = new sync.SyncClient({ url: relay.url, identity: await sync.Identity.generate(),
    WebSocket, backoffMs: 20, maxBackoffMs: 200, ...opts });
  clients.push(c);
  return c;
}

const text = (doc, key) => {
  const ref = doc.lookup(key);
  return ref ? doc.readText(ref.id) : null;
};

test('wire: every message kind survives encode and decode', () => {
  const a = '00000000000000a1';
  const cases = [
    { hello: { nodeId: a, agent: 'x', publicKey: new Uint8Array(32).fill(7), nonce: new Uint8Array(32).fill(9),
      audience: 'ws://h/', expires: 5n, credentials: new Uint8Array([1, 2]) } },
    { auth: { proof: new Uint8Array(64).fill(3), expires: 77n } },
    { have: { doc: 'd', version: { [a]: 3, '00000000000000b2': 9 } } },
    { changes: { doc: 'd', changes: [new Uint8Array([1, 2, 3]), new Uint8Array(0), new Uint8Array(1000).fill(5)],
      path: [a], remaining: 4 } },
    { ack: { doc: 'd', version: { [a]: 1 } } },
    { presence: { doc: 'd', node: a, payload: new Uint8Array([9]), path: [a] } },
    { error: { code: 'invalidChange', message: 'no', doc: 'd', fatal: false } },
  ];
  const h = wire.decode(wire.encode(cases[0]));
  assert.equal(h.kind, 'hello');
  assert.equal(h.protocolVersion, 4);
  assert.equal(h.nodeId, a);
  assert.deepEqual([...h.credentials], [1, 2]);
  assert.equal(h.audience, 'ws://h/');
  assert.equal(h.expires, 5n);
  assert.equal(wire.decode(wire.encode(cases[1])).expires, 77n);
  assert.deepEqual(wire.decode(wire.encode(cases[2])).version, cases[2].have.version);
  const c = wire.decode(wire.encode(cases[3]));
  assert.deepEqual(c.changes.map((x) => [...x]), cases[3].changes.changes.map((x) => [...x]));
  assert.deepEqual(c.path, [a]);
  assert.equal(c.remaining, 4);
  assert.deepEqual(wire.decode(wire.encode(cases[4])).version, { [a]: 1 });
  assert.deepEqual([...wire.decode(wire.encode(cases[5])).payload], [9]);
  const e = wire.decode(wire.encode(cases[6]));
  assert.equal(e.code, 'invalidChange');
  assert.equal(e.fatal, false);
});

test('wire: hostile frames give a WireError, never anything else', () => {
  const good = wire.encode({ changes: { doc: 'd', changes: [new Uint8Array(40).fill(1)], path: ['00000000000000a1'] } });
  let seed = 42;
  const rand = () => (seed = (seed * 1103515245 + 12345) >>> 0);
  const tryDecode = (bytes) => {
    try { wire.decode(bytes); } catch (e) { assert.ok(e instanceof wire.WireError, `${e}`); }
  };
  for (let n = 0; n < good.length; ++n) tryDecode(good.slice(0, n));
  for (let i = 0; i < good.length; ++i) {
    for (const bit of [1, 0x80, 0xff]) {
      const b = good.slice();
      b[i] ^= bit;
      tryDecode(b);
    }
  }
  for (let k = 0; k < 500; ++k) {
    const b = new Uint8Array(8 * (1 + (rand() % 16)));
    for (let i = 0; i < b.length; ++i) b[i] = rand() & 0xff;
    tryDecode(b);
  }
  assert.throws(() => wire.decode(new Uint8Array(3)), wire.WireError);
  assert.throws(() => wire.decode(wire.encode({ have: { doc: 'x'.repeat(1025), version: {} } })),
    /document ID of 1025 bytes/);
});

test('two clients converge through the relay, with presence and lag', async () => {
  const a = await client();
  const b = await client();
  const da = await a.open('notes');
  const db = await b.open('notes');
  da.transact((t) => t.root.text('body').append('hello'));
  await until(() => text(db, 'body') === 'hello', 'b to get a\'s text');
  db.transact((t) => t.root.put('title', 'from b'));
  da.transact((t) => t.root.counter('n').add(2));
  db.transact((t) => t.root.counter('n').add(3));
  await until(() => da.canonicalJson() === db.canonicalJson() && da.toJSON().n === 5, 'convergence');
  assert.equal(da.toJSON().title, 'from b');
  await a.waitForAck('notes');
  assert.equal(a.lag('notes'), 0);

  const seen = [];
  b.on('presence', (p) => seen.push(p));
  a.setPresence('notes', new TextEncoder().encode('cursor 3'));
  await until(() => seen.length > 0, 'presence to reach b');
  assert.equal(seen[0].node, a.nodeId);
  assert.equal(new TextDecoder().decode(seen[0].payload), 'cursor 3');
});

test('edits made offline are stored, survive a restart of the client and sync later', async () => {
  const store = new sync.MemoryStore();
  const identity = await sync.Identity.generate();
  const a = await client({ store, identity });
  const peer = await client();
  const da = await a.open('offline');
  const dp = await peer.open('offline');
  da.transact((t) => t.root.list('items').push('one'));
  await until(() => JSON.stringify(dp.toJSON().items) === '["one"]', 'the first item');
  a.goOffline();
  await until(() => a.state === 'closed', 'a to go offline');
  da.transact((t) => t.root.list('items').push('two (offline)'));
  dp.transact((t) => t.root.list('items').push('three (online)'));
  assert.ok(a.lag('offline') > 0);
  // "Reload": a new client over the same store; the old one is gone.
  a.close();
  const a2 = await client({ store, identity });
  const da2 = await a2.open('offline');
  assert.ok(JSON.stringify(da2.toJSON().items).includes('two (offline)'));
  await until(() => da2.canonicalJson() === dp.canonicalJson() && dp.toJSON().items.length === 3,
    'both to converge after reconnecting');
  assert.deepEqual([...dp.toJSON().items].sort(), ['one', 'three (online)', 'two (offline)']);
});

test('the op log is compacted into snapshots; a client restarted from one syncs on', async () => {
  const store = new sync.MemoryStore();
  const identity = await sync.Identity.generate();
  const a = await client({ store, identity, snapshotEvery: 4 });
  const peer = await client();
  const da = await a.open('compacted');
  const dp = await peer.open('compacted');
  for (let i = 0; i < 10; ++i) da.transact((t) => t.root.list('n').push(i));
  dp.transact((t) => t.root.put('peer', true));
  await until(() => da.toJSON().peer === true && dp.toJSON().n?.length === 10, 'both ways');
  await a.docs.get('compacted').writes;
  assert.ok(await store.loadSnapshot('compacted'), 'a snapshot was kept');
  assert.ok((await store.loadChanges('compacted')).length < 4, 'the log was cut');
  a.close();
  const a2 = await client({ store, identity, snapshotEvery: 4 });
  const da2 = await a2.open('compacted');
  assert.equal(da2.canonicalJson(), da.canonicalJson());
  // The snapshot keeps the history: the restarted client can still serve every change.
  assert.equal(da2.changesSince({}).length, da.changesSince({}).length);
  da2.transact((t) => t.root.list('n').push(10));
  // Its new change reaches a new peer through the relay.
  const fresh = await client();
  const df = await fresh.open('compacted');
  await until(() => df.toJSON().n?.length === 11 && df.toJSON().peer === true, 'a new peer to catch up');
});

test('a change made in JS reaches the weft tool, and the tool\'s change comes back', async () => {
  const c = await client();
  const d = await c.open('shared');
  d.transact((t) => { t.root.put('from_js', 'hello native'); t.root.text('t').append('abc'); });
  await c.waitForAck('shared');
  const db = path.join(dir, 'cli.db');
  const s1 = await weftCli(db, 'sync', relay.url, '--doc', 'shared', '--timeout', '30');
  assert.equal(s1.code, 0, s1.stderr);
  const got = await weftCli(db, 'get', 'shared');
  assert.equal(got.code, 0, got.stderr);
  const state = JSON.parse(got.stdout);
  assert.equal(state.from_js, 'hello native');
  assert.equal(state.t, 'abc');
  const set = await weftCli(db, 'set', 'shared', 'from_cli', '42');
  assert.equal(set.code, 0, set.stderr);
  const s2 = await weftCli(db, 'sync', relay.url, '--doc', 'shared', '--timeout', '30');
  assert.equal(s2.code, 0, s2.stderr);
  await until(() => d.toJSON().from_cli === 42, 'the tool\'s change to reach JS');
  const dump = JSON.parse((await weftCli(db, 'get', 'shared')).stdout);
  assert.deepEqual(dump, JSON.parse(JSON.stringify(d.toJSON())));
});

test('a relay that answers with garbage or a forged proof is refused with a clear error', async () => {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((r) => server.on('listening', r));
  const port = server.address().port;
  let mode = 'garbage';
  server.on('connection', (ws) => {
    ws.on('message', () => {
      if (mode === 'garbage') ws.send(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]));
      else if (mode === 'text') ws.send('hello');
      else {
        ws.send(wire.encode({ hello: { nodeId: '00000000000000f0', publicKey: new Uint8Array(32).fill(1),
          nonce: new Uint8Array(32).fill(2), proof: new Uint8Array(64).fill(3),
          expires: BigInt(Math.floor(Date.now() / 1000) + 60) } }));
      }
    });
  });
  try {
    for (const [m, code] of [['garbage', 'malformed'], ['text', 'malformed'], ['forged', 'unauthenticated']]) {
      mode = m;
      const c = new sync.SyncClient({ url: `ws://127.0.0.1:${port}/`, identity: await sync.Identity.generate(),
        WebSocket, backoffMs: 10000 });
      const errors = [];
      c.on('error', (e) => errors.push(e));
      await c.open('d');
      await until(() => errors.length > 0, `an error for ${m}`);
      c.close();
      assert.equal(errors[0].code, code, JSON.stringify(errors[0]));
      assert.equal(errors[0].fatal, true);
    }
  } finally {
    for (const ws of server.clients) ws.terminate();
    await new Promise((r) => server.close(r));
  }
  // The module still works after all that.
  const d = new weft.Document();
  d.transact((t) => t.root.put('ok', true));
  assert.equal(d.toJSON().ok, true);
});

test('a relay that sends a change that does not decode stops only that document, with a clear error', async () => {
  // A fake relay that completes the handshake properly (its own key, a valid proof), then
  // answers the Have of 'bad' with a damaged change and that of 'good' with a valid one.
  const relayId = await sync.Identity.generate();
  const good = new weft.Document();
  const goodChange = good.transact((t) => t.root.put('ok', 1)).bytes;
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((r) => server.on('listening', r));
  const url = `ws://127.0.0.1:${server.address().port}/`;
  const fromClient = [];
  server.on('connection', (ws) => {
    ws.on('message', async (data) => {
      const m = wire.decode(new Uint8Array(data));
      fromClient.push(m);
      if (m.kind === 'hello') {
        const expires = BigInt(Math.floor(Date.now() / 1000) + 60);
        const proof = await relayId.sign(sync.SESSION_PURPOSE, sync.sessionTranscript(true,
          relayId.publicBytes, m.publicKey, m.nonce, m.audience, expires));
        ws.send(wire.encode({ hello: { nodeId: '00000000000000f1', role: 'relay',
          publicKey: relayId.publicBytes, nonce: sync.randomBytes(32), proof, expires } }));
      } else if (m.kind === 'have') {
        ws.send(wire.encode({ have: { doc: m.doc, version: {} } }));
        const bytes = m.doc === 'bad' ? goodChange.slice(0, goodChange.length - 3) : goodChange;
        ws.send(wire.encode({ changes: { doc: m.doc, changes: [bytes], path: ['00000000000000f1'] } }));
      }
    });
  });
  const c = new sync.SyncClient({ url, identity: await sync.Identity.generate(), WebSocket, relayKey: relayId.hex });
  const errors = [];
  c.on('error', (e) => errors.push(e));
  try {
    const bad = await c.open('bad');
    const ok = await c.open('good');
    await until(() => ok.toJSON().ok === 1, 'the good document');
    await until(() => errors.length > 0 && fromClient.some((m) => m.kind === 'error'), 'the refusal');
    assert.equal(errors[0].code, 'invalidChange');
    assert.equal(errors[0].doc, 'bad');
    assert.equal(errors[0].fatal, false);
    const sent = fromClient.find((m) => m.kind === 'error');
    assert.equal(sent.code, 'invalidChange');
    assert.equal(sent.doc, 'bad');
    assert.equal(sent.fatal, false);
    assert.deepEqual(bad.toJSON(), {});
    assert.equal(c.state, 'open');
    assert.ok(fromClient.some((m) => m.kind === 'auth'), 'the client proved its key');
  } finally {
    c.close();
    for (const ws of server.clients) ws.terminate();
    await new Promise((r) => server.close(r));
  }
});

test('changes of an owned document with a forged signature, or moved to another document, are refused', async () => {
  // Genuine changes of an owned document, as the relay would forward them: made by a client and
  // read back from its store (signed as they were stored).
  const store = new sync.MemoryStore();
  const maker = await client({ store, identity: await sync.Identity.generate() });
  const made = await maker.open('signed', { owned: true });
  made.transact((t) => t.root.put('v', 'genuine'));
  await maker.waitForAck('signed');
  const genuine = await store.loadChanges('signed');
  assert.equal(genuine.length, 1);
  assert.ok(weft.decodeChange(genuine[0]).signed);
  const other = await sync.Identity.generate();
  const forged = weft.changeWithSignature(genuine[0], await other.sign('weft/change/v1', new Uint8Array(32)));

  // A fake relay (a valid handshake): its first connection gets the genuine change under its
  // document and under another one, its second the change with another key's signature.
  const relayId = await sync.Identity.generate();
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((r) => server.on('listening', r));
  let connections = 0;
  server.on('connection', (ws) => {
    const serve = ++connections === 1 ? { signed: genuine, moved: genuine } : { signed: [forged] };
    ws.on('message', async (data) => {
      const m = wire.decode(new Uint8Array(data));
      if (m.kind === 'hello') {
        const expires = BigInt(Math.floor(Date.now() / 1000) + 60);
        const proof = await relayId.sign(sync.SESSION_PURPOSE, sync.sessionTranscript(true,
          relayId.publicBytes, m.publicKey, m.nonce, m.audience, expires));
        ws.send(wire.encode({ hello: { nodeId: '00000000000000f2', role: 'relay',
          publicKey: relayId.publicBytes, nonce: sync.randomBytes(32), proof, expires } }));
      } else if (m.kind === 'have') {
        ws.send(wire.encode({ have: { doc: m.doc, version: {} } }));
        ws.send(wire.encode({ changes: { doc: m.doc, changes: serve[m.doc], path: ['00000000000000f2'] } }));
      }
    });
  });
  const url = `ws://127.0.0.1:${server.address().port}/`;
  const opened = [];
  try {
    const c1 = new sync.SyncClient({ url, identity: await sync.Identity.generate(), WebSocket });
    opened.push(c1);
    const errors1 = [];
    c1.on('error', (e) => errors1.push(e));
    const ok = await c1.open('signed');
    const moved = await c1.open('moved');
    await until(() => ok.toJSON().v === 'genuine', 'the genuine change');
    await until(() => errors1.length > 0, 'the moved change to be refused');
    assert.equal(errors1[0].doc, 'moved');
    // Its binding names the document it was made in, as its signature does: the first to fail.
    assert.match(errors1[0].message, /binding to a key is not signed by that key/);
    assert.deepEqual(moved.toJSON(), {});

    const c2 = new sync.SyncClient({ url, identity: await sync.Identity.generate(), WebSocket });
    opened.push(c2);
    const errors2 = [];
    c2.on('error', (e) => errors2.push(e));
    const bad = await c2.open('signed');
    await until(() => errors2.length > 0, 'the forged change to be refused');
    assert.equal(errors2[0].doc, 'signed');
    assert.equal(errors2[0].code, 'invalidChange');
    assert.match(errors2[0].message, /not signed by its key/);
    assert.deepEqual(bad.toJSON(), {});
  } finally {
    for (const c of opened) c.close();
    for (const ws of server.clients) ws.terminate();
    await new Promise((r) => server.close(r));
  }
});

// A device that makes signed changes of an owned document without a relay: a client kept
// offline over a store seeded with `seed`; its changes are read back from the store, signed.
async function offlineAuthor(identity, docId, seed, opts = {}) {
  const store = new sync.MemoryStore();
  if (seed.length) await store.appendChanges(docId, seed);
  const c = new sync.SyncClient({ url: 'ws://127.0.0.1:9/', identity, store, WebSocket });
  c.goOffline();
  const doc = await c.open(docId, opts);
  const made = async (fn) => {
    const before = (await store.loadChanges(docId)).length;
    doc.transact(fn);
    await until(async () => (await store.loadChanges(docId)).length > before, 'the change to be stored');
    const all = await store.loadChanges(docId);
    assert.equal(all.length, before + 1);
    return all[before];
  };
  return { client: c, doc, made };
}

test('the client applies the access list itself: a reader\'s write and a write past a revoke from the relay are refused, nothing of the batch applied', async () => {
  const docId = 'acl';
  const ownerId = await sync.Identity.generate();
  const writerId = await sync.Identity.generate();
  const readerId = await sync.Identity.generate();
  // The owner's document: created and titled, then writer granted to both keys.
  const owner = await offlineAuthor(ownerId, docId, [], { owned: true });
  const a1 = await owner.made((t) => t.root.put('title', 'owned'));
  const a2 = await owner.made((t) => { t.grant(writerId.publicBytes, 'writer'); t.grant(readerId.publicBytes, 'writer'); });
  // Both grantees write, each having seen the grants (so each change binds its author and is
  // signed by its key, and was allowed where it was made).
  const writer = await offlineAuthor(writerId, docId, [a1, a2]);
  const w1 = await writer.made((t) => t.root.put('w', 'before the revoke'));
  const reader = await offlineAuthor(readerId, docId, [a1, a2]);
  const r1 = await reader.made((t) => t.root.put('r', 'by a reader'));
  // Meanwhile the owner, who has the writer's first change but not the reader's, makes the
  // second key a reader and revokes the first (its cutoff: the writer's first change).
  owner.doc.applyChanges([w1]);
  const a3 = await owner.made((t) => t.grant(readerId.publicBytes, 'reader'));
  const a4 = await owner.made((t) => t.revoke(writerId.publicBytes));
  // The writer, not knowing of the revoke, writes again: past its cutoff.
  const w2 = await writer.made((t) => t.root.put('w', 'past the revoke'));
  for (const x of [owner, writer, reader]) x.client.close();
  for (const b of [w1, w2, r1]) assert.ok(weft.decodeChange(b).signed);

  // A fake relay (a valid handshake, the same document each time): connection 1 sends the grants
  // with the grantees' changes (all allowed: the control), 2 the reader's write after the
  // downgrade, 3 the writer's second change after its revoke.
  const batches = [[a1, a2, w1, w2, r1], [a1, a2, w1, a3, r1], [a1, a2, w1, a3, a4, w2]];
  const relayId = await sync.Identity.generate();
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((r) => server.on('listening', r));
  const received = [];
  let connections = 0;
  server.on('connection', (ws) => {
    const n = connections++;
    received[n] = [];
    ws.on('message', async (data) => {
      const m = wire.decode(new Uint8Array(data));
      received[n].push(m);
      if (m.kind === 'hello') {
        const expires = BigInt(Math.floor(Date.now() / 1000) + 60);
        const proof = await relayId.sign(sync.SESSION_PURPOSE, sync.sessionTranscript(true,
          relayId.publicBytes, m.publicKey, m.nonce, m.audience, expires));
        ws.send(wire.encode({ hello: { nodeId: '00000000000000f3', role: 'relay',
          publicKey: relayId.publicBytes, nonce: sync.randomBytes(32), proof, expires } }));
      } else if (m.kind === 'have' && m.doc === docId) {
        ws.send(wire.encode({ have: { doc: m.doc, version: {} } }));
        ws.send(wire.encode({ changes: { doc: m.doc, changes: batches[n], path: ['00000000000000f3'] } }));
      }
    });
  });
  const url = `ws://127.0.0.1:${server.address().port}/`;
  const opened = [];
  const victim = async () => {
    const store = new sync.MemoryStore();
    const c = new sync.SyncClient({ url, identity: await sync.Identity.generate(), WebSocket, relayKey: relayId.hex, store });
    opened.push(c);
    const errors = [];
    c.on('error', (e) => errors.push(e));
    return { c, store, errors, doc: await c.open(docId) };
  };
  try {
    // The control: the same signed changes, in a list that allows them, are taken and stored.
    const ok = await victim();
    await until(() => ok.doc.toJSON().r === 'by a reader', 'the allowed changes');
    assert.deepEqual(ok.doc.toJSON(), { title: 'owned', w: 'past the revoke', r: 'by a reader' });
    await until(async () => (await ok.store.loadChanges(docId)).length === 5, 'the changes to be stored');
    assert.deepEqual(ok.errors, []);

    for (const [n, pattern] of [[1, /is a reader of this document and may not write/],
      [2, /cut off by a revoke at seq \d+; this change reaches seq/]]) {
      const v = await victim();
      await until(() => v.errors.length > 0, `batch ${n} to be refused`);
      assert.equal(v.errors[0].code, 'permissionDenied');
      assert.equal(v.errors[0].doc, docId);
      assert.equal(v.errors[0].fatal, false);
      assert.match(v.errors[0].message, pattern);
      // Nothing of the batch: not the owner's changes before the refused one either.
      assert.deepEqual(v.doc.toJSON(), {});
      assert.deepEqual(v.doc.version, {});
      assert.equal(v.doc.access.owned, false);
      assert.deepEqual(await v.store.loadChanges(docId), []);
      await until(() => received[n].some((m) => m.kind === 'error'), 'the refusal sent to the relay');
      const sent = received[n].find((m) => m.kind === 'error');
      assert.equal(sent.code, 'permissionDenied');
      assert.equal(sent.doc, docId);
      assert.ok(!received[n].some((m) => m.kind === 'ack'), 'the client acknowledged a refused batch');
      // The document still works locally.
      v.doc.transact((t) => t.root.put('local', 1));
      assert.equal(v.doc.toJSON().local, 1);
    }
  } finally {
    for (const c of opened) c.close();
    for (const ws of server.clients) ws.terminate();
    await new Promise((r) => server.close(r));
  }
});

test('blake2b: matches Node.js\'s BLAKE2b-512, and BLAKE2b-256 of "abc"', async () => {
  const { blake2b } = await import(pathToFileURL(path.join(pkg, 'blake2b.js')).href);
  const { createHash } = await import('node:crypto');
  for (const n of [0, 1, 127, 128, 129, 256, 1000]) {
    const b = new Uint8Array(n).map((_, i) => (i * 31 + 7) & 255);
    assert.equal(Buffer.from(blake2b(b, 64)).toString('hex'), createHash('blake2b512').update(b).digest('hex'));
  }
  assert.equal(Buffer.from(blake2b(new TextEncoder().encode('abc'))).toString('hex'),
    'bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319');
});

test('owned documents: the tool\'s owner grants the browser\'s key; its signed changes are taken, a stranger gets nothing', async () => {
  await needRelay();
  const owner = path.join(dir, 'owner.db');
  const identity = await sync.Identity.generate();
  assert.equal((await weftCli(owner, 'set', 'owned', 'title', '"private"')).code, 0);
  const grant = await weftCli(owner, 'grant', 'owned', identity.hex, 'writer');
  assert.equal(grant.code, 0, grant.stderr);
  const s1 = await weftCli(owner, 'sync', relay.url, '--doc', 'owned', '--timeout', '30');
  assert.equal(s1.code, 0, s1.stderr);

  const c = await client({ identity });
  const d = await c.open('owned');
  await until(() => d.toJSON().title === 'private', 'the owned document to reach its writer');
  assert.ok(d.access.owned);
  assert.equal(d.access.bound, null);
  d.transact((t) => t.root.put('from_js', 'signed'));
  assert.deepEqual([...d.access.bound], [...identity.publicBytes]);
  await c.waitForAck('owned');

  const s2 = await weftCli(owner, 'sync', relay.url, '--doc', 'owned', '--timeout', '30');
  assert.equal(s2.code, 0, s2.stderr);
  const got = JSON.parse((await weftCli(owner, 'get', 'owned')).stdout);
  assert.equal(got.from_js, 'signed');
  const members = JSON.parse((await weftCli(owner, 'members', 'owned')).stdout);
  assert.equal(members[identity.hex], 'writer');

  // A stranger's key: the relay refuses it the document, nothing arrives.
  const stranger = await client();
  const errors = [];
  stranger.on('error', (e) => errors.push(e));
  const ds = await stranger.open('owned');
  await until(() => errors.some((e) => e.code === 'permissionDenied' && e.doc === 'owned'),
    'the relay to refuse the stranger');
  assert.deepEqual(ds.toJSON(), {});
});

test('owned documents: one made in JS is owned by the device\'s key; its other devices read it, a stranger cannot', async () => {
  await needRelay();
  const identity = await sync.Identity.generate();
  const c = await client({ identity });
  const d = await c.open('js-owned', { owned: true });
  d.transact((t) => t.root.put('secret', 42));
  assert.ok(d.access.owned);
  assert.deepEqual([...d.access.owner], [...identity.publicBytes]);
  await c.waitForAck('js-owned');
  // The same key on another client (a second tab): the relay serves it the document.
  const again = await client({ identity });
  const d2 = await again.open('js-owned');
  await until(() => d2.toJSON().secret === 42, 'the owner\'s other client to read it');
  // The weft tool, with a key of its own: the relay refuses it the document.
  const db = path.join(dir, 'stranger.db');
  const s = await weftCli(db, 'sync', relay.url, '--doc', 'js-owned', '--timeout', '10');
  assert.notEqual(s.code, 0, 'the tool synced a document it may not read');
  const got = await weftCli(db, 'get', 'js-owned');
  assert.ok(!got.stdout.includes('42'), `a stranger read it: ${got.stdout}`);
});

test('grant and revoke from JS: the owner gives the tool\'s key writer, the tool\'s change comes back; revoked, the tool is refused', async () => {
  await needRelay();
  const identity = await sync.Identity.generate();
  const c = await client({ identity });
  const d = await c.open('js-grants', { owned: true });
  d.transact((t) => t.root.put('title', 'from js'));
  const db = path.join(dir, 'grantee.db');
  const keyHex = (await weftCli(db, 'id')).stdout.trim();
  assert.match(keyHex, /^[0-9a-f]{64}$/);
  const key = Uint8Array.from(keyHex.match(/../g), (h) => parseInt(h, 16));
  assert.throws(() => d.transact((t) => t.grant(key, 'owner')),
    (e) => e.code === weft.Status.INVALID_ARGUMENT);
  d.transact((t) => t.grant(key, 'writer'));
  await c.waitForAck('js-grants');

  const s1 = await weftCli(db, 'sync', relay.url, '--doc', 'js-grants', '--timeout', '30');
  assert.equal(s1.code, 0, s1.stderr);
  const members = JSON.parse((await weftCli(db, 'members', 'js-grants')).stdout);
  assert.deepEqual(members, { [identity.hex]: 'owner', [keyHex]: 'writer' });
  assert.equal((await weftCli(db, 'set', 'js-grants', 'from_tool', '1')).code, 0);
  const s2 = await weftCli(db, 'sync', relay.url, '--doc', 'js-grants', '--timeout', '30');
  assert.equal(s2.code, 0, s2.stderr);
  await until(() => d.toJSON().from_tool === 1, 'the grantee\'s change to reach the owner');

  d.transact((t) => t.revoke(key));
  await c.waitForAck('js-grants');
  assert.equal((await weftCli(db, 'set', 'js-grants', 'late', '2')).code, 0);
  const s3 = await weftCli(db, 'sync', relay.url, '--doc', 'js-grants', '--timeout', '10');
  assert.notEqual(s3.code, 0, 'the relay took a change from a revoked key');
  // Another writer's change after the revoke still arrives, and the revoked one never does.
  const again = await client({ identity });
  const d2 = await again.open('js-grants');
  await until(() => d2.toJSON().from_tool === 1, 'the owner\'s other client to read it');
  d2.transact((t) => t.root.put('after', true));
  await until(() => d.toJSON().after === true, 'a change after the revoke');
  assert.equal(d.toJSON().late, undefined);
  assert.equal(d2.toJSON().late, undefined);
});
