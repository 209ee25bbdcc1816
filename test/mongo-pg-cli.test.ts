/**
 * `ferry plan` PostgreSQL → MongoDB refuses, before any MongoDB connection, the tables the mapping cannot hold (an
 * array primary key, a jsonb key, a `$`-prefixed column), naming table and column and what to do. Real embedded
 * PostgreSQL source, a real `ferry` process; the MongoDB target is unreachable (nothing listens on port 1), which the
 * refusal must not depend on.
 */
import { describe, expect, it } from 'vitest';
import { ferry, writeConfig } from './support/ferry-cli.js';
import { freshDatabases, query, usePgPair } from './support/pg-pair.js';

const pair = usePgPair();
const NO_MONGO = 'mongodb://127.0.0.1:1/app?replicaSet=rs0';

describe('ferry plan, PostgreSQL → MongoDB', () => {
  it('refuses an array primary key, a jsonb key and a $-prefixed column at plan time, naming each', async () => {
    const urls = await freshDatabases(pair(), 'pgmplan');
    await query(
      urls.sourceUrl,
      `CREATE TABLE public.tags (k text[] PRIMARY KEY, n int);
       CREATE TABLE public.docs (k jsonb PRIMARY KEY);
       CREATE TABLE public.prices (id int PRIMARY KEY, "$amount" numeric);
       INSERT INTO public.tags VALUES ('{a,b}', 1);`,
    );
    const config = writeConfig({ name: 'pgmplan', mode: 'snapshot', source: { url: urls.sourceUrl }, target: { url: NO_MONGO } });
    const r = await ferry(['plan', config]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('public.tags: primary key column "k" is of type text[], an array: MongoDB refuses an array _id');
    expect(r.stderr).toContain('public.docs: primary key column "k" is of type jsonb');
    expect(r.stderr).toContain('public.prices: column "$amount" starts with $');
    expect(r.stderr).toMatch(/what to do: .*exclude/);
    expect(r.stderr).not.toMatch(/cannot reach|unexpected/);
  }, 180_000);
});
