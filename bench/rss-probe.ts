/**
 * A probe of the (e) scenario alone, for finding where Ferry's memory goes: one Ferry process on a fresh database
 * pair, an idle wait, one large TOASTed transaction, then the burst's CPU and VmHWM. Node flags for the Ferry process
 * in FLAGS, e.g. a sampler of process.memoryUsage() loaded with `--import=/path/memlog.mjs`, or
 * `--heapsnapshot-signal=SIGUSR2 --diagnostic-dir=DIR` with SNAP_IDLE=1 (snapshot while idle) or SNAP_BURST_MS=N
 * (N ms into the burst).
 *
 *   MB=128 IDLE_MS=3000 FLAGS="--trace-gc" node --import tsx bench/rss-probe.ts
 */
import { startRig, runDatabases, startConsumer, sql, sleep, cpuOf, vmHwmMb } from './cdc-rig.js';
import { readSettings } from './cdc-settings.js';
import { hugeTxn } from './cdc-workloads.js';
const settings = { ...readSettings(), ferryNodeFlags: (process.env.FLAGS ?? '').split(/\s+/).filter(Boolean) };
const mb = Number(process.env.MB ?? 64);
const w = hugeTxn(mb, 4);
const rig = await startRig();
try {
  const dbs = await runDatabases(rig, w.ddl, w.seed);
  const c = await startConsumer('ferry', { rig, dbs, settings, ddl: w.ddl, tables: w.tables, copyData: false, label: 'probe' });
  console.log('pid', c.pid);
  await sleep(Number(process.env.IDLE_MS ?? 3000));
  if (process.env.SNAP_IDLE) { process.kill(c.pid!, 'SIGUSR2'); await sleep(8000); }
  if (mb > 0) {
    const t0 = Date.now();
    const cpu0 = cpuOf(c.pid!);
    const hwm0 = vmHwmMb(c.pid!);
    if (process.env.SNAP_BURST_MS) setTimeout(() => process.kill(c.pid!, 'SIGUSR2'), Number(process.env.SNAP_BURST_MS));
    await sql(dbs.src, w.burst);
    console.log('burst committed', Date.now() - t0);
    for (;;) {
      const { rows } = await sql(dbs.dst, `SELECT count(*)::int n FROM public.blobs WHERE id = ${w.lastId}`).catch(() => ({ rows: [{ n: 0 }] }));
      if (rows[0].n) break;
      await sleep(100);
    }
    console.log('visible', Date.now() - t0);
    console.log('burstcpu', (cpuOf(c.pid!) - cpu0).toFixed(2), 'hwm_before', hwm0.toFixed(1), 'hwm_after', vmHwmMb(c.pid!).toFixed(1));
  }
  await sleep(1000);
  await c.stop();
  await dbs.drop();
} finally { await rig.close(); }
