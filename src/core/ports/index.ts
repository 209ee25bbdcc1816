export type * from './source.js';
export type * from './target.js';
export type * from './state-store.js';
export type * from './job-queue.js';
export type * from './change-source.js';
export type * from './change-target.js';
