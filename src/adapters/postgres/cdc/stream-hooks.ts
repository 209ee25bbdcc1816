/**
 * Stream hooks for PostgreSQL: schema changes, partitions and tables that appear while a flow streams.
 *
 * DESIGN
 *
 * What the WAL tells and what it does not. pgoutput sends a Relation message (columns, types, key flags) before the
 * first change of a relation in a session and again after its definition changed; it does not send DDL. ATTACH and
 * DETACH PARTITION move rows in or out of a partitioned table without any row change, and a CREATE TABLE is not in
 * the stream at all. So:
 *
 * 1. Columns (core/cdc/evolve-columns.ts decides, schema-evolution.ts acts). On a Relation message the source catalog
 *    is read by the relation's OID; columns are matched by attribute number (kept through a rename, never reused).
 *    Added columns are added on the target with the source's type, default and NOT NULL, renamed ones renamed,
 *    dropped ones dropped: in the open apply transaction, before the rows that carry them. A change Ferry cannot
 *    replay (a type change, a new primary key, an identity or sequence-backed column) pauses that table only: the
 *    hook returns it in `pause` with a message naming the table, the change and the way forward.
 *
 * 2. Partitions are published leaf by leaf (publication option publish_via_partition_root = false, see slot.ts
 *    `publishLeaves`). That makes a TRUNCATE of one leaf a published change, and publishes every partition created
 *    later (a publication of a partitioned table covers all its partitions, present and future). Each leaf is mapped
 *    to its target partition: on its first Relation message the hook finds its root by OID (pg_partition_root),
 *    creates the matching target partition if missing (same bound, under the same parent), and returns a TableSchema
 *    whose source is the leaf and target the target leaf. Rows then route exactly as on the source (a cross-partition
 *    UPDATE is decoded as a DELETE from one leaf and an INSERT into another). Column DDL, done on the root, arrives as
 *    one Relation message per leaf: the first one alters the target root (which alters every target partition), the
 *    others find nothing left to do.
 *
 * 3. ATTACH / DETACH and new partitions are found by polling the catalog (pg_partition_tree of each streamed
 *    partitioned table, every `pollMs`). A difference is not acted on directly: the poller writes a transactional
 *    logical message (prefix `ferry_parts`) into the source WAL, so the hook runs at that point of the stream, in
 *    order with the changes around it. For an attached (or created) partition the hook makes the target partition
 *    and resyncs the partition's bound scope: it deletes the target partition's rows and copies the source
 *    partition's current rows into it (COPY to COPY, bounded memory), in the open apply transaction. Changes after
 *    the marker replay over a state at least as new as theirs, which converges for keyed tables (the snapshot's own
 *    contract). For a detached or dropped partition the hook detaches the target partition: its rows leave the
 *    partitioned table as they left the source's, and the table stays on the target.
 *
 * 4. Tables created on the source are found by the same poller: one that the flow's `include`/`exclude` select and
 *    the flow does not have is added to the publication and announced by a marker, in one source transaction (every
 *    change to it after that commit is published, after the marker). The hook describes it (introspect.ts), creates
 *    it on the target with its primary key, indexes and constraints, copies its current rows, and returns its
 *    schema so that its changes stream from there on.
 *
 * Keyless tables cannot be resynced idempotently (a replayed insert would duplicate a row the copy already has): a
 * new keyless table is paused with a message, and an attached partition of a keyless table is created but its
 * existing rows are not copied (warned). Unlogged tables never reach the WAL: slot.ts leaves them out of the
 * publication and warns. The catalog is polled, so what happened while Ferry was not running is found at the next
 * start, by comparing with the partitions and tables the flow recorded (resyncs are idempotent, so doing one twice
 * after a restart costs time, never correctness).
 *
 * WIRING (see NOTES.md): construct `PgStreamParts` once per streaming session, `await start()`, pass `hooks` to the
 * streamer, `run(signal)` the poller while streaming, `close()` after. The publication must use publishLeaves.
 */
