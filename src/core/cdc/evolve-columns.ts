/**
 * What a Relation message means for a table Ferry streams: nothing, column steps to replay on the target, or a
 * pause. Pure: the adapter reads the source catalog (by OID) and runs the steps; this only decides.
 *
 * Columns are identified by their attribute number, which PostgreSQL never reuses and keeps through a rename:
 * - a Relation column whose name Ferry knows is the same column;
 * - a new name whose catalog attnum belongs to a known column that vanished from the message is a rename;
 * - any other new name is an added column (type, default, nullability from the catalog);
 * - a known name that vanished and was not renamed is a dropped column (dropped on the target too: the target
 *   mirrors the source, and a kept NOT NULL column would make every later insert fail);
 * - a column whose type OID or modifier changed is a type change, which Ferry does not replay (a rewrite whose
 *   USING expression the WAL does not carry): the table pauses, the others stream on.
 * The catalog is read when the message is applied, which can be later than the message: a column added and then
 * renamed or dropped again before Ferry caught up cannot be described, and pauses the table rather than guess.
 */
import type { ColumnSchema, TableSchema } from '../model.js';
import { tableKey } from '../model.js';
import type { RelationInfo } from './evolve-contract.js';

/** A source column as the catalog describes it now, found through the relation's OID. */
export interface CatalogColumn extends ColumnSchema {
  attnum: number;
  typeOid: number;
  typeMod: number;
}

/** What Ferry knows of a streamed table beyond its schema: how to recognise its columns in later messages. */
export interface TrackedTable {
  schema: TableSchema;
  /** Attribute number of each streamed column. */
  attnums: Record<string, number>;
  /** Type of each streamed column as last seen; `typeOid: -1` marks a type that changed before tracking began. */
  types: Record<string, { typeOid: number; typeMod: number }>;
}

export type ColumnStep =
  | { op: 'add'; column: ColumnSchema }
  | { op: 'drop'; column: string }
  | { op: 'rename'; from: string; to: string };

export type Evolution =
  | { kind: 'same' }
  | { kind: 'apply'; steps: ColumnStep[]; table: TrackedTable }
  | { kind: 'pause'; reason: string };

/**
 * Start tracking a table from the catalog (at stream start): attnums by name, and types unless they drifted. `known`
 * gives attnums learned earlier (when the plan described the same relation): a column renamed since is then found by
 * its attnum, and the next evolution sees the rename.
 */
export function trackTable(schema: TableSchema, catalog: CatalogColumn[], known?: Record<string, number>): TrackedTable {
  const byName = new Map(catalog.map((c) => [c.name, c]));
  const byAttnum = new Map(catalog.map((c) => [c.attnum, c]));
  const attnums: Record<string, number> = {};
  const types: TrackedTable['types'] = {};
  for (const col of schema.columns) {
    let c = byName.get(col.name);
    if (!c && known?.[col.name] !== undefined) {
      // Only a column no other tracked name claims (a name taken by the new column stays with its own attnum).
      const other = byAttnum.get(known[col.name]!);
      if (other && !schema.columns.some((x) => x.name === other.name)) c = other;
    }
    if (!c) continue;
    attnums[col.name] = c.attnum;
    types[col.name] = c.type === col.type ? { typeOid: c.typeOid, typeMod: c.typeMod } : { typeOid: -1, typeMod: -1 };
  }
  return { schema, attnums, types };
}

const streamed = (s: TableSchema) => s.columns.filter((c) => !c.generated);

function pauseReason(table: string, change: string, forward: string): string {
  return `${table}: ${change}; Ferry does not replay this change, so ${table} is paused (its later changes are not applied) while the other tables keep streaming. ${forward}`;
}

const RESTART =
  'To resume it, stop the flow (`ferry stop`), apply the same change to the target table by hand and start the flow over for this table (`ferry reset`, then `ferry run`), or exclude the table.';

