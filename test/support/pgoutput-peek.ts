/**
 * A small pgoutput (protocol 1) decoder over SQL (pg_logical_slot_get_binary_changes), and a driver that feeds a
 * slot's messages to stream hooks and an apply batch exactly as the streamer's contract says (NOTES.md: hooks in
 * stream order, inside the open batch, before any later change). For testing hooks against real WAL before the
 * streamer that calls them exists; the production decoder is src/adapters/postgres/cdc/pgoutput-*.
 */
import pg from 'pg';
import { rawTypes } from '../../src/adapters/postgres/connect.js';
import type { RelationInfo, StreamHooks } from '../../src/core/cdc/evolve-contract.js';
import { tableKey, type TableSchema } from '../../src/core/model.js';
import type { Change, RowImage } from '../../src/core/ports/change-source.js';
import type { ChangeTarget } from '../../src/core/ports/change-target.js';

type Msg =
  | { tag: 'R'; relation: RelationInfo }
  | { tag: 'I' | 'U' | 'D' | 'T' | 'M' | 'B' | 'C'; rel?: string; row?: RowImage; old?: RowImage | null; rels?: string[]; prefix?: string; content?: string; lsn: string };

class Reader {
  at = 0;
  constructor(readonly b: Buffer) {}
  u8() { return this.b.readUInt8(this.at++); }
  i16() { const v = this.b.readInt16BE(this.at); this.at += 2; return v; }
  i32() { const v = this.b.readInt32BE(this.at); this.at += 4; return v; }
  u32() { const v = this.b.readUInt32BE(this.at); this.at += 4; return v; }
  skip(n: number) { this.at += n; }
  str() { const end = this.b.indexOf(0, this.at); const s = this.b.toString('utf8', this.at, end); this.at = end + 1; return s; }
  bytes(n: number) { const s = this.b.subarray(this.at, this.at + n); this.at += n; return s; }
}

function tuple(r: Reader, names: string[]): RowImage {
  const n = r.i16();
  const row: RowImage = {};
  for (let i = 0; i < n; i++) {
    const kind = String.fromCharCode(r.u8());
    if (kind === 'n') row[names[i]!] = null;
    else if (kind === 't') row[names[i]!] = r.bytes(r.i32()).toString('utf8');
    // 'u': unchanged TOAST, absent
  }
  return row;
}

export async function readSlot(url: string, slot: string, publication: string, peek = false): Promise<Msg[]> {
  const c = new pg.Client({ connectionString: url, types: rawTypes });
  await c.connect();
  try {
    const { rows } = await c.query<{ lsn: string; data: string }>(
      `SELECT lsn::text AS lsn, data FROM pg_logical_slot_${peek ? 'peek' : 'get'}_binary_changes($1, NULL, NULL, 'proto_version', '1', 'publication_names', $2, 'messages', 'true')`,
      [slot, publication],
    );
    const names = new Map<string, { table: string; cols: string[] }>();
    const out: Msg[] = [];
    for (const { lsn, data } of rows) {
      const r = new Reader(Buffer.from(data.slice(2), 'hex'));
      const tag = String.fromCharCode(r.u8()) as Msg['tag'];
      if (tag === 'R') {
        const id = String(r.u32());
        const table = `${r.str()}.${r.str()}`;
        const replicaIdentity = String.fromCharCode(r.u8());
        const n = r.i16();
        const columns = [];
        for (let i = 0; i < n; i++) {
          const flags = r.u8();
          const name = r.str();
          const typeOid = r.u32();
          const typeMod = r.i32();
          columns.push({ name, typeOid, typeMod, key: (flags & 1) === 1 });
        }
        names.set(id, { table, cols: columns.map((c) => c.name) });
        out.push({ tag: 'R', relation: { id, table, columns, replicaIdentity } });
      } else if (tag === 'I' || tag === 'U' || tag === 'D') {
        const rel = names.get(String(r.u32()))!;
        let old: RowImage | null = null;
        let row: RowImage | undefined;
        for (;;) {
          if (r.at >= r.b.length) break;
          const sub = String.fromCharCode(r.u8());
          if (sub === 'K' || sub === 'O') old = tuple(r, rel.cols);
          else if (sub === 'N') row = tuple(r, rel.cols);
        }
        out.push({ tag, rel: rel.table, row, old, lsn });
      } else if (tag === 'T') {
        const n = r.i32();
        r.u8();
        const rels = [];
        for (let i = 0; i < n; i++) rels.push(names.get(String(r.u32()))?.table ?? '?');
        out.push({ tag, rels, lsn });
      } else if (tag === 'M') {
        r.u8();
        r.skip(8);
        const prefix = r.str();
        const content = r.bytes(r.i32()).toString('utf8');
        out.push({ tag, prefix, content, lsn });
      } else {
        out.push({ tag, lsn });
      }
    }
    return out;
  } finally {
    await c.end();
  }
}

/**
 * Apply everything the slot has, in one target batch, calling the hooks where the streamer will. Returns the
 * tables paused by a hook (their later changes were dropped) and the changes applied per table.
 */
export async function drive(opts: {
  url: string;
  slot: string;
  publication: string;
  flow: string;
  hooks: StreamHooks;
  target: ChangeTarget;
  tables: TableSchema[];
  /** Read without consuming and roll the batch back at the end: a crash before the target committed. */
  crash?: boolean;
}): Promise<{ paused: Map<string, string>; applied: Map<string, number> }> {
  const msgs = await readSlot(opts.url, opts.slot, opts.publication, opts.crash);
  const tables = new Map(opts.tables.map((t) => [tableKey(t.source), t]));
  const paused = new Map<string, string>();
  const applied = new Map<string, number>();
  const batch = await opts.target.begin(opts.flow, [...tables.values()]);
  let last = '0/0';
  try {
    for (const m of msgs) {
      let result;
      if (m.tag === 'R') result = await opts.hooks.onRelation?.(m.relation, batch);
      else if (m.tag === 'M') result = await opts.hooks.onMessage?.({ prefix: m.prefix!, content: m.content!, position: m.lsn }, batch);
      else if (m.tag === 'C') last = m.lsn;
      else if (m.tag !== 'B') {
        const change: Change =
          m.tag === 'I' ? { op: 'insert', table: m.rel!, row: m.row! }
          : m.tag === 'U' ? { op: 'update', table: m.rel!, row: m.row!, old: m.old ?? null }
          : m.tag === 'D' ? { op: 'delete', table: m.rel!, old: m.old! }
          : { op: 'truncate', tables: m.rels!.filter((t) => !paused.has(t)), cascade: false, restartIdentity: false };
        const touched = change.op === 'truncate' ? change.tables : [change.table];
        if (touched.some((t) => paused.has(t)) || touched.length === 0) continue;
        for (const t of touched) if (!tables.has(t)) throw new Error(`change for ${t}, which no hook introduced`);
        const missing = await batch.apply([change]);
        if (missing.length) throw new Error(`missing rows on the target: ${JSON.stringify(missing)}`);
        for (const t of touched) applied.set(t, (applied.get(t) ?? 0) + 1);
      }
      if (result) {
        for (const t of result.tables ?? []) tables.set(tableKey(t.source), t);
        for (const p of result.pause ?? []) paused.set(p.table, p.reason);
        if (result.changes?.length) await batch.apply(result.changes);
      }
    }
    if (opts.crash) await batch.rollback();
    else await batch.commit(last);
  } catch (err) {
    await batch.rollback();
    throw err;
  }
  return { paused, applied };
}
