// Replays an editing trace (../../../shared/traces/README.md format) in Yjs, Loro or Automerge
// and prints one JSON line with the fields weft-bench prints:
//   trace, lib, ops, apply_ms, merge_ms, snapshot_bytes, load_ms, peak_rss_kb, ok
//
//   node compare.mjs FILE            runs every library, each in its own process (own peak RSS)
//   node compare.mjs --lib NAME FILE runs one library (yjs | loro | automerge | weft-wasm: Weft's
//                                    core in WebAssembly, bindings/web, from WEFT_WEB_PKG)
//
// Same method as weft-bench: apply = every agent's replica doing its own edits (one change per
// txn) and merging its parents' changes; merge = a fresh replica applying every change; snapshot =
// the library's saved document; load = decoding that snapshot into a readable document.
//
// A concurrent trace with a prebuilt document beside it (the Eg-walker paper's A1.yjs / A1.am
// next to A1.json) is measured as the paper measures it: Yjs and Automerge load that file into a
// fresh document (merge_ms; Y.applyUpdateV2, Automerge.load), and do not replay the trace.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { gunzipSync } from 'node:zlib';

const LIBS = ['yjs', 'loro', 'automerge'];

function loadTrace(file) {
  let bytes = readFileSync(file);
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) bytes = gunzipSync(bytes);
  const t = JSON.parse(bytes.toString('utf8'));
  t.concurrent = t.kind === 'concurrent';
  t.numAgents = t.concurrent ? t.numAgents : 1;
  for (const txn of t.txns) {
    if (!t.concurrent) { txn.agent = 0; txn.parents = []; }
  }
  return t;
}

// Trace positions count code points; JS libraries count UTF-16 units. Converts when needed.
function hasAstral(s) { return /[\u{10000}-\u{10FFFF}]/u.test(s); }
function toUtf16(str, cp) {
  let i = 0;
  for (let k = 0; k < cp; k++) i += str.codePointAt(i) > 0xffff ? 2 : 1;
  return i;
}

