/**
 * The stream <-> parts hook contract (see /work/wt/NOTES.md), as parts builds on it. `stream` adds RelationInfo to
 * ports/change-source.ts and StreamHooks/HookResult next to the streamer; these declarations are structurally the
 * same, so the hooks built here satisfy them. After both branches merge, replace these declarations by re-exports
 * of stream's (one import line per file) and delete this file.
 */
import type { Position, TableSchema } from '../model.js';
import type { Change } from '../ports/change-source.js';
import type { ApplyBatch } from '../ports/change-target.js';

export interface RelationColumn {
  name: string;
  typeOid: number;
  typeMod: number;
  key: boolean;
}

/** One pgoutput Relation message: the table's columns as of this point of the stream. */
export interface RelationInfo {
  /** Source OID (as text). */
  id: string;
  /** `schema.name` as published. */
  table: string;
  columns: RelationColumn[];
  /** pgoutput's replica identity letter: d(efault), n(othing), f(ull), i(ndex). */
  replicaIdentity: string;
}

export interface StreamMessage {
  prefix: string;
  content: string;
  position: Position;
}

export interface HookResult {
  /** New or updated table schemas: the streamer replaces/adds them in its table map. */
  tables?: TableSchema[];
  /** The streamer drops later changes of these tables and reports them (warn + status). */
  pause?: { table: string; reason: string }[];
  /** Changes to apply right here, in order. */
  changes?: Change[];
}

/** Called in the apply lane, in stream order, inside the open target batch, before any later change is applied. */
export interface StreamHooks {
  onRelation?(relation: RelationInfo, batch: ApplyBatch): Promise<HookResult | void>;
  onMessage?(message: StreamMessage, batch: ApplyBatch): Promise<HookResult | void>;
}