import type pg from 'pg';
import type { EndpointConfig } from '../../../config/schema.js';
import { evolveColumns, trackTable, type ColumnStep, type TrackedTable } from '../../../core/cdc/evolve-columns.js';
import type { HookResult, RelationInfo, StreamHooks, StreamMessage } from '../../../core/cdc/evolve-contract.js';
import {
  PARTS_PREFIX,
  decodeMarker,
  diffLeaves,
  encodeMarker,
  leafSchema,
  tablesToAdd,
  type PartsMarker,
} from '../../../core/cdc/evolve-tables.js';
import { errorMessage } from '../../../core/errors.js';
import { tableKey, type TableName, type TableSchema } from '../../../core/model.js';
import type { ApplyBatch } from '../../../core/ports/change-target.js';
import type { Selection } from '../../../core/ports/source.js';
import { renameTable } from '../../../core/selection.js';
import { queryJson, withEmptySearchPath } from '../catalog.js';
import { connect, pgEndpoint } from '../connect.js';
import { planOf } from '../ddl.js';
import { parsePgTableExtra } from '../extra.js';
import { describeTables } from '../introspect.js';
import * as Q from '../introspect-queries.js';
import { finalizeTables } from '../schema-target.js';
import { applyCreate } from '../target-ddl.js';
import { pgBatch } from './change-target.js';
import { detachTargetPartition, ensureTargetPartition, partitionTarget, readLeaves, resyncRows } from './partitions.js';
import { addToPublication } from './slot.js';
import { applyColumnSteps, oidOf, pendingSteps, readCatalogColumns, readRelation, targetColumns } from './schema-evolution.js';

export interface PgStreamPartsOptions {
  flow: string;
  source: EndpointConfig;
  selection: Selection;
  /** The flow's tables (roots of partitioned ones), as planned. */
  tables: TableSchema[];
  warn: (message: string) => void;
  /** Tables added or whose columns changed: persist them with the flow (verify, stop and a restart need them). */
  onTables?: (tables: TableSchema[]) => void;
  /** How often the catalog is polled for new tables and partitions. */
  pollMs?: number;
}

interface Tracked {
  /** The published name (`schema.name`) of this relation. */
  key: string;
  root: string;
  t: TrackedTable;
}

export class PgStreamParts {
  readonly hooks: StreamHooks;
  private source: pg.Client | undefined;
  /** The poller's own connection: its marker transactions must not interleave with the hooks' catalog reads. */
  private pollConn: pg.Client | undefined;
  private readonly roots = new Map<string, TableSchema>();
  private readonly byOid = new Map<string, Tracked>();
  private readonly paused = new Map<string, string>();
  /** Leaves per partitioned root as last seen by the poller (starts from what the flow recorded). */
  private leaves = new Map<string, TableName[]>();
  /** Roots whose columns were checked against the target table this session (see reconcile). */
  private readonly reconciled = new Set<string>();
  /** Every leaf ever seen under a root (never forgotten: a message may name a leaf detached since). */
  private readonly leafRoot = new Map<string, string>();
  /** Tables announced by a marker, so one poll does not announce them again. */
  private readonly announced = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private polling: Promise<void> = Promise.resolve();

  constructor(private readonly opts: PgStreamPartsOptions) {
    for (const t of opts.tables) this.roots.set(tableKey(t.source), t);
    this.hooks = {
      onRelation: (relation, batch) => this.onRelation(relation, batch),
      onMessage: (message, batch) => this.onMessage(message, batch),
    };
  }

  private get src(): pg.Client {
    if (!this.source) throw new Error('PgStreamParts.start() was not called');
    return this.source;
  }

  /** Clients that lost their server (a source restart): replaced by `live()` before their next use. */
  private readonly broken = new WeakSet<pg.Client>();

  private async open(): Promise<pg.Client> {
    const c = await connect(pgEndpoint(this.opts.source, 'source'));
    const mark = () => this.broken.add(c);
    c.on('error', mark);
    c.on('end', mark);
    return c;
  }

