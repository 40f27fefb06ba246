// `make web-demo`: starts a weft-relay (secure mode, data in DATA/relay) and a static server for
// the demo on loopback, prints the page's URL, and stops the relay (by its PID) on Ctrl-C.
// usage: node serve.mjs RELAY_BIN PKG_DIR PORT DATA
import http from 'node:http';
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { readFile, realpath } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const [relayBin, pkgDir, port = '8791', data = './weft-demo-data'] = process.argv.slice(2);
const here = path.dirname(fileURLToPath(import.meta.url));
mkdirSync(path.join(data, 'web-relay'), { recursive: true });
const relay = spawn(relayBin, ['--listen', '127.0.0.1:0', '--data', path.join(data, 'web-relay')],
  { stdio: ['ignore', 'pipe', 'inherit'] });
const relayUrl = await new Promise((resolve, reject) => {
  let out = '';
  relay.stdout.on('data', (d) => {
    out += d;
    const m = /listening on [^:\s]+:(\d+)/.exec(out);
    if (m) resolve(`ws://127.0.0.1:${m[1]}/`);
  });
  relay.on('exit', (code) => reject(new Error(`weft-relay exited (${code})`)));
});
const roots = { pkg: await realpath(pkgDir), demo: here };
const types = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript',
  '.wasm': 'application/wasm', '.json': 'application/json' };
const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://x');
  if (url.pathname === '/') { res.writeHead(302, { location: '/demo/index.html' }).end(); return; }
  if (url.pathname === '/demo/config.json') {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ relay: relayUrl }));
    return;
  }
  const [, top, ...rest] = url.pathname.split('/');
  const rel = path.normalize(rest.join('/'));
  if (!roots[top] || rel.startsWith('..') || path.isAbsolute(rel)) { res.writeHead(404).end(); return; }
  try {
    const body = await readFile(path.join(roots[top], rel));
    res.writeHead(200, { 'content-type': types[path.extname(rel)] ?? 'application/octet-stream' }).end(body);
  } catch { res.writeHead(404).end(); }
});
server.listen(Number(port), '127.0.0.1', () => {
  console.log(`weft web demo: http://127.0.0.1:${server.address().port}/ (relay ${relayUrl}); open it in two windows; Ctrl-C stops`);
});
// Stops the relay by its PID and exits once it has (its files closed).
const stop = () => {
  server.close();
  if (relay.exitCode !== null || relay.signalCode !== null) process.exit(0);
  relay.on('exit', () => process.exit(0));
  process.kill(relay.pid, 'SIGTERM');
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
