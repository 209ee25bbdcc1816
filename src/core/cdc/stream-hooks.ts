/**
 * Hooks the streamer calls for relation descriptions and logical messages (schema, partition and table-set
 * evolution live behind them). Called in the apply lane, in stream order, inside the open target batch, before any
 * later change is applied; what they return is in effect before the next event is decided.
 */
import type { Position, TableSchema } from '../model.js';
import type { Change, RelationInfo } from '../ports/change-source.js';
import type { ApplyBatch } from '../ports/change-target.js';

export interface HookResult {
  /** New or updated table schemas: the streamer replaces or adds them in its table map. */
  tables?: TableSchema[];
  /** The streamer drops later changes of these tables and reports them (warn). */
  pause?: { table: string; reason: string }[];
  /** Changes to apply right here, in order (for example a resync of a partition's rows). */
  changes?: Change[];
}

export interface StreamHooks {
  onRelation?(relation: RelationInfo, batch: ApplyBatch): Promise<HookResult | void>;
  onMessage?(message: { prefix: string; content: string; position: Position }, batch: ApplyBatch): Promise<HookResult | void>;
}
