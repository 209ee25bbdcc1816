/** Tables per scenario and the summary against the targets. */
import type { BurstRun, LagRun } from './cdc-scenarios.js';

const fmt = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '—');
const ms = (s: number) => (Number.isFinite(s) ? `${Math.round(s * 1000)} ms` : '—');

export function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export interface Verdict {
  label: string;
  value: string;
  target: string;
  met: boolean | undefined;
}

/** Ratio Ferry/native of throughput for each run number that has both (native time / Ferry time). */
export function ratios(results: BurstRun[]): number[] {
  const out: number[] = [];
  for (const f of results.filter((r) => r.kind === 'ferry')) {
    const n = results.find((r) => r.kind === 'native' && r.run === f.run);
    if (n) out.push(n.visible / f.visible);
  }
  return out;
}

/** CPU seconds of everything replication costs (consumer process, walsender, target cluster) per change, in µs. */
export const cpuPerChange = (r: { cpu: { consumer: number; walsender: number; target: number }; changes: number }) =>
  ((r.cpu.consumer + r.cpu.walsender + r.cpu.target) / r.changes) * 1e6;

function cpuRatios(results: BurstRun[]): number[] {
  const out: number[] = [];
  for (const f of results.filter((r) => r.kind === 'ferry')) {
    const n = results.find((r) => r.kind === 'native' && r.run === f.run);
    if (n) out.push(cpuPerChange(n) / cpuPerChange(f));
  }
  return out;
}

export function burstTable(title: string, results: BurstRun[], errors: string[], goal?: number): { text: string; verdict?: Verdict } {
  const lines = [title, '  run  consumer  visible s  changes/s   burst gen s  cpu s: consumer  walsender  target  µs/change  VmHWM MB  content'];
  for (const r of results) {
    lines.push(
      `  ${String(r.run).padStart(3)}  ${r.kind.padEnd(8)}  ${r.visible.toFixed(2).padStart(9)}  ${fmt(r.changes / r.visible).padStart(9)}   ${r.generated.toFixed(2).padStart(11)}` +
        `  ${r.cpu.consumer.toFixed(1).padStart(15)}  ${r.cpu.walsender.toFixed(1).padStart(9)}  ${r.cpu.target.toFixed(1).padStart(6)}  ${cpuPerChange(r).toFixed(1).padStart(9)}` +
        `  ${r.rssPeak !== undefined ? r.rssPeak.toFixed(0).padStart(8) : '       —'}  ${r.same ? 'same' : 'DIFFERS'}`,
    );
  }
  for (const e of errors) lines.push(`  ${e}`);
  const rs = ratios(results);
  let verdict: Verdict | undefined;
  if (rs.length) {
    const m = median(rs);
    lines.push(`  ratio Ferry/native (throughput): median ${m.toFixed(2)}x, range ${Math.min(...rs).toFixed(2)}x–${Math.max(...rs).toFixed(2)}x over ${rs.length} pairs (${rs.map((r) => r.toFixed(2)).join(', ')})`);
    const cpu = cpuRatios(results);
    if (cpu.length) {
      lines.push(`  CPU per change (consumer + walsender + target), native/Ferry: median ${median(cpu).toFixed(2)}x, range ${Math.min(...cpu).toFixed(2)}x–${Math.max(...cpu).toFixed(2)}x (above 1: Ferry costs less; robust on a loaded machine, unlike the times)`);
    }
    const wrong = results.some((r) => !r.same);
    if (goal !== undefined) verdict = { label: title.split(':')[0]!, value: `${m.toFixed(2)}x`, target: `>= ${goal.toFixed(1)}x`, met: !wrong && errors.length === 0 && m >= goal };
  }
  return { text: lines.join('\n'), verdict };
}

export function lagTable(title: string, results: LagRun[], errors: string[], goals: Map<number, number>): { text: string; verdicts: Verdict[] } {
  const lines = [title, '  run  consumer  rate/s    achieved/s  p50       p99       max       txns   cpu s: consumer  walsender  target  µs/change'];
  for (const r of results) {
    lines.push(
      `  ${String(r.run).padStart(3)}  ${r.kind.padEnd(8)}  ${fmt(r.rate).padEnd(8)}  ${fmt(r.achieved).padStart(10)}  ${ms(r.p50).padEnd(8)}  ${ms(r.p99).padEnd(8)}  ${ms(r.max).padEnd(8)}  ${String(r.samples).padStart(5)}` +
        `  ${r.cpu.consumer.toFixed(1).padStart(15)}  ${r.cpu.walsender.toFixed(1).padStart(9)}  ${r.cpu.target.toFixed(1).padStart(6)}  ${cpuPerChange({ cpu: r.cpu, changes: r.achieved * r.seconds }).toFixed(1).padStart(9)}`,
    );
  }
  for (const e of errors) lines.push(`  ${e}`);
  const verdicts: Verdict[] = [];
  for (const rate of [...new Set(results.map((r) => r.rate))]) {
    for (const kind of ['ferry', 'native'] as const) {
      const rs = results.filter((r) => r.rate === rate && r.kind === kind);
      if (!rs.length) continue;
      const p99 = median(rs.map((r) => r.p99));
      const p50 = median(rs.map((r) => r.p50));
      const worst = Math.max(...rs.map((r) => r.p99));
      const short = rs.some((r) => r.achieved < 0.9 * r.rate);
      lines.push(`  ${kind} at ${fmt(rate)}/s: median p50 ${ms(p50)}, median p99 ${ms(p99)} (worst run ${ms(worst)})${short ? ' — the load generator fell short of the rate' : ''}`);
      const goal = goals.get(rate);
      if (kind === 'ferry' && goal !== undefined) {
        verdicts.push({ label: `(d) lag p99 at ${fmt(rate)}/s`, value: `${ms(p99)}${short ? ' (rate not reached)' : ''}`, target: `< ${ms(goal)}`, met: errors.length === 0 && !short && p99 < goal });
      }
    }
  }
  return { text: lines.join('\n'), verdicts };
}

export function rssVerdict(results: BurstRun[], errors: string[], goalMb: number): Verdict | undefined {
  const peaks = results.filter((r) => r.rssPeak !== undefined).map((r) => r.rssPeak!);
  if (!peaks.length) return undefined;
  const worst = Math.max(...peaks);
  return { label: '(e) Ferry peak RSS', value: `${worst.toFixed(0)} MB (worst of ${peaks.length})`, target: `< ${goalMb} MB`, met: errors.length === 0 && results.every((r) => r.same) && worst < goalMb };
}

export function summary(verdicts: Verdict[]): string {
  const lines = ['Summary against the issue 10 targets:'];
  for (const v of verdicts) {
    const mark = v.met === undefined ? 'n/a' : v.met ? 'met' : 'NOT MET';
    lines.push(`  ${v.label.padEnd(40)} ${v.value.padEnd(28)} target ${v.target.padEnd(10)} ${mark}`);
  }
  return lines.join('\n');
}