async function adapter(name) {
  if (name === 'yjs') {
    const Y = await import('yjs');
    return {
      create(agent) {
        const doc = new Y.Doc();
        doc.clientID = agent + 1;
        return doc;
      },
      text(doc) { return doc.getText('t').toString(); },
      local(doc, patches, astral, capture) {
        let update = null;
        const h = (u) => { update = u; };
        if (capture) doc.on('update', h);
        doc.transact(() => {
          const t = doc.getText('t');
          for (const [pos, del, ins] of patches) {
            let p = pos, d = del;
            if (astral) {
              const s = t.toString();
              p = toUtf16(s, pos);
              d = toUtf16(s, pos + del) - p;
            }
            if (d > 0) t.delete(p, d);
            if (ins.length > 0) t.insert(p, ins);
          }
        });
        if (capture) doc.off('update', h);
        return update;
      },
      apply(doc, changes) {
        for (const c of changes) if (c) Y.applyUpdate(doc, c);  // (Y.mergeUpdates is slower)
      },
      save(doc) { return Y.encodeStateAsUpdate(doc); },
      load(bytes) { const d = new Y.Doc(); Y.applyUpdate(d, bytes); return d; },
    };
  }
  if (name === 'loro') {
    const { LoroDoc } = await import('loro-crdt');
    return {
      create(agent, capture) {
        const doc = new LoroDoc();
        doc.setPeerId(BigInt(agent + 1));
        doc.__updates = [];
        if (capture) doc.subscribeLocalUpdates((u) => { doc.__updates.push(u); });
        return doc;
      },
      text(doc) { return doc.getText('t').toString(); },
      local(doc, patches, astral, capture) {
        const t = doc.getText('t');
        for (const [pos, del, ins] of patches) {
          let p = pos, d = del;
          if (astral) {
            const s = t.toString();
            p = toUtf16(s, pos);
            d = toUtf16(s, pos + del) - p;
          }
          if (d > 0) t.delete(p, d);
          if (ins.length > 0) t.insert(p, ins);
        }
        doc.commit();
        if (!capture) return null;
        const u = doc.__updates;
        doc.__updates = [];
        return u.length === 1 ? u[0] : u;
      },
      apply(doc, changes) {
        const list = changes.flat().filter((c) => c);
        if (list.length === 1) doc.import(list[0]);
        else if (list.length > 1) doc.importBatch(list);
      },
      save(doc) { return doc.export({ mode: 'snapshot' }); },
      load(bytes) { return LoroDoc.fromSnapshot(bytes); },
    };
  }
  if (name === 'automerge') {
    const A = await import('@automerge/automerge');
    // Every replica starts from the same initial change (an empty text), made once.
    const initial = A.save(A.change(A.init({ actor: '00'.repeat(16) }), (d) => { d.t = ''; }));
    return {
      create(agent) {
        const actor = (agent + 1).toString(16).padStart(32, '0');
        return A.load(initial, { actor });
      },
      text(doc) { return doc.t; },
      local(doc, patches, astral, capture) {
        let next = A.change(doc.value, (d) => {
          for (const [pos, del, ins] of patches) {
            let p = pos, dl = del;
            if (astral) {
              const s = d.t.toString();
              p = toUtf16(s, pos);
              dl = toUtf16(s, pos + del) - p;
            }
            A.splice(d, ['t'], p, dl, ins);
          }
        });
        doc.value = next;
        return capture ? A.getLastLocalChange(next) : null;
      },
      apply(doc, changes) { [doc.value] = A.applyChanges(doc.value, changes); },
      save(doc) { return A.save(doc.value); },
      load(bytes) { return { value: A.load(bytes) }; },
      wrap: true,
    };
  }
  if (name === 'weft-wasm') {
    // Weft's own core compiled to WebAssembly (bindings/web), through its JS API: the package in
    // WEFT_WEB_PKG (default: build/bindings/web/pkg of this tree). Positions are code points, as
    // in the traces. One transaction (one change) per txn, as weft-bench makes.
    const pkg = process.env.WEFT_WEB_PKG ??
        fileURLToPath(new URL('../../build/bindings/web/pkg', import.meta.url));
    const weft = await import(pathToFileURL(`${pkg}/weft.js`).href);
    await weft.init();
    const textOf = (doc) => {
      if (!doc.__text) doc.__text = doc.lookup('t');
      return doc.__text;
    };
    return {
      create(agent) { return new weft.Document({ nodeId: (agent + 1).toString(16) }); },
      text(doc) { const t = textOf(doc); return t ? doc.readText(t) : ''; },
      local(doc, patches, astral, capture) {
        const c = doc.transact((t) => {
          const id = textOf(doc) ?? (doc.__text = t.root.text('t'));
          for (const [pos, del, ins] of patches) {
            if (del > 0) t.textDelete(id, pos, del);
            if (ins.length > 0) t.textInsert(id, pos, ins);
          }
        });
        return capture && c ? c.bytes : null;
      },
      apply(doc, changes) { doc.applyChanges(changes.filter((c) => c)); },
      save(doc) { return doc.encodeSnapshot(); },
      load(bytes) { return weft.Document.load(bytes); },
    };
  }
  throw new Error('unknown library ' + name);
}

// The remote merge of a prebuilt document: the best of 5 loads into a fresh document.
async function runPrebuilt(name, file, trace, prebuilt) {
  const bytes = readFileSync(prebuilt);
  let best = Infinity, text = '';
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    if (name === 'yjs') {
      const Y = await import('yjs');
      const doc = new Y.Doc();
      Y.applyUpdateV2(doc, bytes);
      text = doc.getText('text').toString();
    } else {
      const A = await import('@automerge/automerge');
      const doc = A.load(bytes);
      text = String(doc.text);
    }
    best = Math.min(best, performance.now() - t0);
  }
  const ok = text === trace.endContent;
  return {
    trace: basename(file).replace(/\.gz$/, '').replace(/\.json$/, ''),
    lib: name,
    ops: trace.txns.reduce((a, t) => a + t.patches.length, 0),
    merge_ms: Math.round(best * 1000) / 1000,
    prebuilt: basename(prebuilt),
    peak_rss_kb: process.resourceUsage().maxRSS,
    ok,
    ...(ok ? {} : { error: `the loaded text (${text.length} chars) differs from endContent` }),
  };
}