  /**
   * The catalog connections outlive the supervisor's stream attempts; after a source restart they are dead, and
   * every hook and poll would fail on them forever. Reopen whichever one broke (a failure here is a connection
   * error of its own, which the supervisor retries).
   */
  private async live(): Promise<void> {
    if (this.source && this.broken.has(this.source)) {
      void this.source.end().catch(() => {});
      this.source = await this.open();
    }
    if (this.pollConn && this.broken.has(this.pollConn)) {
      void this.pollConn.end().catch(() => {});
      this.pollConn = await this.open();
    }
  }

  /** Open the catalog connection and start tracking the flow's tables by OID. */
  async start(): Promise<void> {
    this.source = await this.open();
    this.pollConn = await this.open();
    for (const [key, t] of this.roots) {
      const oid = await oidOf(this.src, t.source);
      if (oid === undefined) continue;
      this.byOid.set(String(oid), { key, root: key, t: trackTable(t, await readCatalogColumns(this.src, oid)) });
    }
    this.leaves = recordedLeaves([...this.roots.values()]);
    this.remember(this.leaves);
  }

  private remember(leaves: ReadonlyMap<string, TableName[]>): void {
    for (const [root, ls] of leaves) for (const l of ls) this.leafRoot.set(tableKey(l), root);
  }

  /** Poll the catalog every `pollMs` until `signal` aborts; failures are warned and retried at the next round. */
  run(signal: AbortSignal): void {
    const tick = () => {
      this.polling = this.polling.then(() => this.poll()).then(() => {}, (err) => this.opts.warn(`checking the source for new tables and partitions failed (retrying): ${errorMessage(err)}`));
    };
    this.timer = setInterval(tick, this.opts.pollMs ?? 5000);
    this.timer.unref();
    signal.addEventListener('abort', () => clearInterval(this.timer), { once: true });
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.polling.catch(() => {});
    await this.source?.end().catch(() => {});
    await this.pollConn?.end().catch(() => {});
    this.source = undefined;
    this.pollConn = undefined;
  }

  /** One round of discovery: announce partitions attached/detached and tables created since the last round. */
  async poll(): Promise<PartsMarker[]> {
    await this.live();
    const p = this.pollConn;
    if (!p) throw new Error('PgStreamParts.start() was not called');
    const markers: PartsMarker[] = [];
    const partitioned = [...this.roots.values()].filter((t) => parsePgTableExtra(t.extra, tableKey(t.source)).partitioning);
    const now = await readLeaves(p, partitioned.map((t) => t.source));
    markers.push(...diffLeaves(this.leaves, now));
    this.leaves = now;
    this.remember(now);
    const candidates = await withEmptySearchPath(p, () => queryJson<TableName>(p, Q.CANDIDATES));
    const known = new Set([...this.roots.keys(), ...this.announced]);
    for (const t of tablesToAdd(candidates, this.opts.selection, known)) markers.push({ kind: 'table-added', table: t });
    for (const m of markers) {
      await p.query('BEGIN');
      try {
        if (m.kind === 'table-added') {
          const { rows } = await p.query<{ u: string }>(`SELECT (relpersistence = 'u')::text AS u FROM pg_class WHERE oid = to_regclass($1)`, [
            `"${m.table.schema.replace(/"/g, '""')}"."${m.table.name.replace(/"/g, '""')}"`,
          ]);
          if (rows[0]?.u !== 'true') await addToPublication(p, this.opts.flow, m.table);
          this.announced.add(tableKey(m.table));
        }
        await p.query(`SELECT pg_logical_emit_message(true, $1, $2)`, [PARTS_PREFIX, encodeMarker(m)]);
        await p.query('COMMIT');
      } catch (err) {
        await p.query('ROLLBACK').catch(() => {});
        throw err;
      }
    }
    return markers;
  }

  // ---- hooks: run in the apply lane, in stream order, inside the open target batch ----

  private pauseResult(root: string, reason: string): HookResult {
    this.paused.set(root, reason);
    this.opts.warn(reason);
    const tables = [root, ...[...this.byOid.values()].filter((e) => e.root === root).map((e) => e.key)];
    return { pause: [...new Set(tables)].map((table) => ({ table, reason })) };
  }

