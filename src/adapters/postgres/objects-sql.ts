/** Statement text for privileges, owners and comments: pure helpers for objects.ts. */
import type { PgStatement } from './objects-model.js';
import { ident, literal } from './sql.js';

export type AclItem = { grantee: string | null; privilege: string; grantable: boolean };
export type Acl = { items: AclItem[]; all: string[] | null } | null;

/** Predefined roles (pg_*) and PUBLIC exist everywhere: never created, never checked. */
export function isBuiltinRole(name: string | null): boolean {
  return name === null || name.startsWith('pg_');
}

export function roleSql(name: string | null): string {
  return name === null ? 'PUBLIC' : ident(name);
}

export function rolesOf(...names: (string | null | undefined)[]): string[] {
  return [...new Set(names.filter((n): n is string => typeof n === 'string' && !isBuiltinRole(n)))];
}

/**
 * GRANTs that rebuild an ACL exactly, as pg_dump does: revoke the defaults (from PUBLIC and the owner), then grant
 * each grantee's privileges in the ACL's order, `ALL` when a grantee holds every privilege the owner holds by
 * default. `owner` is the role that owns the object on the target: null when the target user owns it (`owner:
 * target-user`), and the source owner's own entries then go to CURRENT_USER.
 *
 * `on` is `TABLE public.t`, `FUNCTION public.f(integer)`, ...; `columns` makes them column grants (no revokes).
 */
export function aclStatements(on: string, acl: Acl, sourceOwner: string, owner: string | null, columns?: string): PgStatement[] {
  if (!acl) return [];
  const target = (g: string | null) => (g !== null && g === sourceOwner && owner === null ? 'CURRENT_USER' : roleSql(g));
  const out: PgStatement[] = [];
  const order: (string | null)[] = [];
  const byGrantee = new Map<string | null, AclItem[]>();
  for (const it of acl.items) {
    if (!byGrantee.has(it.grantee)) (order.push(it.grantee), byGrantee.set(it.grantee, []));
    byGrantee.get(it.grantee)!.push(it);
  }
  if (!columns) {
    out.push({ sql: `REVOKE ALL ON ${on} FROM PUBLIC`, roles: [] });
    out.push({ sql: `REVOKE ALL ON ${on} FROM ${owner === null ? 'CURRENT_USER' : ident(owner)}`, roles: rolesOf(owner) });
  }
  // Revoked from every grantee first, so a rerun grants in the same order again (an ACL keeps insertion order).
  for (const g of order) {
    if (g === null || (!columns && (g === sourceOwner || g === owner))) continue;
    const what = columns ? `ALL (${columns})` : 'ALL';
    out.push({ sql: `REVOKE ${what} ON ${on} FROM ${ident(g)} CASCADE`, roles: rolesOf(g) });
  }
  for (const g of order) {
    const items = byGrantee.get(g)!;
    const roles = g !== null && g === sourceOwner && owner === null ? [] : rolesOf(g);
    for (const grantable of [false, true]) {
      const privs = items.filter((i) => i.grantable === grantable).map((i) => i.privilege);
      if (privs.length === 0) continue;
      const all = !columns && acl.all !== null && acl.all.length > 0 && acl.all.every((p) => privs.includes(p));
      const list = all ? 'ALL' : privs.join(', ');
      const what = columns ? `${list.split(', ').map((p) => `${p} (${columns})`).join(', ')}` : list;
      out.push({
        sql: `GRANT ${what} ON ${on.replace(/^COLUMN_TABLE /, 'TABLE ')} TO ${target(g)}${grantable ? ' WITH GRANT OPTION' : ''}`,
        roles,
      });
    }
  }
  return out;
}

export function ownerStatement(alter: string, owner: string): PgStatement {
  return { sql: `ALTER ${alter} OWNER TO ${ident(owner)}`, roles: rolesOf(owner) };
}

export function commentStatement(on: string, text: string | null): PgStatement[] {
  return text === null ? [] : [{ sql: `COMMENT ON ${on} IS ${literal(text)}`, roles: [] }];
}
