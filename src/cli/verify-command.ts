import { repairRanges } from '../core/verify/repair.js';
import { verifyFlow, type VerifyReport } from '../core/verify/verify.js';
import { withFlow } from './flow-context.js';
import { openVerifySides } from './verify-sides.js';

/**
 * Exit 0 only when every range of every table matches. Each engine pair compares its own canonical form
 * (verify-sides.ts); PostgreSQL → PostgreSQL keeps its checksums computed inside the databases.
 */
export async function verifyCommand(path: string, opts: { repair: boolean; json: boolean }): Promise<number> {
  return withFlow(path, async ({ config, flow }) => {
    const sides = openVerifySides(config, flow);
    try {
      const check = (only?: Set<string>) =>
        verifyFlow({ source: sides.source, target: sides.target }, flow, { concurrency: config.workers, only, ...sides.options });
      let report = await check();
      print(report, opts.json);
      if (!report.ok && opts.repair) {
        const { source, target, ...how } = sides.repair;
        const n = await repairRanges({ source, target }, flow, report.diffs, { batchRows: config.batchRows, concurrency: config.workers, ...how });
        process.stderr.write(`ferry: copied ${n} range(s) again; verifying them…\n`);
        report = await check(new Set(report.diffs.map((d) => d.table)));
        print(report, opts.json);
      }
      return report.ok ? 0 : 1;
    } finally {
      await sides.close();
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
