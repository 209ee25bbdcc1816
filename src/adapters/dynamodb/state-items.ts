/**
 * How the state store's records become DynamoDB items and keys (the layout is described in dynamodb-state-store.ts).
 * Every Json value is stored as its JSON text in an S attribute: DynamoDB numbers would lose big integers'
 * exactness and maps would lose key order.
 */
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import type { JobRecord, JobStatus, Json } from '../../core/model.js';
import type { JobProgress } from '../../core/ports/state-store.js';

export type Item = Record<string, AttributeValue>;

export const s = (v: string): AttributeValue => ({ S: v });
export const n = (v: number): AttributeValue => ({ N: String(v) });
export const json = (v: Json): AttributeValue => ({ S: JSON.stringify(v) });
export const flowPk = (flow: string) => `FLOW#${flow}`;
export const statusPk = (flow: string, status: JobStatus) => `FLOW#${flow}#STATUS#${status}`;

/** ExpressionAttributeNames for every `#name` in the expressions: status, range, rows, cursor, error, owner... are
 * reserved words, and DynamoDB rejects names an expression does not use. */
export function namesIn(...exprs: string[]): Record<string, string> | undefined {
  const names = [...new Set(exprs.join(' ').match(/#\w+/g) ?? [])];
  return names.length ? Object.fromEntries(names.map((x) => [x, x.slice(1)])) : undefined;
}

export function conditionOf(condition: string | undefined, values: Item | undefined) {
  if (condition === undefined) return {};
  const names = namesIn(condition);
  return { ConditionExpression: condition, ExpressionAttributeNames: names, ExpressionAttributeValues: values };
}

/** Zero-padded so the sort key orders chunks numerically. */
export const chunkKey = (flow: string, gen: string, i: number): Item => ({
  pk: s(flowPk(flow)),
  sk: s(`META#PLAN#${gen}#${String(i).padStart(6, '0')}`),
});
export const jobKey = (flow: string, id: string): Item => ({ pk: s(flowPk(flow)), sk: s(`JOB#${id}`) });
export const metaKey = (flow: string): Item => ({ pk: s(flowPk(flow)), sk: s('META') });
export const leaseKey = (name: string): Item => ({ pk: s(`LEASE#${name}`), sk: s('LEASE') });
export const statusValues = (flow: string, status: JobStatus): Item => ({ ':st': s(status), ':g': s(statusPk(flow, status)) });

export function progressValues(p: JobProgress): Item {
  return { ':cursor': json(p.cursor), ':rows': n(p.rows), ':bytes': n(p.bytes) };
}

/** How each JobRecord field is stored: S, N, or J (JSON text in an S). Absent optional fields have no attribute. */
export const JOB_FIELDS = {
  flow: 'S', id: 'S', table: 'S', range: 'J', label: 'S', estimatedRows: 'N', status: 'S', cursor: 'J',
  attempts: 'N', rows: 'N', bytes: 'N', leaseOwner: 'S', leaseUntil: 'N', error: 'S', updatedAt: 'N',
} as const satisfies Record<keyof JobRecord, 'S' | 'N' | 'J'>;

export function jobItem(j: JobRecord): Item {
  const item: Item = { ...jobKey(j.flow, j.id), gsi1pk: s(statusPk(j.flow, j.status)), gsi1sk: s(j.id) };
  for (const [field, type] of Object.entries(JOB_FIELDS)) {
    const v = j[field as keyof JobRecord];
    if (v !== undefined) item[field] = type === 'N' ? n(v as number) : type === 'J' ? json(v) : s(v as string);
  }
  return item;
}

export function fromJobItem(item: Item): JobRecord {
  const job: Record<string, unknown> = {};
  for (const [field, type] of Object.entries(JOB_FIELDS)) {
    const a = item[field];
    if (a) job[field] = type === 'N' ? Number(a.N) : type === 'J' ? JSON.parse(a.S!) : a.S;
  }
  return job as unknown as JobRecord;
}
