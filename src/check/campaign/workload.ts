/**
 * The campaign's two workloads as pure generators: which transaction a
 * client runs next.
 *
 * List-append (Elle): 1–4 micro-ops over a small set of active keys, each an
 * append of a value unique to its key or a read of the key's whole list.
 * A key retires after `appends_per_key_max` appends and a fresh key takes its
 * place, so lists stay short and the checker's work stays linear.
 *
 * Bank: transfers of a random amount between two accounts, and reads of every
 * balance; the sum of the balances never changes.
 */
import type { Key, Mop } from "../types";
import type { Random } from "./random";

export const mops_per_txn_max = 4;
export const keys_active_default = 16;
export const appends_per_key_max = 32;
export const bank_accounts_default = 10;
export const bank_balance_initial = 100;
export const bank_transfer_amount_max = 5;
/** Share of append micro-ops (the rest are reads). */
const append_share = 0.5;
/** Share of bank transactions that are transfers (the rest are reads). */
const transfer_share = 0.6;

export interface AppendWorkloadOptions {
  /** First key of this run: keys from earlier runs in the same table are left alone. */
  keyBase: number;
  keysActive?: number;
  appendsPerKey?: number;
}

export class AppendWorkload {
  private readonly random: Random;
  private readonly active: number[] = [];
  private readonly appendsIssued = new Map<number, number>();
  private readonly appendsPerKey: number;
  private nextKey: number;

  constructor(random: Random, options: AppendWorkloadOptions) {
    const keysActive = options.keysActive ?? keys_active_default;
    if (!Number.isSafeInteger(options.keyBase) || options.keyBase < 0) {
      throw new RangeError(`keyBase must be a non-negative integer, got ${options.keyBase}`);
    }
    if (!Number.isInteger(keysActive) || keysActive < 1) {
      throw new RangeError(`keysActive must be a positive integer, got ${keysActive}`);
    }
    this.random = random;
    this.appendsPerKey = options.appendsPerKey ?? appends_per_key_max;
    this.nextKey = options.keyBase;
    for (let i = 0; i < keysActive; i++) this.active.push(this.freshKey());
  }

  private freshKey(): number {
    const key = this.nextKey++;
    this.appendsIssued.set(key, 0);
    return key;
  }

  /** The next transaction's invocation: appends carry fresh values, reads carry null. */
  next(): Mop[] {
    const count = this.random.int(1, mops_per_txn_max);
    const mops: Mop[] = [];
    for (let i = 0; i < count; i++) {
      const slot = this.random.int(0, this.active.length - 1);
      const key = this.active[slot]!;
      if (this.random.next() < append_share) {
        const issued = this.appendsIssued.get(key)! + 1;
        this.appendsIssued.set(key, issued);
        mops.push(["append", key, issued]);
        if (issued >= this.appendsPerKey) this.active[slot] = this.freshKey();
      } else {
        mops.push(["r", key, null]);
      }
    }
    return mops;
  }

  /** Every key this workload has handed out, in order. */
  keys(): Key[] {
    return [...this.appendsIssued.keys()];
  }
}

export type BankTxn =
  | {
      readonly kind: "transfer";
      readonly from: number;
      readonly to: number;
      readonly amount: number;
    }
  | { readonly kind: "read" };

export class BankWorkload {
  constructor(
    private readonly random: Random,
    readonly accounts: readonly number[],
  ) {
    if (accounts.length < 2) throw new RangeError("the bank needs at least two accounts");
  }

  next(): BankTxn {
    if (this.random.next() >= transfer_share) return { kind: "read" };
    const from = this.random.pick(this.accounts);
    let to = this.random.pick(this.accounts);
    while (to === from) to = this.random.pick(this.accounts);
    return { kind: "transfer", from, to, amount: this.random.int(1, bank_transfer_amount_max) };
  }
}
