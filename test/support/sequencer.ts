/**
 * Longest files first, so that the last file to start is a short one and both workers finish together.
 *
 * vitest orders by the durations of the previous run when it has them (its cache, in node_modules/.vite), and by
 * file size otherwise: on a clean clone (CI) that put small but slow files (a demo, a CLI round trip) at the very
 * end. Here a file's weight is its cached duration, else its duration in a recorded run (seconds, 2 workers,
 * 2 cores; only the order matters, so a stale figure costs little), else a few seconds.
 */
import { BaseSequencer, type TestSpecification } from 'vitest/node';
import { relative } from 'node:path';

const RECORDED_SECONDS: Record<string, number> = {
  'test/cdc.test.ts': 86, 'test/controls.test.ts': 79, 'test/aws-production.test.ts': 70, 'test/faults.test.ts': 69,
  'test/preflight-safety.test.ts': 66, 'test/schema-objects.test.ts': 59, 'test/cdc-stream.test.ts': 56,
  'test/schema-oracle.test.ts': 55, 'test/bad-input.test.ts': 46, 'test/cdc-evolve-e2e.test.ts': 45,
  'test/cdc-apply-constraints.test.ts': 38, 'test/schema-major.test.ts': 33, 'test/snapshot.test.ts': 30,
  'test/aws-workflow.test.ts': 29, 'test/state-store.dynamodb.test.ts': 24, 'test/ui-dashboard.test.ts': 23,
  'test/cdc-apply-fold.test.ts': 23, 'test/cdc-fidelity.test.ts': 18, 'test/job-queue.sqs.test.ts': 16,
  'test/cli-reset.test.ts': 15, 'test/cli-tls.test.ts': 14, 'test/cli-status.test.ts': 14,
  'test/controls-throttle.test.ts': 13, 'test/demo.test.ts': 13, 'test/job-queue.memory.test.ts': 12,
  'test/cli-args.test.ts': 12, 'test/cdc-evolve.test.ts': 11, 'test/cdc-unlogged.test.ts': 11,
  'test/ports-snapshot.pg.test.ts': 10, 'test/fidelity.test.ts': 10, 'test/ports-change.pg.test.ts': 10,
  'test/snapshot-deferred-pk.test.ts': 9, 'test/cdc-streamed.test.ts': 7, 'test/snapshot-binary-types.test.ts': 7,
  'test/cdc-streamed-e2e.test.ts': 7, 'test/cdc-stream-v2.test.ts': 6, 'test/pg-schema.test.ts': 4,
  'test/demo-schema.test.ts': 4, 'test/state-store.sqlite.test.ts': 4, 'test/mongo-codec.test.ts': 3,
  'test/demo-start.test.ts': 3, 'test/mongo-change-stream.test.ts': 2,
};
/** A file in neither: assume a short one with a server or two. */
const UNKNOWN_SECONDS = 3;

export class LongestFirstSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const root = this.ctx.config.root;
    const weight = (spec: TestSpecification): { failed: boolean; ms: number } => {
      const file = relative(root, spec.moduleId);
      const cached = this.ctx.cache.getFileTestResults(`${spec.project.name}:${file}`);
      return {
        failed: cached?.failed ?? false,
        ms: cached?.duration ?? (RECORDED_SECONDS[file] ?? UNKNOWN_SECONDS) * 1000,
      };
    };
    const w = new Map(files.map((f) => [f, weight(f)]));
    // Failed last time first (the answer that matters soonest), then longest first.
    return [...files].sort((a, b) => Number(w.get(b)!.failed) - Number(w.get(a)!.failed) || w.get(b)!.ms - w.get(a)!.ms);
  }
}
