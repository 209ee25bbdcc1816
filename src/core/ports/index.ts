export type * from './source.js';
export type * from './target.js';
export type * from './state-store.js';
export type * from './job-queue.js';
