// Prints the gzipped size of the JavaScript and CSS the initial route loads
// (the entry chunk and everything it imports statically, from Vite's
// manifest), and of all assets; fails when the initial route is over budget.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

const dist = new URL('../dist/', import.meta.url).pathname;
const BUDGET = 500 * 1024;
const manifest = JSON.parse(readFileSync(join(dist, '.vite/manifest.json'), 'utf8'));
const gz = (file) => gzipSync(readFileSync(join(dist, file)), { level: 9 }).length;
const kb = (n) => `${(n / 1024).toFixed(1)} kB`;

const initial = new Set();
const visit = (key) => {
  const chunk = manifest[key];
  if (!chunk || initial.has(chunk.file)) return;
  initial.add(chunk.file);
  for (const css of chunk.css ?? []) initial.add(css);
  for (const imp of chunk.imports ?? []) visit(imp);
};
for (const [key, chunk] of Object.entries(manifest)) if (chunk.isEntry) visit(key);

const all = new Set(Object.values(manifest).flatMap((c) => [c.file, ...(c.css ?? [])]));
const rows = [...all].sort().map((f) => ({ f, size: gz(f), initial: initial.has(f) }));
const initialTotal = rows.filter((r) => r.initial).reduce((a, r) => a + r.size, 0);
const total = rows.reduce((a, r) => a + r.size, 0);

console.log('\nportal bundle (gzip -9):');
for (const r of rows) console.log(`  ${r.initial ? '*' : ' '} ${r.f.padEnd(48)} ${kb(r.size).padStart(10)}`);
console.log(`  initial route (*): ${kb(initialTotal)} of a ${kb(BUDGET)} budget; all assets: ${kb(total)}\n`);
if (initialTotal > BUDGET) {
  console.error(`the initial route is ${kb(initialTotal)} gzipped, over the ${kb(BUDGET)} budget`);
  process.exit(1);
}
