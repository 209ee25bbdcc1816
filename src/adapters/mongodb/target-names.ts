/**
 * Where a table lands on a MongoDB target: the URL's database when it names one (collection = the table's target
 * name), else database = the target schema. Ferry's own marker documents live in collection `_ferry` of the URL's
 * database (or of database `ferry`).
 */
import type { Collection, MongoClient } from 'mongodb';
import type { TableSchema } from '../../core/model.js';

export const MARKERS = '_ferry';

export class TargetNames {
  constructor(private readonly client: MongoClient, private readonly urlDb: string | undefined) {}
  place(t: TableSchema): { db: string; coll: string } {
    return { db: this.urlDb ?? t.target.schema, coll: t.target.name };
  }
  collection(t: TableSchema): Collection {
    const p = this.place(t);
    return this.client.db(p.db).collection(p.coll);
  }
  markers(): Collection {
    return this.client.db(this.urlDb ?? 'ferry').collection(MARKERS);
  }
}
