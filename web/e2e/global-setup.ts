/**
 * Starts a real `westtek up` for the end-to-end tests: a fresh temp data dir,
 * a free port, the built portal (`dist/`). Waits for the first-run sign-in
 * link and hands the URLs to the tests through the environment. Returns the
 * teardown that stops it (the platform stops its Jupyter servers itself) and
 * removes the data dir.
 */
import { spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const web = resolve(import.meta.dirname, '..');

function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', fail);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? ok(addr.port) : fail(new Error('no port'))));
    });
  });
}

export default async function globalSetup() {
  const bin = process.env.WESTTEK_BIN ?? join(homedir(), '.cache/westtek/target/release/westtek');
  if (!existsSync(bin)) {
    throw new Error(`westtek binary not found at ${bin}: build it (cargo build --release -p westtek) or set WESTTEK_BIN`);
  }
  const dist = join(web, 'dist');
  if (!existsSync(join(dist, 'index.html'))) throw new Error('dist/index.html is missing: run `npm run build` first');

  // Screenshots of this run only.
  rmSync(join(web, 'e2e', 'screenshots'), { recursive: true, force: true });

  const root = mkdtempSync(join(tmpdir(), 'westtek-e2e-'));
  const dataDir = join(root, 'data');
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  mkdirSync(join(web, 'test-results'), { recursive: true });
  const log = createWriteStream(join(web, 'test-results', 'westtek.log'));
  const child = spawn(bin, ['up', '--data-dir', dataDir, '--port', String(port), '--web-dir', dist], {
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'info', WESTTEK_DRIFT_SWEEP_SECS: '30' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stderr.pipe(log);

  const signInUrl = await new Promise<string>((ok, fail) => {
    let out = '';
    const timer = setTimeout(() => fail(new Error(`westtek up printed no sign-in link within 60 s:\n${out}`)), 60_000);
    child.stdout.on('data', (b: Buffer) => {
      log.write(b);
      out += b.toString();
      const m = /Sign in once with: (\S+)/.exec(out);
      if (m?.[1]) {
        clearTimeout(timer);
        ok(m[1]);
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      fail(new Error(`westtek up exited with ${code}; see test-results/westtek.log:\n${out}`));
    });
  });

  process.env.WESTTEK_E2E_URL = base;
  process.env.WESTTEK_E2E_SIGN_IN_URL = signInUrl;
  process.env.WESTTEK_E2E_DATA_DIR = dataDir;
  process.env.WESTTEK_E2E_BIN = bin;

  return async () => {
    if (child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const timeout = new Promise((r) => setTimeout(r, 20_000, 'timeout'));
      if ((await Promise.race([exited, timeout])) === 'timeout') child.kill('SIGKILL');
    }
    log.end();
    if (!process.env.WESTTEK_E2E_KEEP) rmSync(root, { recursive: true, force: true });
  };
}