  async onRelation(relation: RelationInfo, batch: ApplyBatch): Promise<HookResult | void> {
    await this.live();
    const pb = pgBatch(batch);
    if (!pb) throw new Error('the PostgreSQL stream hooks need a PostgreSQL target');
    const added: TableSchema[] = [];
    let entry = this.byOid.get(relation.id);
    if (!entry) {
      // The catalog is read now, which may be later than this message: a partition detached since is no longer
      // under its root there, so the leaves seen before (recorded at plan time and by every poll) decide too.
      const rel = await readRelation(this.src, relation.id);
      const leaf = parseKey(relation.table);
      if (rel && rel.ancestors.length === 0 && this.roots.has(relation.table)) {
        const root = this.roots.get(relation.table)!;
        entry = { key: relation.table, root: relation.table, t: trackTable(root, await readCatalogColumns(this.src, relation.id)) };
      } else {
        const inCatalog = rel && rel.ancestors.length > 0 && this.roots.has(tableKey(rel.root)) ? tableKey(rel.root) : undefined;
        const rootKey = inCatalog ?? this.leafRoot.get(relation.table);
        if (!rootKey) return; // not one of the flow's tables (a publication altered by hand)
        if (this.paused.has(rootKey)) return;
        const root = this.roots.get(rootKey)!;
        const target = inCatalog ? await ensureTargetPartition(pb.connection, rel!, root, this.opts.selection) : partitionTarget(leaf, root, this.opts.selection);
        const schema = leafSchema(root, leaf, target);
        entry = { key: relation.table, root: rootKey, t: trackTable(schema, rel ? await readCatalogColumns(this.src, relation.id) : []) };
        added.push(schema);
      }
      this.byOid.set(relation.id, entry);
    }
    if (this.paused.has(entry.root)) return;
    await this.reconcile(pb.connection, entry.root);
    if (entry.key !== relation.table && entry.key === entry.root) {
      // The table was renamed on the source: same OID, same target table, new source name.
      const root = { ...this.roots.get(entry.root)!, source: parseKey(relation.table) };
      this.roots.delete(entry.root);
      this.roots.set(relation.table, root);
      for (const e of this.byOid.values()) if (e.root === entry.root) e.root = relation.table;
      entry.key = relation.table;
      entry.t = { ...entry.t, schema: root };
      this.opts.warn(`table ${tableKey(root.target)}: its source was renamed to ${relation.table}; streaming continues into the same target table`);
      added.push(root);
    }
    // Columns the config excludes (tables.<t>.excludeColumns) are not the flow's: where the publication has no column
    // list (PostgreSQL < 15) they still arrive, and must not read as added columns.
    const excluded = new Set(this.roots.get(entry.root)?.controls?.excluded ?? []);
    const seen = excluded.size > 0 ? { ...relation, columns: relation.columns.filter((c) => !excluded.has(c.name)) } : relation;
    const evo = evolveColumns(entry.t, seen, await readCatalogColumns(this.src, relation.id));
    if (evo.kind === 'pause') return this.pauseResult(entry.root, evo.reason);
    // Every Relation message returns the relation's schema, so a streamer that rebuilt its table map (a reconnect,
    // a new batch) learns the leaves again: a Relation message precedes a session's first change of each relation.
    if (evo.kind === 'same') return this.learned(pb, added.length ? added : [entry.t.schema]);

    const root = this.roots.get(entry.root)!;
    const todo = pendingSteps(evo.steps, await targetColumns(pb.connection, root.target));
    const refused = todo.length ? await applyColumnSteps(pb.connection, root.target, todo) : undefined;
    if (refused) return this.pauseResult(entry.root, `${entry.root}: ${refused}; the table is paused (its later changes are not applied). Fix the target table by hand and start the flow over for it (\`ferry reset\`), or exclude it.`);
    if (todo.length) this.opts.warn(`${entry.root}: replayed on the target ${describeSteps(todo)}`);
    const newRoot: TableSchema = { ...root, columns: evo.table.schema.columns, primaryKey: evo.table.schema.primaryKey };
    this.roots.set(entry.root, newRoot);
    const changed: TableSchema[] = [newRoot];
    // Every relation of this root (the root itself, its leaves) now has the new columns; attnums stay per relation.
    for (const e of this.byOid.values()) {
      if (e.root !== entry.root) continue;
      const schema = e.key === entry.root ? newRoot : leafSchema(newRoot, e.t.schema.source, e.t.schema.target);
      e.t = { ...(e === entry ? evo.table : remap(e.t, evo.steps)), schema };
      if (e.key !== entry.root) changed.push(schema);
    }
    await this.saveTracked(pb.connection, entry.root);
    this.opts.onTables?.([newRoot]);
    return this.learned(pb, [...added.filter((a) => !changed.some((c) => tableKey(c.source) === tableKey(a.source))), ...changed]);
  }

