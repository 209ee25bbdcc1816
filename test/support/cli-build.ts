/**
 * The CLI, transpiled once per test run for the tests that spawn it.
 *
 * `bin/ferry.js` runs the TypeScript sources through tsx's loader, and every module then crosses to the loader's
 * thread: a process start cost about 1.5 s of CPU (about 0.6 s without), and the suite starts a few hundred.
 * Here esbuild (the transformer tsx itself uses, same tsconfig) writes each file of src/ as JavaScript to a
 * temporary tree (src/ and containers/), file for file with the same relative imports, next to a symlink to node_modules and a copy of
 * package.json, so the process is the same code, started by plain `node`. Tests that are about the binary itself
 * (test/cli-args.test.ts) still run bin/ferry.js.
 */
import { build } from 'esbuild';
import { copyFileSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..', '..');

/** The entry: what bin/ferry.js does once it has the compiled sources (the young-generation cap first, as there). */
const ENTRY = `(await import('./src/runtime/heap-governor.js')).capYoungGeneration();
const { main } = await import('./src/cli/main.js');
const { reportError } = await import('./src/cli/report-error.js');
process.exitCode = await main(process.argv.slice(2)).catch(reportError);
`;

/** Builds the tree; returns the path of its entry script (run it with `node`) and how to remove the tree. */
export async function buildCli(): Promise<{ entry: string; remove(): void }> {
  const out = mkdtempSync(join(tmpdir(), 'ferry-cli-'));
  try {
    // src/, and containers/ (the streamer image's entry, which test/aws-production.test.ts starts as ECS would).
    const entryPoints = ['src', 'containers'].flatMap((dir) =>
      readdirSync(join(ROOT, dir), { recursive: true, encoding: 'utf8' })
        .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
        .map((f) => join(ROOT, dir, f)),
    );
    await build({
      entryPoints,
      outdir: out,
      outbase: ROOT,
      format: 'esm',
      platform: 'node',
      target: 'node20',
      bundle: false,
      sourcemap: 'inline',
      tsconfig: join(ROOT, 'tsconfig.json'),
      logLevel: 'error',
    });
    symlinkSync(join(ROOT, 'node_modules'), join(out, 'node_modules'));
    // main.ts reads the version from ../../package.json.
    copyFileSync(join(ROOT, 'package.json'), join(out, 'package.json'));
    writeFileSync(join(out, 'ferry.mjs'), ENTRY);
  } catch (err) {
    rmSync(out, { recursive: true, force: true });
    throw err;
  }
  return { entry: join(out, 'ferry.mjs'), remove: () => rmSync(out, { recursive: true, force: true }) };
}
