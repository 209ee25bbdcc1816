/**
 * The stream <-> parts hook contract as the evolution code uses it: the declarations are stream's
 * (ports/change-source.ts, cdc/stream-hooks.ts); this file only names the pieces the parts code refers to.
 */
import type { Position } from '../model.js';
import type { RelationInfo } from '../ports/change-source.js';

export type { RelationInfo } from '../ports/change-source.js';
export type { HookResult, StreamHooks } from './stream-hooks.js';

export type RelationColumn = RelationInfo['columns'][number];

export interface StreamMessage {
  prefix: string;
  content: string;
  position: Position;
}
