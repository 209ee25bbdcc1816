/** `ferry status` names the cause of a failed run (and what to do) instead of a phase and 0%. */
import { describe, expect, it } from 'vitest';
import { freshDatabases, query, usePgPair } from './support/pg-pair.js';
import { ferry, writeConfig } from './support/ferry-cli.js';

const pair = usePgPair();

describe('ferry status after a failed run', () => {
  it('says what failed and what to do, for a run refused before its plan', async () => {
    const urls = await freshDatabases(pair(), 'refused');
    await query(urls.sourceUrl, `CREATE SCHEMA app; CREATE TABLE app.t (id int PRIMARY KEY); INSERT INTO app.t VALUES (1)`);
    await query(urls.targetUrl, `CREATE SCHEMA app; CREATE TABLE app.t (id int PRIMARY KEY); INSERT INTO app.t VALUES (7)`);
    const config = writeConfig({ name: 'refused', source: { url: urls.sourceUrl }, target: { url: urls.targetUrl }, include: ['app.*'] });
    expect((await ferry(['run', config])).code).toBe(1);
    const status = await ferry(['status', config]);
    expect(status.code).toBe(1);
    expect(status.stderr).toMatch(/flow refused is not in .*: its last run failed during plan at .*app\.t already has rows/);
    expect(status.stderr).toContain('what to do: ');
    expect(status.stderr).toContain('onExistingRows: truncate');
  });

  it('says which range failed and why, for a run that failed while copying', async () => {
    const urls = await freshDatabases(pair(), 'failed');
    await query(urls.sourceUrl, `CREATE SCHEMA app; CREATE TABLE app.t (id int PRIMARY KEY); INSERT INTO app.t SELECT generate_series(1, 10)`);
    // The target refuses some of the rows: the copy fails after the plan is stored.
    await query(urls.targetUrl, `CREATE SCHEMA app; CREATE TABLE app.t (id int PRIMARY KEY CHECK (id < 5))`);
    const config = writeConfig({ name: 'failing', source: { url: urls.sourceUrl }, target: { url: urls.targetUrl }, include: ['app.*'], maxAttempts: 1 });
    expect((await ferry(['run', config])).code).toBe(1);
    const status = await ferry(['status', config]);
    expect(status.code).toBe(1);
    expect(status.stdout).toMatch(/^flow failing: FAILED during \w+ at .*range job\(s\) failed/m);
    expect(status.stdout).toContain('check constraint');
    expect(status.stdout).not.toMatch(/^flow failing: snapshot/m);
    const json = JSON.parse((await ferry(['status', config, '--json'])).stdout) as { phase: string; failure: { message: string } };
    expect(json.phase).toBe('failed');
    expect(json.failure.message).toContain('app.t');
  });
});
