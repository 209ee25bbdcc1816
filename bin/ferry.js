#!/usr/bin/env node
// The CLI runs the TypeScript sources through tsx's loader: one code path for `npm start`, tests and users.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
const { reportError } = await import('../src/cli/report-error.ts');
process.exitCode = await main(process.argv.slice(2)).catch(reportError);