async function runOne(name, file) {
  const trace = loadTrace(file);
  const stem = file.replace(/\.gz$/, '').replace(/\.json$/, '');
  const ext = { yjs: '.yjs', automerge: '.am' }[name];
  if (trace.concurrent && ext && existsSync(stem + ext)) {
    return runPrebuilt(name, file, trace, stem + ext);
  }
  const lib = await adapter(name);
  const wrap = (d) => (lib.wrap ? { value: d } : d);
  const text = (doc) => (lib.wrap ? String(doc.value.t) : lib.text(doc));
  let astral = hasAstral(trace.endContent);
  for (const txn of trace.txns) for (const p of txn.patches) if (hasAstral(p[2])) astral = true;
  const n = trace.txns.length;
  const changes = new Array(n);
  const ops = trace.txns.reduce((a, t) => a + t.patches.length, 0);

  // A sequential trace needs no changes during the edits: the timed pass makes none (so the other
  // libraries are not charged for encoding them), and an untimed pass collects them for the merge.
  // A concurrent trace needs them to merge parents, so they are made in the timed pass.
  const replay = (capture) => {
    const agents = [];
    for (let a = 0; a < trace.numAgents; a++) {
      agents.push({ doc: wrap(lib.create(a, capture)), applied: new Uint8Array(n) });
    }
    for (let t = 0; t < n; t++) {
      const txn = trace.txns[t];
      const st = agents[txn.agent];
      if (trace.concurrent) mergeHistory(st, txn.parents);
      const c = lib.local(st.doc, txn.patches, astral, capture);
      if (capture) changes[t] = c;
      st.applied[t] = 1;
    }
    return agents;
  };
  const mergeHistory = (st, roots) => {
    const stack = [...roots], missing = [];
    while (stack.length) {
      const t = stack.pop();
      if (st.applied[t]) continue;
      st.applied[t] = 1;
      missing.push(t);
      for (const p of trace.txns[t].parents) if (!st.applied[p]) stack.push(p);
    }
    missing.sort((x, y) => x - y);
    if (missing.length) lib.apply(st.doc, missing.map((t) => changes[t]));
  };
  const t0 = performance.now();
  let agents = replay(trace.concurrent);
  const apply_ms = performance.now() - t0;
  if (!trace.concurrent) agents = replay(true);

  let ok = true;
  const errors = [];
  const all = [...Array(n).keys()];
  for (const st of agents) {
    mergeHistory(st, all);
    if (text(st.doc) !== trace.endContent) errors.push('replica text differs');
  }

  const t1 = performance.now();
  const fresh = wrap(lib.create(trace.numAgents, false));
  lib.apply(fresh, changes);
  const merge_ms = performance.now() - t1;
  if (text(fresh) !== trace.endContent) errors.push('fresh replica text differs');

  const snap = lib.save(agents[0].doc);
  const t2 = performance.now();
  const loaded = lib.load(snap);
  const load_ms = performance.now() - t2;
  if (text(loaded) !== trace.endContent) errors.push('loaded snapshot text differs');
  ok = errors.length === 0;

  const round = (x) => Math.round(x * 1000) / 1000;
  return {
    trace: basename(file).replace(/\.gz$/, '').replace(/\.json$/, ''),
    lib: name,
    ops,
    apply_ms: round(apply_ms),
    merge_ms: round(merge_ms),
    snapshot_bytes: snap.length,
    load_ms: round(load_ms),
    peak_rss_kb: process.resourceUsage().maxRSS,
    ok,
    ...(errors.length ? { error: errors.join('; ') } : {}),
  };
}

const args = process.argv.slice(2);
if (args[0] === '--lib' && args.length === 3) {
  try {
    console.log(JSON.stringify(await runOne(args[1], args[2])));
  } catch (e) {
    const trace = basename(args[2]).replace(/\.gz$/, '').replace(/\.json$/, '');
    console.log(JSON.stringify({ trace, lib: args[1], ok: false, error: String(e) }));
  }
} else if (args.length === 1) {
  const self = fileURLToPath(import.meta.url);
  for (const name of LIBS) {
    process.stdout.write(execFileSync(process.execPath, [self, '--lib', name, args[0]], { maxBuffer: 1 << 20 }));
  }
} else {
  console.error('usage: node compare.mjs [--lib yjs|loro|automerge|weft-wasm] TRACE_FILE');
  process.exit(2);
}
