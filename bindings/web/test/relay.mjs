// Real processes for the sync tests: a weft-relay on a free loopback port (port 0, the bound port
// read from its banner), stopped by its process ID, and the `weft` tool against a database.
// Paths from ctest's environment (WEFT_RELAY_BIN, WEFT_BIN); defaults point into build/.
import { spawn, execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const build = path.join(here, '../../../build');
export const RELAY_BIN = process.env.WEFT_RELAY_BIN ?? path.join(build, 'sync-server/weft-relay');
export const WEFT_BIN = process.env.WEFT_BIN ?? path.join(build, 'apps/cli/weft');

export function tempDir(prefix = 'weft-web-') {
  return mkdtempSync(path.join(tmpdir(), prefix));
}

export function removeDir(dir) {
  rmSync(dir, { recursive: true, force: true });
}

/** Starts a relay (secure by default: authenticated sessions); resolves once it listens. */
export async function startRelay(dataDir, ...flags) {
  const proc = spawn(RELAY_BIN, ['--listen', '127.0.0.1:0', '--data', dataDir, ...flags],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  proc.stderr.on('data', (d) => { stderr += d; });
  const port = await new Promise((resolve, reject) => {
    let out = '';
    const onData = (d) => {
      out += d;
      const m = /listening on [^:\s]+:(\d+)/.exec(out);
      if (m) { proc.stdout.off('data', onData); proc.stdout.resume(); resolve(Number(m[1])); }
    };
    proc.stdout.on('data', onData);
    proc.on('error', (e) => reject(new Error(`weft-relay did not start: ${e.message}`)));
    proc.on('exit', (code) => reject(new Error(`weft-relay exited (${code}): ${out} ${stderr}`)));
  });
  const exited = new Promise((resolve) => proc.on('exit', resolve));
  return {
    port,
    pid: proc.pid,
    url: `ws://127.0.0.1:${port}/`,
    get stderr() { return stderr; },
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) process.kill(proc.pid, 'SIGTERM');
      await exited;
    },
  };
}

/** Runs `weft --db DB ...args`; resolves {code, stdout, stderr}. */
export function weftCli(db, ...args) {
  return new Promise((resolve) => {
    execFile(WEFT_BIN, ['--db', db, ...args], { timeout: 60000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (err.code ?? 1) : 0, stdout, stderr });
    });
  });
}

/** Polls `cond` (async or not) until it is true; fails after `timeoutMs`. */
export async function until(cond, what, timeoutMs = 20000) {
  const end = Date.now() + timeoutMs;
  for (let delay = 5; ; delay = Math.min(delay * 2, 100)) {
    if (await cond()) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, delay));
  }
}
