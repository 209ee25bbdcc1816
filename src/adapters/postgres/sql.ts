import type { TableName } from '../../core/model.js';

/** Quote an identifier exactly as PostgreSQL's quote_ident would, always (mixed case, spaces, keywords). */
export function ident(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

export function qualified(t: TableName): string {
  return `${ident(t.schema)}.${ident(t.name)}`;
}

export function literal(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

export function columnList(names: readonly string[]): string {
  return names.map(ident).join(', ');
}