  /**
   * The first time a root is seen in a session, take its columns from the target table: the DDL a hook ran
   * committed atomically with the flow's position, but `onTables` persisted the schema before that commit, so after
   * a crash the recorded schema can be ahead of the target. The target is what was applied; evolving from it replays
   * exactly the steps the target lacks.
   */
  private async reconcile(conn: pg.ClientBase, rootKey: string): Promise<void> {
    if (this.reconciled.has(rootKey)) return;
    this.reconciled.add(rootKey);
    // What the target committed last: tracked columns with their source attnums (saveTracked), when any.
    const saved = await loadTracked(conn, this.opts.flow);
    const mine = [...this.byOid].filter(([id, e]) => e.root === rootKey && saved.has(id));
    if (mine.length > 0) {
      const [sampleId] = mine.find(([, e]) => e.key === rootKey) ?? mine[0]!;
      const last = saved.get(sampleId)!.schema;
      const fixed: TableSchema = { ...this.roots.get(rootKey)!, columns: last.columns, primaryKey: last.primaryKey };
      this.roots.set(rootKey, fixed);
      for (const [id, e] of this.byOid) {
        if (e.root !== rootKey) continue;
        const schema = e.key === rootKey ? fixed : leafSchema(fixed, e.t.schema.source, e.t.schema.target);
        const t = saved.get(id);
        e.t = t ? { ...t, schema } : trackTable(schema, await readCatalogColumns(this.src, id));
      }
      return;
    }
    const root = this.roots.get(rootKey)!;
    const oid = await oidOf(conn, root.target);
    if (oid === undefined) return;
    // Renamed columns (config tables.<t>.renameColumns) are compared under their source names.
    const back = new Map(Object.entries(root.controls?.rename ?? {}).map(([from, to]) => [to, from]));
    const onTarget = (await readCatalogColumns(conn, oid))
      .filter((c) => !c.generated)
      .map((c) => (back.has(c.name) ? { ...c, name: back.get(c.name)! } : c));
    const streamed = root.columns.filter((c) => !c.generated);
    const same = onTarget.length === streamed.length && onTarget.every((c) => streamed.some((x) => x.name === c.name));
    if (same) return;
    const byName = new Map(root.columns.map((c) => [c.name, c]));
    const columns = [
      ...onTarget.map((c) => {
        const { attnum: _a, typeOid: _o, typeMod: _m, ...col } = c;
        return byName.get(c.name) ?? col;
      }),
      ...root.columns.filter((c) => c.generated),
    ];
    const fixed: TableSchema = { ...root, columns };
    this.roots.set(rootKey, fixed);
    for (const [id, e] of this.byOid) {
      if (e.root !== rootKey) continue;
      const schema = e.key === rootKey ? fixed : leafSchema(fixed, e.t.schema.source, e.t.schema.target);
      e.t = trackTable(schema, await readCatalogColumns(this.src, id));
    }
  }

  /** Record the tracked columns of a root's relations in the open batch: they commit with the DDL they describe. */
  private async saveTracked(conn: pg.ClientBase, rootKey: string): Promise<void> {
    await conn.query(TRACKED_DDL);
    for (const [id, e] of this.byOid) {
      if (e.root !== rootKey) continue;
      await conn.query(
        `INSERT INTO _ferry.cdc_tracked (flow, relid, tracked) VALUES ($1, $2, $3::jsonb)
         ON CONFLICT (flow, relid) DO UPDATE SET tracked = EXCLUDED.tracked`,
        [this.opts.flow, id, JSON.stringify(e.t)],
      );
    }
  }

