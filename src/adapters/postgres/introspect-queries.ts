/**
 * Catalog queries behind `describeTables`. Each returns one row with one text column `j` holding a JSON array: the
 * connection may return every value as raw text (see connect.ts), and PostgreSQL's array text format is not
 * something to parse by hand. They run with `search_path = ''`, so every deparsed expression, type and table name
 * outside pg_catalog comes back schema-qualified and means the same thing on the target.
 *
 * `$1` is an `oid[]` of the selected tables unless said otherwise.
 */

const qualName = (nsp: string, rel: string) => `quote_ident(${nsp}) || '.' || quote_ident(${rel})`;

/** Ordinary and partitioned tables that are not partitions and not part of an extension (those come with it). */
export const CANDIDATES = `
SELECT coalesce(json_agg(json_build_object('schema', n.nspname, 'name', c.relname)), '[]')::text AS j
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND n.nspname NOT LIKE 'pg\\_%' AND n.nspname NOT IN ('information_schema', '_ferry')
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                  AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e')`;

/** `$1`: jsonb array of {schema, name}. */
export const TABLES = `
SELECT coalesce(json_agg(json_build_object(
  'schema', n.nspname, 'name', c.relname, 'oid', c.oid::int8, 'kind', c.relkind::text, 'replident', c.relreplident::text,
  'replidentIndex', (SELECT i.relname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
                     WHERE x.indrelid = c.oid AND x.indisreplident),
  'partitionBy', CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END)), '[]')::text AS j
FROM jsonb_array_elements($1::jsonb) w
JOIN pg_namespace n ON n.nspname = w->>'schema'
JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = w->>'name' AND c.relkind IN ('r', 'p')`;

export const COLUMNS = `
SELECT coalesce(json_agg(json_build_object(
  'rel', a.attrelid::int8, 'name', a.attname, 'attnum', a.attnum, 'type', format_type(a.atttypid, a.atttypmod), 'typeOid', a.atttypid::int8,
  'notNull', a.attnotnull, 'identity', a.attidentity::text, 'generatedKind', a.attgenerated::text,
  'expr', pg_get_expr(d.adbin, d.adrelid),
  'collation', CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation
                    THEN ${qualName('cn.nspname', 'co.collname')} END)
  ORDER BY a.attrelid, a.attnum), '[]')::text AS j
FROM pg_attribute a
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
LEFT JOIN pg_collation co ON co.oid = a.attcollation
LEFT JOIN pg_namespace cn ON cn.oid = co.collnamespace
WHERE a.attrelid = ANY($1::oid[]) AND a.attnum > 0 AND NOT a.attisdropped`;

/** conkey is in key order; unnest WITH ORDINALITY keeps it. */
export const PRIMARY_KEYS = `
SELECT coalesce(json_agg(json_build_object('rel', con.conrelid::int8, 'name', con.conname,
  'columns', (SELECT json_agg(a.attname ORDER BY k.ord)
              FROM unnest(con.conkey) WITH ORDINALITY k(attnum, ord)
              JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum))), '[]')::text AS j
FROM pg_constraint con WHERE con.conrelid = ANY($1::oid[]) AND con.contype = 'p'`;

/**
 * Indexes not backing a PK, unique or exclusion constraint (those are recreated with their constraint). Invalid
 * indexes (a failed CREATE INDEX CONCURRENTLY) are skipped; on a partitioned table an index is invalid until every
 * partition has one, which is still worth recreating.
 */
export const INDEXES = `
SELECT coalesce(json_agg(json_build_object('rel', x.indrelid::int8, 'name', i.relname, 'unique', x.indisunique,
  'definition', pg_get_indexdef(x.indexrelid), 'table', ${qualName('n.nspname', 'c.relname')})
  ORDER BY x.indrelid, i.relname), '[]')::text AS j
FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_class c ON c.oid = x.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE x.indrelid = ANY($1::oid[]) AND (x.indisvalid OR c.relkind = 'p')
  AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = x.indexrelid AND k.conrelid = x.indrelid
                  AND k.contype IN ('p', 'u', 'x'))`;