export function evolveColumns(tracked: TrackedTable, relation: RelationInfo, catalog: CatalogColumn[]): Evolution {
  const table = tableKey(tracked.schema.source);
  const known = streamed(tracked.schema).map((c) => c.name);
  const knownSet = new Set(known);
  const relNames = relation.columns.map((c) => c.name);
  const relSet = new Set(relNames);
  const catByName = new Map(catalog.map((c) => [c.name, c]));
  const catByAttnum = new Map(catalog.map((c) => [c.attnum, c]));

  const vanished = known.filter((n) => !relSet.has(n));
  const vanishedByAttnum = new Map(vanished.filter((n) => tracked.attnums[n] !== undefined).map((n) => [tracked.attnums[n]!, n]));
  const steps: ColumnStep[] = [];
  const renamedFrom = new Set<string>();
  /** Relation column name -> the known name it was (same for unchanged columns). */
  const was = new Map<string, string>();

  for (const name of relNames) {
    if (knownSet.has(name)) {
      was.set(name, name);
      continue;
    }
    const cat = catByName.get(name);
    if (!cat) {
      return {
        kind: 'pause',
        reason: pauseReason(table, `column ${name} appeared in the stream but is no longer in the source catalog (renamed or dropped again since)`, RESTART),
      };
    }
    const old = vanishedByAttnum.get(cat.attnum);
    if (old !== undefined) {
      steps.push({ op: 'rename', from: old, to: name });
      renamedFrom.add(old);
      was.set(name, old);
      continue;
    }
    const untracked = vanished.filter((n) => tracked.attnums[n] === undefined);
    if (untracked.length > 0) {
      // A known column whose attnum Ferry never learned (renamed before tracking began) may be this one.
      return {
        kind: 'pause',
        reason: pauseReason(table, `column ${name} appeared and ${untracked.join(', ')} disappeared, and Ferry cannot tell whether it is a rename`, RESTART),
      };
    }
    if (cat.identity || (cat.default !== undefined && /\bnextval\s*\(/i.test(cat.default))) {
      return {
        kind: 'pause',
        reason: pauseReason(
          table,
          `column ${name} was added with ${cat.identity ? `GENERATED ${cat.identity.toUpperCase()} AS IDENTITY` : `a sequence default (${cat.default})`}, whose values for the existing rows the stream does not carry`,
          RESTART,
        ),
      };
    }
    const { attnum: _a, typeOid: _o, typeMod: _m, ...column } = cat;
    steps.push({ op: 'add', column });
  }
  for (const name of vanished) if (!renamedFrom.has(name)) steps.push({ op: 'drop', column: name });

  // Type changes, on every column that is still there (renamed or not).
  for (const rc of relation.columns) {
    const old = was.get(rc.name);
    if (old === undefined) continue;
    const seen = tracked.types[old];
    if (seen && (seen.typeOid !== rc.typeOid || seen.typeMod !== rc.typeMod)) {
      const from = tracked.schema.columns.find((c) => c.name === old)?.type ?? 'its old type';
      const to = catByName.get(rc.name)?.type ?? `type oid ${rc.typeOid}`;
      return {
        kind: 'pause',
        reason: pauseReason(
          table,
          `column ${rc.name} changed type from ${from} to ${to}`,
          `To resume it, stop the flow (\`ferry stop\`), run the same ALTER TABLE … TYPE on the target, and start the flow over for this table (\`ferry reset\`, then \`ferry run\`), or exclude the table.`,
        ),
      };
    }
  }

  // The key Ferry applies by must still be the key the source sends.
  if (relation.replicaIdentity === 'd') {
    const renameOf = (n: string) => steps.find((s): s is Extract<ColumnStep, { op: 'rename' }> => s.op === 'rename' && s.from === n)?.to ?? n;
    const expected = tracked.schema.primaryKey.map(renameOf).sort();
    const sent = relation.columns.filter((c) => c.key).map((c) => c.name).sort();
    if (expected.join('\u0000') !== sent.join('\u0000')) {
      return {
        kind: 'pause',
        reason: pauseReason(
          table,
          `the primary key changed from (${expected.join(', ') || 'none'}) to (${sent.join(', ') || 'none'})`,
          RESTART,
        ),
      };
    }
  }

  if (steps.length === 0) {
    // Same columns: remember the types as sent (the first message after a restart fills them in).
    return { kind: 'same' };
  }
  return { kind: 'apply', steps, table: applySteps(tracked, steps, relation, catByAttnum, catByName) };
}

/** The tracked table after the steps: schema columns renamed, dropped, appended; attnums and types updated. */
function applySteps(
  tracked: TrackedTable,
  steps: ColumnStep[],
  relation: RelationInfo,
  _byAttnum: Map<number, CatalogColumn>,
  byName: Map<string, CatalogColumn>,
): TrackedTable {
  let columns = tracked.schema.columns.map((c) => ({ ...c }));
  let primaryKey = [...tracked.schema.primaryKey];
  const attnums = { ...tracked.attnums };
  const types = { ...tracked.types };
  for (const s of steps) {
    if (s.op === 'rename') {
      columns = columns.map((c) => (c.name === s.from ? { ...c, name: s.to } : c));
      primaryKey = primaryKey.map((k) => (k === s.from ? s.to : k));
      attnums[s.to] = attnums[s.from]!;
      types[s.to] = types[s.from]!;
      delete attnums[s.from];
      delete types[s.from];
    } else if (s.op === 'drop') {
      columns = columns.filter((c) => c.name !== s.column);
      delete attnums[s.column];
      delete types[s.column];
    } else {
      columns.push(s.column);
      const cat = byName.get(s.column.name)!;
      attnums[s.column.name] = cat.attnum;
    }
  }
  for (const rc of relation.columns) types[rc.name] = { typeOid: rc.typeOid, typeMod: rc.typeMod };
  return { schema: { ...tracked.schema, columns, primaryKey }, attnums, types };
}
