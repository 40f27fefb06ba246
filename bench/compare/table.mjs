// Reads JSON lines from weft-bench and compare.mjs on stdin and prints, per trace, a side-by-side
// table and the ratios the issue asks for (weft vs the fastest / smallest of the others).
import { readFileSync } from 'node:fs';

const rows = readFileSync(0, 'utf8').split('\n').filter((l) => l.trim().startsWith('{'))
  .map((l) => JSON.parse(l));
const fields = ['apply_ms', 'merge_ms', 'snapshot_bytes', 'load_ms', 'peak_rss_kb', 'ok'];
const traces = [...new Set(rows.map((r) => r.trace))];
const pad = (s, n) => String(s).padStart(n);
for (const trace of traces) {
  const rs = rows.filter((r) => r.trace === trace);
  console.log(`\n${trace} (${rs[0]?.ops ?? '?'} ops)`);
  console.log(pad('system', 10) + fields.map((f) => pad(f, 16)).join(''));
  for (const r of rs) {
    console.log(pad(r.lib ?? 'weft', 10) + fields.map((f) => pad(r[f] ?? '-', 16)).join(''));
  }
  const weft = rs.find((r) => !r.lib);
  const prebuilt = rs.filter((r) => r.lib && r.prebuilt);
  if (weft && prebuilt.length) {
    // The Eg-walker datasets: the other libraries loaded the paper's prebuilt documents.
    console.log('ratios (remote merge of the whole history into a fresh document):');
    for (const p of prebuilt) {
      console.log(`  merge_ms: weft ${weft.merge_ms} vs ${p.lib} loading ${p.prebuilt} ` +
                  `${p.merge_ms} -> ${(weft.merge_ms / p.merge_ms).toFixed(2)}x` +
                  (p.lib === 'yjs' ? ' (needs <= 0.15)' : ''));
    }
    console.log(`  apply_ms / merge_ms (weft): ${(weft.apply_ms / weft.merge_ms).toFixed(1)} ` +
                '(needs <= 20)');
    continue;
  }
  const others = rs.filter((r) => r.lib && r.ok);
  if (!weft || others.length === 0) continue;
  const best = (f) => Math.min(...others.map((r) => r[f]).filter((x) => typeof x === 'number'));
  const yjs = others.find((r) => r.lib === 'yjs');
  console.log('ratios:');
  console.log(`  apply_ms: weft ${weft.apply_ms} vs fastest other ${best('apply_ms')} ` +
              `-> weft is ${(best('apply_ms') / weft.apply_ms).toFixed(1)}x faster (needs >= 10x)`);
  console.log(`  merge_ms / apply_ms (weft): ${(weft.merge_ms / weft.apply_ms).toFixed(2)} (needs <= 2)`);
  console.log(`  load_ms (weft): ${weft.load_ms} (needs <= 10)`);
  const am = others.find((r) => r.lib === 'automerge');
  if (am) {
    console.log(`  snapshot_bytes: weft ${weft.snapshot_bytes} vs automerge ${am.snapshot_bytes} ` +
                `(${(weft.snapshot_bytes / am.snapshot_bytes).toFixed(2)}, needs <= 1)`);
  }
  if (yjs) {
    console.log(`  peak_rss_kb: weft ${weft.peak_rss_kb} vs yjs ${yjs.peak_rss_kb} ` +
                `(${(weft.peak_rss_kb / yjs.peak_rss_kb).toFixed(2)}, needs < 1)`);
  }
}