  private learned(pb: NonNullable<ReturnType<typeof pgBatch>>, tables: TableSchema[]): HookResult | void {
    if (tables.length === 0) return;
    pb.learn(tables);
    return { tables };
  }

  async onMessage(message: StreamMessage, batch: ApplyBatch): Promise<HookResult | void> {
    await this.live();
    const m = decodeMarker(message.prefix, message.content);
    if (!m) return;
    const pb = pgBatch(batch);
    if (!pb) throw new Error('the PostgreSQL stream hooks need a PostgreSQL target');
    if (m.kind === 'table-added') return this.addTable(pb, m.table);
    const root = this.roots.get(m.root);
    if (!root || this.paused.has(m.root)) return;
    if (m.kind === 'detached') {
      const known = [...this.byOid.entries()].find(([, e]) => e.key === tableKey(m.leaf) && e.root === m.root);
      const target = known?.[1].t.schema.target ?? partitionTarget(m.leaf, root, this.opts.selection);
      if (known) this.byOid.delete(known[0]);
      if (await detachTargetPartition(pb.connection, target)) {
        this.opts.warn(`${tableKey(m.leaf)} is no longer a partition of ${m.root} on the source: ${tableKey(target)} was detached on the target too`);
      }
      return;
    }
    // attached (or created): make the target partition, then resync its rows.
    const oid = await oidOf(this.src, m.leaf);
    if (oid === undefined) return; // dropped again since: a later `detached` marker follows
    const rel = await readRelation(this.src, oid);
    if (!rel || tableKey(rel.root) !== m.root) return;
    const target = await ensureTargetPartition(pb.connection, rel, root, this.opts.selection);
    const schema = leafSchema(root, m.leaf, target);
    if (!this.byOid.has(String(oid))) {
      this.byOid.set(String(oid), { key: tableKey(m.leaf), root: m.root, t: trackTable(schema, await readCatalogColumns(this.src, oid)) });
    }
    if (root.primaryKey.length === 0) {
      this.opts.warn(`${tableKey(m.leaf)} joined ${m.root}, which has no primary key: rows it held before it joined are not copied (a keyless resync could duplicate rows)`);
    } else {
      const rows = await resyncRows(this.src, pb.connection, m.leaf, target, schema);
      this.opts.warn(`${tableKey(m.leaf)} joined ${m.root} on the source: ${tableKey(target)} resynced on the target (${rows} rows)`);
    }
    return this.learned(pb, [schema]);
  }

  private async addTable(pb: NonNullable<ReturnType<typeof pgBatch>>, table: TableName): Promise<HookResult | void> {
    const key = tableKey(table);
    // Known already: either the marker is replayed after a crash (the checkpoint is before it, so its copy may not
    // have committed) or the table was in the flow anyway. Creating and resyncing again is idempotent.
    if (/[*?]/.test(key) || table.schema.includes('.')) {
      this.opts.warn(`table ${key} was created on the source, but its name cannot be written as an include pattern: not added; restart the flow to take it on`);
      return;
    }
    const target = renameTable(table, this.opts.selection.rename);
    const rename = tableKey(target) === key ? {} : { [key]: tableKey(target) };
    let schema: TableSchema | undefined;
    try {
      [schema] = await describeTables(this.src, { include: [key], exclude: [], rename });
    } catch {
      return; // dropped again since it was announced
    }
    if (!schema) return;
    this.roots.set(key, schema);
    if (schema.primaryKey.length === 0) {
      return this.pauseResult(key, `${key}: created on the source while streaming, without a primary key; Ferry cannot copy it and replay its changes without duplicating rows, so it is not streamed. Add a primary key to it on the source and restart the flow (\`ferry reset\`, then \`ferry run\`), or exclude it.`);
    }
    const c = pb.connection;
    await withEmptySearchPath(c, () => applyCreate(c, planOf([schema])));
    const rows = await resyncRows(this.src, c, schema.source, schema.target, schema);
    const { warnings } = await finalizeTables(c, [schema], []);
    for (const w of warnings) this.opts.warn(w);
    const oid = await oidOf(this.src, table);
    if (oid !== undefined) this.byOid.set(String(oid), { key, root: key, t: trackTable(schema, await readCatalogColumns(this.src, oid)) });
    const extra = parsePgTableExtra(schema.extra, key);
    if (extra.partitioning) {
      this.leaves.set(key, extra.partitioning.partitions.filter((p) => !p.partitionBy).map((p) => p.source));
      this.remember(this.leaves);
    }
    const unlogged = oid !== undefined && (await readRelation(this.src, oid))?.unlogged;
    this.opts.warn(
      `table ${key} was created on the source and matches the flow's selection: created on the target as ${tableKey(schema.target)}, ${rows} rows copied, ` +
        (unlogged ? 'but it is UNLOGGED, so its later changes are not replicated (make it logged and restart the flow to stream it)' : 'streaming'),
    );
    this.opts.onTables?.([schema]);
    const learned: TableSchema[] = [schema];
    return this.learned(pb, learned);
  }