/**
 * Unique, check, exclusion and foreign-key constraints declared on the table itself (conparentid = 0 drops the
 * copies PostgreSQL makes for each partition of a referenced partitioned table; conislocal drops the checks an
 * INHERITS child only has from its parent, which adding the parent's recreates).
 */
export const CONSTRAINTS = `
SELECT coalesce(json_agg(json_build_object('rel', con.conrelid::int8, 'name', con.conname, 'type', con.contype::text,
  'definition', pg_get_constraintdef(con.oid), 'refSchema', rn.nspname, 'refName', rc.relname,
  'refText', CASE WHEN rc.oid IS NOT NULL THEN ${qualName('rn.nspname', 'rc.relname')} END)
  ORDER BY con.conrelid, con.conname), '[]')::text AS j
FROM pg_constraint con
LEFT JOIN pg_class rc ON rc.oid = con.confrelid AND con.contype = 'f'
LEFT JOIN pg_namespace rn ON rn.oid = rc.relnamespace
WHERE con.conrelid = ANY($1::oid[]) AND con.contype IN ('u', 'c', 'x', 'f') AND con.conparentid = 0 AND con.conislocal`;

/**
 * Sequences owned by a column (serial: deptype 'a'; identity: 'i'), then sequences a column default uses without
 * owning them (a sequence shared between tables), which the target needs too or the default would not compile.
 */
export const SEQUENCES = `
SELECT coalesce(json_agg(x ORDER BY x.rel, x."column"), '[]')::text AS j FROM (
  SELECT d.refobjid::int8 AS rel, a.attname AS "column", CASE d.deptype WHEN 'i' THEN 'identity' ELSE 'serial' END AS kind,
         sn.nspname AS schema, s.relname AS name, s.oid::regclass::text AS regclass,
         format_type(q.seqtypid, NULL) AS "dataType", q.seqincrement::text AS increment, q.seqmin::text AS min,
         q.seqmax::text AS max, q.seqstart::text AS start, q.seqcache::text AS cache, q.seqcycle AS cycle
  FROM pg_depend d
  JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
  JOIN pg_namespace sn ON sn.oid = s.relnamespace
  JOIN pg_sequence q ON q.seqrelid = s.oid
  JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
  WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
    AND d.refobjid = ANY($1::oid[]) AND d.refobjsubid > 0 AND d.deptype IN ('a', 'i')
  UNION ALL
  SELECT ad.adrelid::int8, a.attname, 'shared',
         sn.nspname, s.relname, s.oid::regclass::text,
         format_type(q.seqtypid, NULL), q.seqincrement::text, q.seqmin::text,
         q.seqmax::text, q.seqstart::text, q.seqcache::text, q.seqcycle
  FROM pg_attrdef ad
  JOIN pg_attribute a ON a.attrelid = ad.adrelid AND a.attnum = ad.adnum
  JOIN pg_depend d ON d.classid = 'pg_attrdef'::regclass AND d.objid = ad.oid AND d.refclassid = 'pg_class'::regclass
  JOIN pg_class s ON s.oid = d.refobjid AND s.relkind = 'S'
  JOIN pg_namespace sn ON sn.oid = s.relnamespace
  JOIN pg_sequence q ON q.seqrelid = s.oid
  WHERE ad.adrelid = ANY($1::oid[])
    AND NOT EXISTS (SELECT 1 FROM pg_depend o WHERE o.classid = 'pg_class'::regclass AND o.objid = s.oid
                    AND o.refobjid = ad.adrelid AND o.refobjsubid = ad.adnum AND o.deptype IN ('a', 'i'))
) x`;

/** Every partition below each partitioned table, shallow levels first so parents are created before children. */
export const PARTITIONS = `
SELECT coalesce(json_agg(json_build_object('root', r.root::int8, 'schema', n.nspname, 'name', c.relname,
  'parentSchema', pn.nspname, 'parentName', p.relname, 'bound', pg_get_expr(c.relpartbound, c.oid),
  'partitionBy', CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END)
  ORDER BY r.root, t.level, n.nspname, c.relname), '[]')::text AS j
FROM unnest($1::oid[]) r(root)
CROSS JOIN LATERAL pg_partition_tree(r.root) t
JOIN pg_class c ON c.oid = t.relid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_class p ON p.oid = t.parentrelid
JOIN pg_namespace pn ON pn.oid = p.relnamespace
WHERE t.level > 0`;

