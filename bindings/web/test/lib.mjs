// Shared by the Node tests of bindings/web: loads the built package (WEFT_WEB_PKG, set by ctest;
// default: build/bindings/web/pkg of the source tree) and runs the native helper.
import { execFileSync } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const pkg = process.env.WEFT_WEB_PKG ?? path.join(here, '../../../build/bindings/web/pkg');

export const weft = await import(pathToFileURL(path.join(pkg, 'weft.js')).href);
await weft.init();

export const nativeHelper =
    process.env.WEFT_WEB_NATIVE ?? path.join(here, '../../../build/bindings/web/weft-web-native');

/** Runs the native helper with `args` and `input` lines; returns its output lines by kind. */
export function runNative(args, input = '') {
  const out = execFileSync(nativeHelper, args, { input, maxBuffer: 1 << 28, encoding: 'utf8' });
  const lines = out.split('\n').filter((l) => l.length);
  const byKind = { change: [], 'snapshot-state': [] };
  for (const l of lines) {
    const i = l.indexOf(' ');
    const kind = l.slice(0, i);
    const rest = l.slice(i + 1);
    if (Array.isArray(byKind[kind])) byKind[kind].push(rest);
    else byKind[kind] = rest;
  }
  return byKind;
}

export const hex = (b) => Buffer.from(b).toString('hex');
export const unhex = (s) => new Uint8Array(Buffer.from(s, 'hex'));