  /** Tables paused by a change Ferry cannot replay, with the reason (for status). */
  pausedTables(): { table: string; reason: string }[] {
    return [...this.paused].map(([table, reason]) => ({ table, reason }));
  }
}

const TRACKED_DDL = `CREATE TABLE IF NOT EXISTS _ferry.cdc_tracked (flow text, relid text, tracked jsonb NOT NULL, PRIMARY KEY (flow, relid))`;

/** Tracked relations of a flow as the target last committed them (source OID -> TrackedTable). */
async function loadTracked(conn: pg.ClientBase, flow: string): Promise<Map<string, TrackedTable>> {
  const { rows } = await conn.query<{ e: string | null }>(`SELECT to_regclass('_ferry.cdc_tracked')::text AS e`);
  if (!rows[0]?.e) return new Map();
  const r = await conn.query<{ relid: string; tracked: string }>(`SELECT relid, tracked::text AS tracked FROM _ferry.cdc_tracked WHERE flow = $1`, [flow]);
  return new Map(r.rows.map((x) => [x.relid, JSON.parse(x.tracked) as TrackedTable]));
}

/** The leaves the flow recorded at plan time (partitions that are not themselves partitioned). */
function recordedLeaves(tables: TableSchema[]): Map<string, TableName[]> {
  const out = new Map<string, TableName[]>();
  for (const t of tables) {
    const p = parsePgTableExtra(t.extra, tableKey(t.source)).partitioning;
    if (p) out.set(tableKey(t.source), p.partitions.filter((x) => !x.partitionBy).map((x) => x.source));
  }
  return out;
}

function parseKey(key: string): TableName {
  const dot = key.indexOf('.');
  return { schema: key.slice(0, dot), name: key.slice(dot + 1) };
}

/** Attnums and types of a sibling relation, carried through the renames another relation's message revealed. */
function remap(t: TrackedTable, steps: ColumnStep[]): TrackedTable {
  const attnums = { ...t.attnums };
  const types = { ...t.types };
  for (const s of steps) {
    if (s.op === 'rename') {
      if (attnums[s.from] !== undefined) attnums[s.to] = attnums[s.from]!;
      if (types[s.from] !== undefined) types[s.to] = types[s.from]!;
      delete attnums[s.from];
      delete types[s.from];
    } else if (s.op === 'drop') {
      delete attnums[s.column];
      delete types[s.column];
    }
  }
  return { ...t, attnums, types };
}

function describeSteps(steps: ColumnStep[]): string {
  return steps
    .map((s) => (s.op === 'add' ? `ADD COLUMN ${s.column.name} ${s.column.type}` : s.op === 'drop' ? `DROP COLUMN ${s.column}` : `RENAME COLUMN ${s.from} TO ${s.to}`))
    .join(', ');
}
