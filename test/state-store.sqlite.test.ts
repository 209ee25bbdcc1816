import Database from 'better-sqlite3';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SqliteStateStore } from '../src/adapters/sqlite/sqlite-state-store.js';
import { flowRecord, jobRecord, stateStoreContract, TRICKY } from './contracts/state-store.contract.js';

stateStoreContract('sqlite file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-state-'));
  const store = new SqliteStateStore(join(dir, 'state.db'));
  return {
    store,
    async cleanup() {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

stateStoreContract('sqlite :memory:', async () => {
  const store = new SqliteStateStore(':memory:');
  return { store, cleanup: () => store.close() };
});

describe('SqliteStateStore on a shared file', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'ferry-state-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('creates parent directories, uses WAL, and keeps its data across close and reopen', async () => {
    const file = join(dir, 'deep', 'er', 'state.db');
    const first = new SqliteStateStore(file);
    await first.createFlow(flowRecord('f'));
    await first.addJobs([jobRecord('f', 'j', { cursor: TRICKY })]);
    await first.close();

    const raw = new Database(file, { readonly: true });
    expect(raw.pragma('journal_mode', { simple: true })).toBe('wal');
    raw.close();

    const second = new SqliteStateStore(file);
    expect(await second.getFlow('f')).toEqual(flowRecord('f'));
    expect(await second.getJob('f', 'j')).toEqual(jobRecord('f', 'j', { cursor: TRICKY }));
    await second.close();
  });

  it("two store instances on one file see each other's writes and share leases", async () => {
    const file = join(dir, 'state.db');
    const a = new SqliteStateStore(file);
    const b = new SqliteStateStore(file);
    try {
      await a.createFlow(flowRecord('f'));
      expect(await b.createFlow(flowRecord('f', { phase: 'done' }))).toEqual(flowRecord('f'));
      await b.addJobs([jobRecord('f', 'j1')]);
      expect(await a.startJob('f', 'j1', 'wa', Date.now() + 60_000)).toBe(true);
      expect((await b.getJob('f', 'j1'))!.status).toBe('running');
      await b.putCheckpoint('f', 'slot', { lsn: '0/16B3748' });
      expect(await a.getCheckpoint('f', 'slot')).toEqual({ lsn: '0/16B3748' });

      const until = Date.now() + 60_000;
      for (let i = 0; i < 10; i++) {
        const got = await Promise.all([a.acquireLease(`l${i}`, 'A', until), b.acquireLease(`l${i}`, 'B', until)]);
        expect(got.filter(Boolean)).toHaveLength(1);
      }
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('a second process reads and writes the file while this one writes (ferry status during ferry run)', async () => {
    const file = join(dir, 'state.db');
    const store = new SqliteStateStore(file);
    await store.createFlow(flowRecord('f'));
    expect(await store.acquireLease('runner', 'parent', Date.now() + 60_000)).toBe(true);

    // The child adds jobs one transaction at a time while this process keeps writing checkpoints: both must get
    // through on busy_timeout rather than fail with SQLITE_BUSY.
    const adapter = pathToFileURL(resolve('src/adapters/sqlite/sqlite-state-store.ts')).href;
    // .mts: outside the repository there is no package.json saying "module", and the script uses top-level await.
    const script = join(dir, 'child.mts');
    writeFileSync(
      script,
      `import { SqliteStateStore } from ${JSON.stringify(adapter)};
const store = new SqliteStateStore(process.argv[2]);
const flow = await store.getFlow('f');
const lease = await store.acquireLease('runner', 'child', Date.now() + 60000);
for (let i = 0; i < 200; i++) {
  await store.addJobs([{ flow: 'f', id: 'c' + String(i).padStart(3, '0'), table: 't', range: i, label: String(i),
    estimatedRows: 1, status: 'pending', cursor: null, attempts: 0, rows: 0, bytes: 0, updatedAt: Date.now() }]);
}
console.log(JSON.stringify({ phase: flow && flow.phase, lease }));
await store.close();
`,
    );
    const child = promisify(execFile)(process.execPath, ['--import', 'tsx', script, file], { timeout: 60_000 });
    let writes = 0;
    let childDone = false;
    void child.finally(() => (childDone = true)).catch(() => {});
    while (!childDone) {
      await store.putCheckpoint('f', 'slot', writes++);
      await new Promise((r) => setImmediate(r));
    }
    const { stdout } = await child;
    expect(JSON.parse(stdout)).toEqual({ phase: 'planned', lease: false });
    expect(await store.listJobs('f')).toHaveLength(200);
    expect(await store.getCheckpoint('f', 'slot')).toBe(writes - 1);
    expect(writes).toBeGreaterThan(0);
    await store.close();
  });
});
