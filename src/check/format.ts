/**
 * How values, lists and micro-ops look in explanations, in Elle's notation:
 * `[1 2 3]`, `[append 7 12]`, `[r 8 [1 5]]`. Long lists keep their head and
 * their tail, which is where the anomalies are.
 */
import type { Mop, Value } from "./types";

/** Lists longer than this are shown as head ... tail. */
const list_shown_elements_max = 12;
const list_head_elements = 3;
const list_tail_elements = 8;

export function fmtValue(v: Value): string {
  return typeof v === "string" ? JSON.stringify(v) : String(v);
}

export function fmtList(list: readonly Value[] | null, len: number = list?.length ?? 0): string {
  if (list === null) return "nil";
  const shown = list.slice(0, len);
  if (shown.length <= list_shown_elements_max) return `[${shown.map(fmtValue).join(" ")}]`;
  const head = shown.slice(0, list_head_elements).map(fmtValue).join(" ");
  const tail = shown.slice(-list_tail_elements).map(fmtValue).join(" ");
  return `[${head} ... ${tail}]`;
}

export function fmtMop(m: Mop): string {
  if (m[0] === "append") return `[append ${fmtValue(m[1])} ${fmtValue(m[2])}]`;
  return `[r ${fmtValue(m[1])} ${fmtList(m[2])}]`;
}

export function fmtMops(mops: readonly Mop[]): string {
  return `[${mops.map(fmtMop).join(" ")}]`;
}