/** The relations that hold a table's rows: itself, or the leaf partitions of a partitioned table. */
export const STORAGE = `
SELECT coalesce(json_agg(json_build_object('root', r.root::int8, 'schema', n.nspname, 'name', l.relname,
  'kind', l.relkind::text, 'reltuples', l.reltuples, 'relpages', l.relpages, 'bytes', pg_table_size(l.oid)::text,
  'pages', (pg_relation_size(l.oid) / current_setting('block_size')::int)::text)), '[]')::text AS j
FROM unnest($1::oid[]) r(root)
CROSS JOIN LATERAL (
  SELECT r.root AS oid WHERE (SELECT relkind FROM pg_class WHERE oid = r.root) <> 'p'
  UNION ALL
  SELECT relid FROM pg_partition_tree(r.root) WHERE isleaf AND (SELECT relkind FROM pg_class WHERE oid = r.root) = 'p'
) leaf
JOIN pg_class l ON l.oid = leaf.oid
JOIN pg_namespace n ON n.oid = l.relnamespace`;

/** User-defined types by oid, with what each kind needs to be recreated. Arrays report their element in `elem`. */
export const TYPES = `
SELECT coalesce(json_agg(json_build_object(
  'oid', t.oid::int8, 'schema', n.nspname, 'name', t.typname, 'typtype', t.typtype::text,
  'elem', CASE WHEN t.typelem <> 0 AND EXISTS (SELECT 1 FROM pg_type e WHERE e.oid = t.typelem AND e.typarray = t.oid)
               THEN t.typelem::int8 END,
  'extension', (SELECT e.extname FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
                WHERE d.classid = 'pg_type'::regclass AND d.objid = t.oid
                  AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e' LIMIT 1),
  'labels', CASE WHEN t.typtype = 'e' THEN
              (SELECT json_agg(enumlabel ORDER BY enumsortorder) FROM pg_enum WHERE enumtypid = t.oid) END,
  'baseOid', CASE WHEN t.typtype = 'd' THEN t.typbasetype::int8 END,
  'baseType', CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod) END,
  'notNull', t.typnotnull, 'default', pg_get_expr(t.typdefaultbin, 0),
  'collation', CASE WHEN t.typtype = 'd' AND t.typcollation <> 0 AND t.typcollation <> bt.typcollation
                    THEN ${qualName('cn.nspname', 'co.collname')} END,
  'checks', CASE WHEN t.typtype = 'd' THEN
              (SELECT json_agg(json_build_object('name', k.conname, 'definition', pg_get_constraintdef(k.oid))
                               ORDER BY k.conname)
               FROM pg_constraint k WHERE k.contypid = t.oid AND k.contype = 'c') END,
  'relkind', (SELECT relkind::text FROM pg_class WHERE oid = t.typrelid),
  'attributes', CASE WHEN t.typtype = 'c' THEN
              (SELECT json_agg(json_build_object('name', a.attname, 'type', format_type(a.atttypid, a.atttypmod),
                        'typeOid', a.atttypid::int8,
                        'collation', CASE WHEN a.attcollation <> 0 AND a.attcollation <> at.typcollation
                                          THEN (SELECT ${qualName('acn.nspname', 'ac.collname')} FROM pg_collation ac
                                                JOIN pg_namespace acn ON acn.oid = ac.collnamespace
                                                WHERE ac.oid = a.attcollation) END) ORDER BY a.attnum)
               FROM pg_attribute a JOIN pg_type at ON at.oid = a.atttypid
               WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped) END)), '[]')::text AS j
FROM pg_type t
JOIN pg_namespace n ON n.oid = t.typnamespace
LEFT JOIN pg_type bt ON bt.oid = t.typbasetype
LEFT JOIN pg_collation co ON co.oid = t.typcollation
LEFT JOIN pg_namespace cn ON cn.oid = co.collnamespace
WHERE t.oid = ANY($1::oid[])`;
