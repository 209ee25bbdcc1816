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
 *
 * FILES: this one holds the hooks for Relation messages and partition markers; stream-tables.ts the catalog poll and
 * the hook that adds a new table; stream-tracked.ts the tracked columns and their record on the target.
 */
import type pg from 'pg';
import type { EndpointConfig } from '../../../config/schema.js';
import { evolveColumns, trackTable } from '../../../core/cdc/evolve-columns.js';
import type { HookResult, RelationInfo, StreamHooks, StreamMessage } from '../../../core/cdc/evolve-contract.js';
import { decodeMarker, leafSchema, type PartsMarker } from '../../../core/cdc/evolve-tables.js';
import { errorMessage } from '../../../core/errors.js';
import { tableKey, type TableName, type TableSchema } from '../../../core/model.js';
import type { ApplyBatch } from '../../../core/ports/change-target.js';
import type { Selection } from '../../../core/ports/source.js';
import { connect, pgEndpoint } from '../connect.js';
import { pgBatch } from './change-target.js';
import { detachTargetPartition, ensureTargetPartition, partitionTarget, resyncRows } from './partitions.js';
import { applyColumnSteps, oidOf, pendingSteps, readCatalogColumns, readRelation, targetColumns } from './schema-evolution.js';
import { addTable, pollCatalog, type DiscoveryState } from './stream-tables.js';
import { describeSteps, parseKey, recordedLeaves, reconcileRoot, remap, saveTracked, type Tracked } from './stream-tracked.js';

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

/** The hooks' state is read by the functions of stream-tracked.ts and stream-tables.ts, hence not private. */
export class PgStreamParts implements DiscoveryState {
  readonly hooks: StreamHooks;
  private source: pg.Client | undefined;
  /** The poller's own connection: its marker transactions must not interleave with the hooks' catalog reads. */
  pollConn: pg.Client | undefined;
  readonly roots = new Map<string, TableSchema>();
  readonly byOid = new Map<string, Tracked>();
  private readonly paused = new Map<string, string>();
  /** Leaves per partitioned root as last seen by the poller (starts from what the flow recorded). */
  leaves = new Map<string, TableName[]>();
  /** Roots whose columns were checked against the target table this session (see reconcile). */
  readonly reconciled = new Set<string>();
  /** Every leaf ever seen under a root (never forgotten: a message may name a leaf detached since). */
  private readonly leafRoot = new Map<string, string>();
  /** Tables announced by a marker, so one poll does not announce them again. */
  readonly announced = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private polling: Promise<void> = Promise.resolve();

  constructor(readonly opts: PgStreamPartsOptions) {
    for (const t of opts.tables) this.roots.set(tableKey(t.source), t);
    this.hooks = {
      onRelation: (relation, batch) => this.onRelation(relation, batch),
      onMessage: (message, batch) => this.onMessage(message, batch),
    };
  }

  get src(): pg.Client {
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
  async live(): Promise<void> {
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
      // The plan's attnums, when this is still the relation the plan described (a table dropped and created again
      // under the same name has another OID, and its attnums mean other columns).
      const planned = (t.extra as { attnums?: { relid: number; byName: Record<string, number> } } | null)?.attnums;
      const known = planned && String(planned.relid) === String(oid) ? planned.byName : undefined;
      this.byOid.set(String(oid), { key, root: key, t: trackTable(t, await readCatalogColumns(this.src, oid), known) });
    }
    this.leaves = recordedLeaves([...this.roots.values()]);
    this.remember(this.leaves);
  }

  remember(leaves: ReadonlyMap<string, TableName[]>): void {
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
  poll(): Promise<PartsMarker[]> {
    return pollCatalog(this);
  }

  // ---- hooks: run in the apply lane, in stream order, inside the open target batch ----

  pauseResult(root: string, reason: string): HookResult {
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
    await reconcileRoot(this, pb.connection, entry.root);
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
    await saveTracked(this, pb.connection, entry.root);
    this.opts.onTables?.([newRoot]);
    return this.learned(pb, [...added.filter((a) => !changed.some((c) => tableKey(c.source) === tableKey(a.source))), ...changed]);
  }

  learned(pb: NonNullable<ReturnType<typeof pgBatch>>, tables: TableSchema[]): HookResult | void {
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
    if (m.kind === 'table-added') return addTable(this, pb, m.table);
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

  /** Tables paused by a change Ferry cannot replay, with the reason (for status). */
  pausedTables(): { table: string; reason: string }[] {
    return [...this.paused].map(([table, reason]) => ({ table, reason }));
  }
}
