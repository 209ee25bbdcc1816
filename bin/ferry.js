#!/usr/bin/env node
// The CLI runs the TypeScript sources through tsx's loader: one code path for `npm start`, tests and users.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/main.ts');
