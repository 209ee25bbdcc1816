import { z } from 'zod';
import { splitQualifiedName } from '../core/selection.js';

/** A database endpoint: a URL, or fields. Values may use `${ENV}` (interpolated before validation). */
const endpoint = z
  .object({
    url: z.string().min(1).optional(),
    host: z.string().min(1).optional(),
    port: z.coerce.number().int().min(1).max(65535).optional(),
    user: z.string().min(1).optional(),
    password: z.string().optional(),
    database: z.string().min(1).optional(),
    ssl: z.union([z.boolean(), z.enum(['disable', 'require', 'verify-full'])]).optional(),
    /** PEM file of the CA(s) that signed the server's certificate, for `ssl: verify-full` (default: the system's). */
    sslRootCert: z.string().min(1).optional(),
    /** Target only: what to do when a target table already has rows. */
    onExistingRows: z.enum(['fail', 'truncate']).optional(),
  })
  .strict()
  .refine((e) => e.url !== undefined || e.host !== undefined, {
    message: 'give either `url` (postgres://user:pass@host:5432/db, or mongodb://user:pass@host:27017/db?replicaSet=rs0) or `host` with `database`, `user`, `password`',
  })
  // MongoDB (additive): everything is in the URL; the PostgreSQL-only fields would be silently ignored.
  .refine((e) => !isMongoEndpoint(e) || (e.host === undefined && e.port === undefined && e.user === undefined && e.password === undefined && e.database === undefined), {
    message: 'a mongodb:// endpoint takes everything from its `url` (hosts, user, password, database, `?replicaSet=`): leave out `host`, `port`, `user`, `password` and `database`',
  })
  .refine((e) => !isMongoEndpoint(e) || /^mongodb(\+srv)?:\/\/([^@/]*@)?[^/?@]+/i.test(e.url ?? ''), {
    message: 'expected mongodb://[user:pass@]host[:port][,host2…]/[database][?replicaSet=rs0] (or mongodb+srv://)',
  });

/** The endpoint names a MongoDB deployment (`mongodb://` or `mongodb+srv://` URL); otherwise it is PostgreSQL. */
export function isMongoEndpoint(e: { url?: string }): boolean {
  return e.url !== undefined && /^mongodb(\+srv)?:/i.test(e.url);
}

export type Engine = 'postgres' | 'mongodb';
export function engineOf(e: { url?: string }): Engine {
  return isMongoEndpoint(e) ? 'mongodb' : 'postgres';
}

const pattern = z
  .string()
  .refine((p) => { const parts = splitQualifiedName(p); return parts !== undefined && (parts[1].quoted || !parts[1].text.includes('.')); }, {
    message: 'expected `schema.table`, where either part may use * and ? wildcards; quote a part with a dot or a quote in it: `app."odd.name"`, `app."say ""hi"""`',
  });

/** Per-table controls (`tables` key `schema.table`, exact source names): what of the table is copied and streamed. */
const tableControls = z
  .object({
    /** Source columns left out of the snapshot, the stream and verify (never a primary key column). */
    excludeColumns: z.array(z.string().min(1)).default([]),
    /** Source column -> target column name. */
    renameColumns: z.record(z.string().min(1), z.string().min(1).max(63)).default({}),
    /** A row filter: an SQL boolean expression over the source table's columns (`region = 'eu'`). */
    where: z.string().min(1).optional(),
  })
  .strict();

const rate = z.coerce.number().positive().optional();

