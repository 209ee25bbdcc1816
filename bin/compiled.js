/**
 * The CLI's sources, compiled ahead of time. tsx compiles them on the fly, but on Node 20 its ESM hooks
 * (`module.register`) run on a loader thread of their own: a second V8 heap that stays for the life of the process
 * and costs about 35 MB of RSS, more than a quarter of what a streaming `ferry run` needs. Here the same esbuild
 * transform runs once per version of the sources (in a child process, so the CLI never loads esbuild either), into
 * `node_modules/.cache/ferry/<hash of the sources>/`, and the CLI imports the result with plain Node.
 *
 * Equivalence with tsx: the same transformer and options (target this Node, the tsconfig, whitespace minified,
 * linked source maps so that stack traces name the .ts lines), one output file per source file with the same
 * relative imports, and `import.meta.url` (and dirname, filename) defined as the source file's, so that paths
 * resolved from a module's location are the same. Anything that fails here falls back to tsx (`compiledMain`
 * returns undefined); FERRY_TSX=1 forces tsx.
 */
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const SRC = join(ROOT, 'src');
/** FERRY_CACHE_DIR puts the outputs elsewhere (each then links ROOT's node_modules, for package resolution). */
const CACHE = process.env.FERRY_CACHE_DIR || join(ROOT, 'node_modules', '.cache', 'ferry');
/** Bump when the transform's options change: older outputs are then stale. */
const FORMAT = 1;
/** Outputs kept besides the current one; older ones go once unused for a month (a long `ferry run` may still import from its own). */
const KEEP = 4;
const UNUSED_MS = 30 * 24 * 3600_000;

function sources(dir = SRC, out = []) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) sources(p, out);
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

function esbuildPath() {
  // esbuild comes with tsx (a dependency); resolve it from there, wherever the package manager put it.
  return createRequire(createRequire(import.meta.url).resolve('tsx/package.json')).resolve('esbuild');
}

/**
 * A hash of everything the output depends on: the sources and where they are (import.meta.url names them), the
 * tsconfig, Node's version, esbuild's version.
 */
function key(files) {
  const h = createHash('sha256');
  h.update(`${FORMAT}\0${process.versions.node}\0${ROOT}\0`);
  h.update(readFileSync(join(dirname(dirname(esbuildPath())), 'package.json')));
  h.update(readFileSync(join(ROOT, 'tsconfig.json')));
  for (const f of files) {
    h.update(`\0${relative(SRC, f)}\0`);
    h.update(readFileSync(f));
  }
  return h.digest('hex').slice(0, 20);
}

/** The compiled `src/cli/main.js` for the current sources (compiling them first if needed), or undefined. */
export function compiledMain() {
  try {
    const files = sources().sort();
    const dir = join(CACHE, key(files));
    const main = join(dir, 'src', 'cli', 'main.js');
    if (!existsSync(main)) {
      execFileSync(process.execPath, [fileURLToPath(import.meta.url), dir], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 120_000 });
      if (!existsSync(main)) return undefined;
    } else {
      // Mark it used, so pruning keeps the outputs in use.
      const now = new Date();
      try {
        utimesSync(dir, now, now);
      } catch {
        // read-only: fine
      }
    }
    return main;
  } catch {
    return undefined;
  }
}

/** Compile every source into `dir` (written beside it, then renamed: concurrent compilers cannot mix outputs). */
async function compile(dir) {
  const esbuild = await import(pathToFileURL(esbuildPath()).href);
  const tsconfigRaw = JSON.parse(readFileSync(join(ROOT, 'tsconfig.json'), 'utf8'));
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  await Promise.all(
    sources().map(async (file) => {
      const rel = relative(ROOT, file);
      const out = join(tmp, rel.replace(/\.ts$/, '.js'));
      const url = pathToFileURL(file).href;
      const r = await esbuild.transform(readFileSync(file, 'utf8'), {
        loader: 'ts',
        format: 'esm',
        target: `node${process.versions.node}`,
        tsconfigRaw,
        minifyWhitespace: true,
        sourcemap: 'external',
        sourcefile: file,
        define: {
          'import.meta.url': JSON.stringify(url),
          'import.meta.filename': JSON.stringify(file),
          'import.meta.dirname': JSON.stringify(dirname(file)),
        },
      });
      mkdirSync(dirname(out), { recursive: true });
      const map = JSON.parse(r.map);
      map.sources = [url];
      writeFileSync(`${out}.map`, JSON.stringify(map));
      writeFileSync(out, `${r.code}//# sourceMappingURL=${pathToFileURL(out).href.split('/').pop()}.map\n`);
    }),
  );
  // Outside src/, the compiled modules resolve packages from ROOT's node_modules (they are under it) and read
  // nothing else by relative path (import.meta.url is the source's).
  writeFileSync(join(tmp, 'package.json'), '{"type":"module"}\n');
  if (process.env.FERRY_CACHE_DIR) symlinkSync(join(ROOT, 'node_modules'), join(tmp, 'node_modules'), 'dir');
  try {
    renameSync(tmp, dir);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    if (!existsSync(dir)) throw err; // another process won the race: its output is the same
  }
  prune(dir);
}

/** Keep the most recently used outputs; remove a compile's leftovers (killed midway) after a day. */
function prune(current) {
  const dirs = readdirSync(CACHE, { withFileTypes: true })
    .filter((e) => e.isDirectory() && join(CACHE, e.name) !== current)
    .map((e) => ({ p: join(CACHE, e.name), t: statSync(join(CACHE, e.name)).mtimeMs }))
    .sort((a, b) => b.t - a.t);
  const now = Date.now();
  for (const [i, d] of dirs.entries()) {
    const leftover = d.p.includes('.tmp-') && d.t < now - 24 * 3600_000;
    if (leftover || (i >= KEEP && !d.p.includes('.tmp-') && d.t < now - UNUSED_MS)) rmSync(d.p, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const dir = process.argv[2];
  if (!dir) {
    process.stderr.write('usage: node bin/compiled.js <output dir>\n');
    process.exit(2);
  }
  mkdirSync(dirname(dir), { recursive: true });
  await compile(dir);
}
