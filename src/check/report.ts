/**
 * The human-readable verdict printed by `ordo check`: every anomaly with its
 * transactions and, for cycles, each edge and the read or append that makes
 * it (after Elle's "Let: ... Then: ..." explanations), then counts per class
 * and the verdict. At most `anomalies_shown_per_class_max` anomalies of each
 * class are spelled out; the counts are always complete.
 */
import { fmtMops } from "./format";
import type { Anomaly, CheckResult, TxnRef } from "./types";

export const anomalies_shown_per_class_max = 10;

function fmtTxn(t: TxnRef): string {
  const when =
    t.completeIndex === null
      ? `invoked at ${t.invokeIndex}, never completed`
      : `invoked at ${t.invokeIndex}, ${t.type} at ${t.completeIndex}`;
  return `${t.name} = process ${String(t.process)}, ${t.type} (${when}): ${fmtMops(t.value)}`;
}

function fmtAnomaly(a: Anomaly): string[] {
  const verdict = a.forbidden
    ? "forbidden under snapshot isolation"
    : "allowed under snapshot isolation";
  const lines = [`${a.class} (${verdict}): ${a.explanation}`];
  if (a.txns.length > 0) {
    lines.push("  Let:");
    for (const t of a.txns) lines.push(`    ${fmtTxn(t)}`);
  }
  if (a.cycle) {
    lines.push("  Then:");
    a.cycle.forEach((s, i) => {
      const lead = i === a.cycle!.length - 1 ? "However, " : "";
      lines.push(`    - ${lead}${s.explanation} [${s.type}]`);
    });
    lines.push("  A cycle: these transactions cannot be put in any order.");
  }
  return lines;
}

export function formatReport(result: CheckResult, source?: string): string {
  const { stats } = result;
  const lines = [
    `ordo check${source ? ` ${source}` : ""}: ${stats.txns} transactions ` +
      `(${stats.ok} ok, ${stats.fail} fail, ${stats.info} info), ` +
      `${result.anomalies.length} ${result.anomalies.length === 1 ? "anomaly" : "anomalies"}`,
    "",
  ];
  const shown = new Map<string, number>();
  for (const a of result.anomalies) {
    const n = shown.get(a.class) ?? 0;
    shown.set(a.class, n + 1);
    if (n >= anomalies_shown_per_class_max) continue;
    lines.push(...fmtAnomaly(a), "");
  }
  for (const [cls, n] of shown) {
    if (n > anomalies_shown_per_class_max) {
      lines.push(`(${n - anomalies_shown_per_class_max} more ${cls} not shown; see --json)`);
    }
  }
  const classes = Object.keys(result.counts).sort();
  if (classes.length > 0) {
    lines.push("Summary:");
    const width = Math.max(...classes.map((c) => c.length));
    for (const cls of classes) {
      const forbidden = result.anomalies.find((a) => a.class === cls)?.forbidden ?? true;
      lines.push(
        `  ${cls.padEnd(width)}  ${String(result.counts[cls]).padStart(6)}  ${forbidden ? "forbidden" : "allowed under SI"}`,
      );
    }
  }
  const bad = classes.filter((c) => result.anomalies.some((a) => a.class === c && a.forbidden));
  lines.push(
    result.valid
      ? "Verdict: valid under snapshot isolation"
      : `Verdict: INVALID under snapshot isolation (${bad.join(", ")})`,
  );
  return lines.join("\n") + "\n";
}
