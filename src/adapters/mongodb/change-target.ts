/**
 * ChangeTarget for MongoDB. Changes (mongo-ejson images) are applied in order as ordered bulk writes, one run per
 * collection, each acknowledged by a majority; `commit` then records the position in the flow's `_ferry` marker
 * document. Not one transaction: every change converges when replayed (whole-document upserts by `_id`, deletes by
 * `_id`), so a crash between the writes and the marker replays them harmlessly from the last recorded position.
 * For the same reason `rollback` has nothing to undo (and savepoints are not offered: a source that streams
 * in-progress transactions, which may abort, needs a target that can undo).
 */
import type { AnyBulkWriteOperation, Collection, Document, MongoClient } from 'mongodb';
import type { EndpointConfig } from '../../config/schema.js';
import { imageToDocument } from '../../core/codec/ejson.js';
import { FerryError } from '../../core/errors.js';
import { tableKey, type Position, type TableSchema } from '../../core/model.js';
import type { Change, RowImage } from '../../core/ports/change-source.js';
import type { ApplyBatch, ChangeTarget, MissingRow } from '../../core/ports/change-target.js';
import { MONGO_CHANGE_TARGET_CAPABILITIES } from './capabilities.js';
import { databaseOfUrl, mongoClient } from './connect.js';
import { TargetNames } from './target-names.js';

export class MongoChangeTarget implements ChangeTarget {
  readonly capabilities = MONGO_CHANGE_TARGET_CAPABILITIES;
  readonly client: MongoClient;
  private readonly names: TargetNames;

  constructor(config: EndpointConfig) {
    this.client = mongoClient(config, 'target');
    this.names = new TargetNames(this.client, databaseOfUrl(config.url ?? ''));
  }

  async appliedPosition(flow: string): Promise<Position | undefined> {
    const doc = await this.names.markers().findOne({ _id: `cdc/${flow}` as never }, { promoteValues: true });
    return doc?.position === undefined ? undefined : (JSON.parse(String(doc.position)) as Position);
  }

  async begin(flow: string, tables: TableSchema[]): Promise<ApplyBatch> {
    return new MongoApplyBatch(this.names, flow, new Map(tables.map((t) => [tableKey(t.source), t])));
  }

  async close(): Promise<void> {
    await this.client.close();
  }
}

class MongoApplyBatch implements ApplyBatch {
  constructor(
    private readonly names: TargetNames,
    private readonly flow: string,
    private readonly tables: Map<string, TableSchema>,
  ) {}

  private coll(table: string): Collection {
    const t = this.tables.get(table);
    if (!t) throw new FerryError(`a change of ${table}, which is not part of the flow, reached the MongoDB target`);
    return this.names.collection(t);
  }

  private static id(image: RowImage): unknown {
    return imageToDocument({ _id: image._id ?? null })._id;
  }

  async apply(changes: Change[]): Promise<MissingRow[]> {
    let run: { table: string; ops: AnyBulkWriteOperation[] } | undefined;
    const flush = async () => {
      if (run?.ops.length) await this.coll(run.table).bulkWrite(run.ops, { ordered: true });
      run = undefined;
    };
    const push = async (table: string, op: AnyBulkWriteOperation) => {
      if (run && run.table !== table) await flush();
      run ??= { table, ops: [] };
      run.ops.push(op);
      if (run.ops.length >= 1000) await flush();
    };
    for (const c of changes) {
      if (c.op === 'truncate') {
        await flush();
        for (const t of c.tables) await this.coll(t).deleteMany({});
        continue;
      }
      if (c.op === 'delete') {
        await push(c.table, { deleteOne: { filter: { _id: MongoApplyBatch.id(c.old) } as Document } });
        continue;
      }
      const doc: Document = imageToDocument(c.row);
      if (c.op === 'update' && c.old && c.old._id !== undefined && c.old._id !== c.row._id) {
        await push(c.table, { deleteOne: { filter: { _id: MongoApplyBatch.id(c.old) } as Document } });
      }
      await push(c.table, { replaceOne: { filter: { _id: doc._id }, replacement: doc, upsert: true } });
    }
    await flush();
    return [];
  }

  async upsert(table: string, rows: RowImage[]): Promise<void> {
    if (!rows.length) return;
    await this.coll(table).bulkWrite(
      rows.map((r) => {
        const doc = imageToDocument(r);
        return { replaceOne: { filter: { _id: doc._id }, replacement: doc, upsert: true } };
      }),
      { ordered: true },
    );
  }

  async commit(position: Position): Promise<void> {
    // Every write above was acknowledged by a majority (the client's write concern) before this one is sent.
    await this.names.markers().updateOne(
      { _id: `cdc/${this.flow}` as never },
      { $set: { position: JSON.stringify(position), at: new Date() } },
      { upsert: true },
    );
  }

  async rollback(): Promise<void> {}

  updateTables(tables: TableSchema[]): void {
    for (const t of tables) this.tables.set(tableKey(t.source), t);
  }
}
