// Fails when src/api/schema.d.ts is not what `npm run gen:api` makes from
// ../docs/openapi.json (the API types are generated, never edited by hand).
// Runs the same CLI as gen:api, into a temporary file, and compares.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const web = new URL('..', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'westtek-api-types-'));
try {
  const out = join(dir, 'schema.d.ts');
  execFileSync(join(web, 'node_modules/.bin/openapi-typescript'), ['../docs/openapi.json', '-o', out], {
    cwd: web,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  if (readFileSync(out, 'utf8') !== readFileSync(join(web, 'src/api/schema.d.ts'), 'utf8')) {
    console.error('src/api/schema.d.ts is out of date with docs/openapi.json: run `npm run gen:api` in web/ and commit it');
    process.exit(1);
  }
  console.log('src/api/schema.d.ts matches docs/openapi.json');
} finally {
  rmSync(dir, { recursive: true, force: true });
}
