/**
 * The bank checker: every committed read of all balances must see the same
 * total (a transfer is atomic: no read sees money in flight, duplicated or
 * lost) and every account; the final read after the campaign must still
 * show the starting total. Pure: it reads the recorded operations.
 */
import type { RecordedOp } from "./recorder";

export interface BankTransfer {
  readonly from: number;
  readonly to: number;
  readonly amount: number;
}
/** A read of every balance, account id → balance. */
export type BankBalances = Readonly<Record<string, number>>;
/** The value of a bank operation: a transfer, a read's balances, or null (invocation of a read, fail). */
export type BankValue = BankTransfer | BankBalances | null;
export type BankOp = RecordedOp<BankValue>;

export interface BankViolation {
  /** Index of the read's completion in the history. */
  index: number;
  process: number | string;
  /** The sum the read saw. */
  total: number;
  /** Accounts the read saw. */
  accounts: number;
  balances: BankBalances;
  why: string;
}

export interface BankCheckResult {
  valid: boolean;
  /** Committed reads checked. */
  reads: number;
  violations: BankViolation[];
  /** Total of the final read, or null when there was none. */
  finalTotal: number | null;
  expectedTotal: number;
}

export interface BankCheckOptions {
  readonly accounts: readonly number[];
  readonly total: number;
  /** The process that made the final read after the campaign. */
  readonly finalProcess: number | string;
}

function isBalances(v: BankValue): v is BankBalances {
  return v !== null && !("amount" in v && "from" in v && "to" in v);
}

export function checkBank(ops: readonly BankOp[], options: BankCheckOptions): BankCheckResult {
  const expected = new Set(options.accounts.map(String));
  const violations: BankViolation[] = [];
  let reads = 0;
  let finalTotal: number | null = null;
  for (const op of ops) {
    if (op.type !== "ok" || op.f !== "read") continue;
    if (!isBalances(op.value)) {
      violations.push({
        index: op.index,
        process: op.process,
        total: NaN,
        accounts: 0,
        balances: {},
        why: "an ok read without balances",
      });
      continue;
    }
    reads++;
    const balances = op.value;
    const ids = Object.keys(balances);
    const total = ids.reduce((sum, id) => sum + balances[id]!, 0);
    const base = { index: op.index, process: op.process, total, accounts: ids.length, balances };
    if (op.process === options.finalProcess) finalTotal = total;
    const missing = [...expected].filter((id) => !(id in balances));
    const extra = ids.filter((id) => !expected.has(id));
    if (missing.length > 0 || extra.length > 0) {
      violations.push({
        ...base,
        why: `accounts differ: missing [${missing.join(", ")}], unexpected [${extra.join(", ")}]`,
      });
    } else if (total !== options.total) {
      violations.push({ ...base, why: `total ${total}, expected ${options.total}` });
    }
  }
  if (finalTotal === null) {
    violations.push({
      index: -1,
      process: options.finalProcess,
      total: NaN,
      accounts: 0,
      balances: {},
      why: "no final read",
    });
  }
  return {
    valid: violations.length === 0,
    reads,
    violations,
    finalTotal,
    expectedTotal: options.total,
  };
}
