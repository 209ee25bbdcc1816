import { PgSnapshotSource } from '../adapters/postgres/snapshot-source.js';
import { PgSnapshotTarget } from '../adapters/postgres/snapshot-target.js';
import { repairRanges } from '../core/verify/repair.js';
import { verifyFlow, type VerifyReport } from '../core/verify/verify.js';
import { withFlow } from './flow-context.js';

/** Exit 0 only when every range of every table matches. */
export async function verifyCommand(path: string, opts: { repair: boolean; json: boolean }): Promise<number> {
  return withFlow(path, async ({ config, flow }) => {
    const source = new PgSnapshotSource(config.source, { connections: config.workers });
    const target = new PgSnapshotTarget(config.target, { connections: config.workers });
    try {
      const check = (only?: Set<string>) => verifyFlow({ source, target }, flow, { concurrency: config.workers, only });
      let report = await check();
      print(report, opts.json);
      if (!report.ok && opts.repair) {
        const n = await repairRanges({ source, target }, flow, report.diffs, { batchRows: config.batchRows, concurrency: config.workers });
        process.stderr.write(`ferry: copied ${n} range(s) again; verifying them…\n`);
        report = await check(new Set(report.diffs.map((d) => d.table)));
        print(report, opts.json);
      }
      return report.ok ? 0 : 1;
    } finally {
      await Promise.allSettled([source.close(), target.close()]);
    }
  });
}

function print(report: VerifyReport, json: boolean): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(report)}\n`);
    return;
  }
  const lines: string[] = [];
  for (const t of report.tables) {
    const state = t.differing === 0 ? 'identical' : `DIFFERS in ${t.differing}/${t.ranges} range(s)`;
    lines.push(`  ${state.padEnd(28)} ${t.table}${t.target !== t.table ? ` -> ${t.target}` : ''}  source ${t.sourceRows} rows, target ${t.targetRows} rows`);
  }
  for (const d of report.diffs) {
    lines.push(`  range ${d.table} ${d.label}: source ${d.source.rows} rows, target ${d.target.rows} rows${d.source.rows === d.target.rows ? ' (values differ)' : ''}`);
  }
  lines.push(report.ok ? 'verify: source and target are identical' : `verify: ${report.diffs.length} range(s) differ (run with --repair to copy them again)`);
  process.stdout.write(`${lines.join('\n')}\n`);
}