export const configSchema = z
  .object({
    /** Names the flow in the state store; defaults to a hash of source and target. */
    name: z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,64}$/, 'expected 1-64 letters, digits, `_` or `-`')
      .optional(),
    source: endpoint,
    target: endpoint,
    include: z.array(pattern).default(['*.*']),
    exclude: z.array(pattern).default([]),
    rename: z.record(pattern, pattern).default({}),
    /** Column and row controls per source table (`"public.orders": { excludeColumns, renameColumns, where }`). */
    tables: z.record(pattern, tableControls).default({}),
    /**
     * Throughput limits. The snapshot limits hold across all workers of `ferry run` (one shared token bucket); on
     * AWS each copy function gets limit / copy concurrency. The apply limit holds for the streamer.
     */
    limits: z
      .object({
        snapshotRowsPerSecond: rate,
        snapshotBytesPerSecond: rate,
        applyChangesPerSecond: rate,
      })
      .strict()
      .default({}),
    /**
     * Roles the carried objects name (owners, grants, policies) that the target lacks: `create` them (attributes and
     * memberships, never passwords), `skip` what names them (with a warning), or `require` them (fail before writing).
     */
    roles: z.enum(['create', 'skip', 'require']).default('create'),
    schema: z
      .object({
        /** Who owns the created objects: the source's owner (`keep`), or the target user who creates them. */
        owner: z.enum(['keep', 'target-user']).default('keep'),
      })
      .strict()
      .default({ owner: 'keep' }),
    /**
     * MongoDB source → PostgreSQL target (additive): collections (`db.coll`, source names) whose documents become
     * typed columns instead of the default `(_id text, doc jsonb)`: each column from a dotted path, converted to the
     * PostgreSQL type given (`text`, `bigint`, `numeric`, `boolean`, `timestamptz`, `bytea`, `uuid`, `jsonb`, …);
     * `keepDocument` also keeps the whole document in `doc`.
     */
    mongoToPg: z
      .record(
        z.string().regex(/^[^.]+\.[^*?]+$/, 'expected `database.collection`'),
        z
          .object({
            columns: z
              .array(
                z
                  .object({
                    column: z.string().min(1).refine((c) => c !== '_id' && c !== 'doc', { message: '`_id` and `doc` are Ferry\'s own columns' }),
                    path: z.string().min(1),
                    type: z.string().min(1),
                  })
                  .strict(),
              )
              .min(1),
            keepDocument: z.boolean().default(false),
          })
          .strict(),
      )
      .default({}),
    mode: z.enum(['snapshot', 'snapshot+cdc']).default('snapshot'),
    workers: z.coerce.number().int().min(1).max(256).optional(),
    rowsPerRange: z.coerce.number().int().min(1).default(250_000),
    batchRows: z.coerce.number().int().min(1).default(50_000),
    /** A job yields after this long and re-enqueues its cursor (a Lambda must stop before its timeout). */
    jobTimeBudgetSeconds: z.coerce.number().positive().default(600),
    maxAttempts: z.coerce.number().int().min(1).max(100).default(5),
    /** Streaming (mode snapshot+cdc). */
    cdc: z
      .object({
        /** Target transactions commit about this often (and at least at every source transaction boundary). */
        batchMs: z.coerce.number().int().min(10).max(60_000).default(500),
        /** A heartbeat message written to the source's WAL this often keeps an idle slot advancing. */
        heartbeatSeconds: z.coerce.number().positive().max(3600).default(5),
        /** Commit at the next source transaction boundary once this many changes wait (whatever batchMs says). */
        commitChanges: z.coerce.number().int().min(1).optional(),
        /**
         * `transaction`: one apply lane, whole source transactions in source order (every target state is one the
         * source had). `table`: `lanes` parallel lanes, tables routed by a hash: each table's state is one the source
         * had; a view across tables may mix moments (see docs/guarantees.md).
         */
        consistency: z.enum(['transaction', 'table']).default('transaction'),
        /** Parallel apply lanes with consistency `table` (default 4); each holds a target connection. */
        lanes: z.coerce.number().int().min(1).max(64).optional(),
        /** Large source transactions streamed while in progress (PostgreSQL 14+) applied at once, each on its own target connection. */
        maxStreamedTransactions: z.coerce.number().int().min(1).max(64).default(4),
      })
      .strict()
      .superRefine((c, ctx) => {
        if (c.lanes !== undefined && c.lanes > 1 && c.consistency !== 'table') {
          ctx.addIssue({
            code: 'custom',
            path: ['lanes'],
            message: 'several lanes need `consistency: table` (consistency `transaction` applies whole source transactions on one lane)',
          });
        }
      })
      .default({ batchMs: 500, heartbeatSeconds: 5, consistency: 'transaction', maxStreamedTransactions: 4 }),
    /** The AWS runtime (ignored by `ferry run`). */
    aws: z
      .object({
        /** How often the workflow checks the range jobs' progress. */
        pollSeconds: z.coerce.number().int().min(1).max(3600).default(30),
      })
      .strict()
      .default({ pollSeconds: 30 }),
    state: z
      .object({
        path: z.string().min(1).default('.ferry/state.db'),
      })
      .strict()
      .default({ path: '.ferry/state.db' }),
  })
  .strict()
  .refine((c) => Object.keys(c.mongoToPg).length === 0 || (isMongoEndpoint(c.source) && !isMongoEndpoint(c.target)), {
    message: '`mongoToPg` maps MongoDB documents to PostgreSQL columns: it needs a mongodb:// source and a PostgreSQL target',
    path: ['mongoToPg'],
  });

export type FerryConfig = z.infer<typeof configSchema>;
export type EndpointConfig = z.infer<typeof endpoint>;
