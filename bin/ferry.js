#!/usr/bin/env node
// The CLI runs the TypeScript sources compiled by esbuild, the transform tsx uses, once per version of the sources
// (bin/compiled.js: no loader thread, about 35 MB less RSS); tsx's loader is the fallback (and FERRY_TSX=1).
import { pathToFileURL } from 'node:url';
import { compiledMain } from './compiled.js';

const compiled = process.env.FERRY_TSX === '1' ? undefined : compiledMain();
let modules;
if (compiled) {
  const main = pathToFileURL(compiled);
  modules = { main: main.href, report: new URL('report-error.js', main).href, heap: new URL('../runtime/heap-governor.js', main).href };
} else {
  const { register } = await import('tsx/esm/api');
  register();
  modules = { main: '../src/cli/main.ts', report: '../src/cli/report-error.ts', heap: '../src/runtime/heap-governor.ts' };
}
// Before anything else allocates: a young generation of a few MB instead of up to 32 (src/runtime/heap-governor.ts).
(await import(modules.heap)).capYoungGeneration();
const { main } = await import(modules.main);
const { reportError } = await import(modules.report);
process.exitCode = await main(process.argv.slice(2)).catch(reportError);
