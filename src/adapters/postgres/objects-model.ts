/**
 * The database objects a flow carries besides its tables' columns and keys: extensions, functions, views,
 * triggers, policies, privileges, owners, comments, roles... As JSON in the plan, like `PgTableExtra`.
 *
 * They travel in the `extra.database` of the plan's first table, so the ports and state stores stay as they are:
 * the flow record already stores every table's `extra`. Each object lists the source tables it needs; an object
 * whose tables are not all in the flow is left out (see `objectsOf`).
 *
 * Statements are built at describe time with the target's names already in them, so the target side only decides
 * whether to run them (the roles they name exist, the section is due) and never rewrites SQL.
 */
import type { PgName, PgTypeDef } from './extra.js';

export type PgRoleDef = {
  name: string;
  superuser: boolean;
  inherit: boolean;
  createRole: boolean;
  createDb: boolean;
  login: boolean;
  replication: boolean;
  bypassRls: boolean;
  connectionLimit: number;
  validUntil: string | null;
  memberOf: { role: string; admin: boolean }[] | null;
};

export type PgStatement = {
  sql: string;
  /** Roles the statement names: with `roles: skip`, it is skipped (with a warning) when one is missing. */
  roles: string[];
};

/** Kinds, as `ferry plan` counts them. */
export type PgObjectKind =
  | 'function'
  | 'procedure'
  | 'view'
  | 'materialized view'
  | 'trigger'
  | 'rule'
  | 'row security'
  | 'policy'
  | 'statistics'
  | 'owner'
  | 'grant'
  | 'default privileges'
  | 'comment';

export type PgObject = {
  kind: PgObjectKind;
  /** For messages and the plan: `public.f(integer)`, `trigger t_audit on public.t`. */
  name: string;
  /** `pre`: before the load (in the create transaction); `post`: at finalize, after indexes and constraints. */
  section: 'pre' | 'post';
  /** Order inside the section: lower first; equal ranks keep the list's order (dependency order). */
  rank: number;
  /** Source keys of the flow tables it needs. */
  tables: string[];
  statements: PgStatement[];
};

export type PgExtensionDef = { name: string; version: string; schema: string };

export type PgDatabaseObjects = {
  version: 1;
  roles: 'create' | 'skip' | 'require';
  owner: 'keep' | 'target-user';
  /** Schemas the objects live in (created when missing, before anything else). */
  schemas: string[];
  extensions: PgExtensionDef[];
  /** Types of the touched schemas no column uses (those travel with their columns). */
  types: PgTypeDef[];
  /** Every role the objects name, and the roles those are members of, members after what they belong to. */
  roleDefs: PgRoleDef[];
  objects: PgObject[];
  /** What Ferry leaves out, and why (shown by `ferry plan`, warned at finalize). */
  skipped: { kind: string; name: string; reason: string }[];
};

/** Post-section ranks: functions that read tables, views, then what hangs on tables, then privileges. */
export const RANK = {
  function: 10,
  view: 20,
  trigger: 40,
  rule: 41,
  statistics: 42,
  rowSecurity: 50,
  policy: 51,
  owner: 60,
  grant: 70,
  defaultPrivileges: 71,
  comment: 80,
} as const;

/** Storage facts of a table, kept in its `extra` (the create step needs them, not the post-data step). */
export type PgTableShape = {
  unlogged: boolean;
  reloptions: string[];
  /** Source names of INHERITS parents, in order. */
  inherits: PgName[];
  /** Columns that only come from a parent (left out of CREATE TABLE ... INHERITS, as pg_dump does). */
  inheritedColumns: string[];
};

