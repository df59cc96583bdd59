/**
 * A dependency-free SVG chart of one or more runs over virtual time:
 * throughput (top) and commit-to-visible p50/p99 (bottom, log scale).
 */
import type { SimResult } from "./scenario";

const width = 900;
const panel = 220;
const pad = 50;
const colors = ["#d62728", "#1f77b4", "#2ca02c", "#9467bd"];

export function renderChart(runs: readonly { label: string; result: SimResult }[]): string {
  const tMax = Math.max(...runs.flatMap((r) => r.result.series.map((p) => p.t)), 1);
  const tpsMax = Math.max(...runs.flatMap((r) => r.result.series.map((p) => p.tps)), 1);
  const latMax = Math.max(...runs.flatMap((r) => r.result.series.map((p) => p.p99Ms)), 1);
  const x = (t: number): number => pad + ((width - 2 * pad) * t) / tMax;
  const y1 = (v: number): number => pad + panel - (panel * v) / tpsMax;
  const log = (v: number): number =>
    Math.log10(Math.max(0.1, v) / 0.1) / Math.log10(Math.max(1, latMax) / 0.1);
  const y2 = (v: number): number => 2 * pad + 2 * panel - panel * log(v);
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${3 * pad + 2 * panel + 20}" font-family="sans-serif" font-size="12">`,
  );
  parts.push(
    `<text x="${pad}" y="${pad - 10}">throughput (commits visible per virtual second; max ${tpsMax.toFixed(0)})</text>`,
  );
  parts.push(
    `<text x="${pad}" y="${2 * pad + panel - 10}">commit-to-visible p50 (dashed) and p99, ms, log scale (max ${latMax.toFixed(0)} ms)</text>`,
  );
  for (const top of [pad, 2 * pad + panel])
    parts.push(
      `<rect x="${pad}" y="${top}" width="${width - 2 * pad}" height="${panel}" fill="none" stroke="#999"/>`,
    );
  runs.forEach((run, i) => {
    const color = colors[i % colors.length];
    const s = run.result.series;
    const line = (pts: string, dash: string): void => {
      parts.push(
        `<polyline fill="none" stroke="${color}" stroke-width="1.5" ${dash} points="${pts}"/>`,
      );
    };
    line(s.map((p) => `${x(p.t).toFixed(1)},${y1(p.tps).toFixed(1)}`).join(" "), "");
    line(s.map((p) => `${x(p.t).toFixed(1)},${y2(p.p99Ms).toFixed(1)}`).join(" "), "");
    line(
      s.map((p) => `${x(p.t).toFixed(1)},${y2(p.p50Ms).toFixed(1)}`).join(" "),
      `stroke-dasharray="4 3"`,
    );
    parts.push(
      `<text x="${width - pad - 200}" y="${pad + 16 + 16 * i}" fill="${color}">${run.label}</text>`,
    );
  });
  parts.push(
    `<text x="${width / 2 - 40}" y="${3 * pad + 2 * panel + 10}">virtual seconds (0–${tMax.toFixed(0)})</text>`,
  );
  parts.push("</svg>");
  return parts.join("\n");
}
