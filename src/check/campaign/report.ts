/**
 * The campaign's report for people: per history, transactions by outcome,
 * anomalies per class, durability or bank findings; then faults, throughput
 * and the verdict. Pure.
 */
import { formatReport } from "../report";
import type { CampaignResult, GroupResult } from "./types";

/** Lost appends or bad bank reads spelled out per history. */
export const findings_shown_max = 10;

function groupLines(g: GroupResult, detail: boolean): string[] {
  const lines = [
    `History ${g.name}: ${g.historyFile}`,
    `  transactions: ${g.counts.ok + g.counts.fail + g.counts.info} ` +
      `(${g.counts.ok} ok, ${g.counts.fail} fail, ${g.counts.info} info)`,
  ];
  if (g.check) {
    const classes = Object.entries(g.check.counts);
    lines.push(
      classes.length === 0
        ? "  anomalies: none"
        : `  anomalies: ${classes.map(([c, n]) => `${c} ${n}`).join(", ")}`,
    );
    if (detail && !g.check.valid) {
      lines.push(
        ...formatReport(g.check, g.historyFile)
          .trimEnd()
          .split("\n")
          .map((l) => `    ${l}`),
      );
    }
  }
  if (g.durability) {
    const d = g.durability;
    lines.push(`  durability: ${d.acknowledged} acknowledged appends, ${d.lost.length} lost`);
    for (const l of d.lost.slice(0, findings_shown_max)) {
      lines.push(
        `    LOST: append of ${JSON.stringify(l.value)} to key ${JSON.stringify(l.key)} (acknowledged at ${l.index})`,
      );
    }
    if (d.unread.length > 0) lines.push(`    keys without a final read: ${d.unread.join(", ")}`);
  }
  if (g.bank) {
    const b = g.bank;
    lines.push(
      `  bank: ${b.reads} reads, ${b.violations.length} violations, ` +
        `final total ${b.finalTotal ?? "none"} (expected ${b.expectedTotal})`,
    );
    for (const v of b.violations.slice(0, findings_shown_max)) {
      lines.push(`    BAD READ at ${v.index} (process ${String(v.process)}): ${v.why}`);
    }
  }
  lines.push(`  verdict: ${g.valid ? "valid" : "INVALID"}`);
  return lines;
}

export function formatCampaignReport(r: CampaignResult): string {
  const lines = [
    `Campaign: ${r.workload} workload, ${r.qps} QP(s), ${r.clients} clients, ` +
      `${(r.elapsedMs / 1000).toFixed(1)} s, faults ${r.faultMode}, seed ${r.seed}`,
  ];
  if (!r.sharedData)
    lines.push("QPs hold separate data (replication off): one history per QP, checked separately");
  for (const g of r.groups) lines.push(...groupLines(g, true));
  const byKind = new Map<string, number>();
  for (const f of r.faults) byKind.set(f.kind, (byKind.get(f.kind) ?? 0) + 1);
  const failed = r.faults.filter((f) => f.error !== undefined).length;
  lines.push(
    `Faults injected: ${r.faults.length}` +
      (byKind.size > 0 ? ` (${[...byKind].map(([k, n]) => `${k} ${n}`).join(", ")})` : "") +
      (failed > 0 ? `, ${failed} FAILED to inject` : ""),
  );
  lines.push(
    `Transactions: ${r.counts.ok} ok, ${r.counts.fail} fail, ${r.counts.info} info; ` +
      `throughput ${r.throughput.toFixed(1)} ok txns/s`,
  );
  for (const n of r.notReady ?? []) lines.push(`QP ${n.qp} NOT BACK after the heal: ${n.problem}`);
  lines.push(`Verdict: ${r.valid ? "valid" : "INVALID"}`);
  return lines.join("\n") + "\n";
}
