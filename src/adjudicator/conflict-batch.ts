/**
 * The batch format of the conflict table (docs/adjudicator.md), shaped like
 * FoundationDB's ConflictBatch: transactions are added one by one into
 * reusable typed arrays, one `detect` call decides them all, and the
 * verdicts come back in arrays of the same object. Both engines read exactly
 * these arrays — the native one across the N-API boundary in one call, never
 * one call per key — so building and deciding a batch makes no garbage once
 * the arrays have grown to the workload.
 *
 * Also here, shared by the TypeScript twin and the native wrapper so that
 * both validate alike before anything changes: `checkBatch` (the same checks
 * native/conflict_table.cc makes again) and `TicketBook`, which hands out
 * ticket ids in the same order as the native table (a LIFO free list).
 */

/** Index header: magic, transaction count, index words used, key bytes used. */
export const conflict_batch_magic = 0x3142434f; // bytes "OCB1"
export const conflict_batch_header_words = 4;
/** Bit 31 of a key word marks a shared key (kind 6); the rest is its length. */
export const conflict_key_shared_bit = 0x80000000;
/** Longest key; a key is (table, primary key) or (table, unique index, value). */
export const conflict_key_bytes_max = 16 * 1024 * 1024;
export const conflict_batch_txns_max = 1 << 20;
export const conflict_batch_index_words_max = 1 << 26;
export const conflict_batch_key_bytes_max = 1 << 30;
/** Tickets (approved, unsettled transactions) one table holds at once. */
export const conflict_tickets_max = 1 << 24;

const batch_txns_initial = 16;
const batch_index_words_initial = 128;
const batch_key_bytes_initial = 1024;
/** Keys up to this long are copied byte by byte; longer ones with one set(). */
const key_copy_loop_bytes_max = 32;

/** Per-transaction verdicts written by `detect`. Values match native ConflictVerdict. */
export enum ConflictVerdict {
  Approved = 0,
  CommittedWrite = 1,
  CommittedShared = 2,
  InFlightWrite = 3,
  InFlightShared = 4,
  TooOld = 5,
}

export type ConflictEngine = "native" | "js";

/**
 * Number.isSafeInteger for a tau read from a Float64Array, written as
 * arithmetic: optimized code keeps the double unboxed, where passing it to
 * the builtin allocated a heap number per call (garbage on every settle).
 */
function isSafeTau(tau: number): boolean {
  return (
    tau >= -Number.MAX_SAFE_INTEGER && tau <= Number.MAX_SAFE_INTEGER && Math.floor(tau) === tau
  );
}

function grown<T extends Uint8Array | Uint32Array | Float64Array>(
  array: T,
  needed: number,
  make: (length: number) => T,
): T {
  if (needed <= array.length) return array;
  let length = Math.max(array.length, 1);
  while (length < needed) length *= 2;
  const next = make(length);
  next.set(array);
  return next;
}

/**
 * A batch of transactions for `ConflictTable.detect` (taus are tau_start) or
 * `register` (taus are tau_commit), and the verdicts `detect` writes back:
 * `verdicts[i]`, `details[i]` (the ticket if approved, else the index of the
 * conflicting key within transaction i) and `conflictTaus[i]` (the
 * conflicting commit's tau for committed verdicts, else 0).
 */
export class ConflictBatch {
  #index = new Uint32Array(batch_index_words_initial);
  #taus = new Float64Array(batch_txns_initial);
  #keyBytes = new Uint8Array(batch_key_bytes_initial);
  #verdicts = new Uint8Array(batch_txns_initial);
  #details = new Uint32Array(batch_txns_initial);
  #conflictTaus = new Float64Array(batch_txns_initial);
  #txnCount = 0;
  #indexWords = conflict_batch_header_words;
  #byteCount = 0;
  /** Index word holding the open transaction's key count, or -1. */
  #countAt = -1;
  /** The header words lag behind what was added since `index` was last read. */
  #headerStale = false;

  constructor() {
    this.clear();
  }

  get index(): Uint32Array {
    if (this.#headerStale) this.#writeHeader();
    return this.#index;
  }
  get taus(): Float64Array {
    return this.#taus;
  }
  get keyBytes(): Uint8Array {
    return this.#keyBytes;
  }
  get verdicts(): Uint8Array {
    return this.#verdicts;
  }
  get details(): Uint32Array {
    return this.#details;
  }
  get conflictTaus(): Float64Array {
    return this.#conflictTaus;
  }
  get txnCount(): number {
    return this.#txnCount;
  }

  /** Empties the batch, keeping its arrays. */
  clear(): void {
    this.#txnCount = 0;
    this.#indexWords = conflict_batch_header_words;
    this.#byteCount = 0;
    this.#countAt = -1;
    this.#writeHeader();
  }

  /** Starts the next transaction; its keys follow with `addKey`. */
  addTransaction(tau: number): void {
    if (typeof tau !== "number") throw new TypeError("tau must be a number");
    if (!Number.isSafeInteger(tau)) throw new RangeError(`tau ${tau} is not a safe integer`);
    if (this.#txnCount >= conflict_batch_txns_max) {
      throw new RangeError(
        `a batch holds at most conflict_batch_txns_max ${conflict_batch_txns_max} transactions`,
      );
    }
    const txn = this.#txnCount;
    // Growth is checked before calling grown(): its closures would be garbage on every call.
    if (txn >= this.#taus.length) {
      this.#taus = grown(this.#taus, txn + 1, (n) => new Float64Array(n));
      this.#verdicts = grown(this.#verdicts, txn + 1, (n) => new Uint8Array(n));
      this.#details = grown(this.#details, txn + 1, (n) => new Uint32Array(n));
      this.#conflictTaus = grown(this.#conflictTaus, txn + 1, (n) => new Float64Array(n));
    }
    this.#reserveWords(1);
    this.#taus[txn] = tau;
    this.#countAt = this.#indexWords;
    this.#index[this.#indexWords++] = 0;
    this.#txnCount = txn + 1;
    this.#headerStale = true;
  }

  /** Adds a key of the open transaction: written, or shared (kind 6). */
  addKey(key: Uint8Array, shared: boolean): void {
    if (!(key instanceof Uint8Array)) throw new TypeError("key must be a Uint8Array");
    this.addKeyFrom(key, 0, key.length, shared);
  }

  /** Adds `source[offset, offset + length)` as a key, without making a view. */
  addKeyFrom(source: Uint8Array, offset: number, length: number, shared: boolean): void {
    if (!(source instanceof Uint8Array)) throw new TypeError("source must be a Uint8Array");
    if (typeof shared !== "boolean") throw new TypeError("shared must be a boolean");
    if (
      !Number.isInteger(offset) ||
      !Number.isInteger(length) ||
      offset < 0 ||
      length < 0 ||
      offset + length > source.length
    ) {
      throw new RangeError(`key bytes [${offset}, ${offset}+${length}) lie outside the source`);
    }
    if (length > conflict_key_bytes_max) {
      throw new RangeError(
        `key has ${length} bytes, more than conflict_key_bytes_max ${conflict_key_bytes_max}`,
      );
    }
    if (this.#countAt < 0) throw new RangeError("addKey before addTransaction");
    const at = this.#byteCount;
    if (at + length > conflict_batch_key_bytes_max) {
      throw new RangeError("batch key bytes exceed conflict_batch_key_bytes_max");
    }
    this.#reserveWords(1);
    if (at + length > this.#keyBytes.length) {
      this.#keyBytes = grown(this.#keyBytes, at + length, (n) => new Uint8Array(n));
    }
    const keyBytes = this.#keyBytes;
    // Short keys by hand: subarray() would make a view (garbage) per key.
    if (length <= key_copy_loop_bytes_max) {
      for (let i = 0; i < length; i++) keyBytes[at + i] = source[offset + i];
    } else {
      keyBytes.set(source.subarray(offset, offset + length), at);
    }
    this.#byteCount = at + length;
    const index = this.#index;
    index[this.#indexWords++] = (length | (shared ? conflict_key_shared_bit : 0)) >>> 0;
    index[this.#countAt] += 1;
    this.#headerStale = true;
  }

  #reserveWords(words: number): void {
    if (this.#indexWords + words > conflict_batch_index_words_max) {
      throw new RangeError("batch index exceeds conflict_batch_index_words_max");
    }
    if (this.#indexWords + words > this.#index.length) {
      this.#index = grown(this.#index, this.#indexWords + words, (n) => new Uint32Array(n));
    }
  }

  /**
   * Brings the index header up to date. Adding writes it lazily (once per
   * read of `index`, not once per key); a header changed by hand afterwards
   * stays as it was changed, so the checks still see it.
   */
  #writeHeader(): void {
    this.#headerStale = false;
    const index = this.#index;
    index[0] = conflict_batch_magic;
    index[1] = this.#txnCount;
    index[2] = this.#indexWords;
    index[3] = this.#byteCount;
  }
}

/**
 * Checks a batch's arrays the way native/conflict_table.cc decodes them:
 * throws TypeError or RangeError before any table changes. Returns the
 * transaction count.
 */
export function checkBatch(batch: ConflictBatch): number {
  if (!(batch instanceof ConflictBatch)) throw new TypeError("batch must be a ConflictBatch");
  const index = batch.index;
  const txnCount = index[1];
  const indexWords = index[2];
  const byteCount = index[3];
  if (index[0] !== conflict_batch_magic) throw new RangeError("batch index has a wrong magic");
  if (txnCount > conflict_batch_txns_max || batch.taus.length < txnCount) {
    throw new RangeError("batch transaction count is out of bounds");
  }
  if (indexWords < conflict_batch_header_words || indexWords > index.length) {
    throw new RangeError("batch index word count is out of bounds");
  }
  if (byteCount > batch.keyBytes.length)
    throw new RangeError("batch key byte count is out of bounds");
  if (
    batch.verdicts.length < txnCount ||
    batch.details.length < txnCount ||
    batch.conflictTaus.length < txnCount
  ) {
    throw new RangeError("batch output arrays are shorter than the batch");
  }
  let word = conflict_batch_header_words;
  let bytes = 0;
  for (let txn = 0; txn < txnCount; txn++) {
    if (!isSafeTau(batch.taus[txn])) throw new RangeError("batch tau is not a safe integer");
    if (word >= indexWords) throw new RangeError("batch index ends inside a transaction");
    const keys = index[word++];
    if (keys > indexWords - word) throw new RangeError("transaction key count runs past the index");
    for (let k = 0; k < keys; k++) {
      const length = index[word++] & ~conflict_key_shared_bit;
      if (length > conflict_key_bytes_max || length > byteCount - bytes) {
        throw new RangeError("key runs past the batch's key bytes");
      }
      bytes += length;
    }
  }
  if (word !== indexWords || bytes !== byteCount) {
    throw new RangeError("batch index and key bytes do not add up");
  }
  return txnCount;
}

/**
 * Ticket ids of approved, unsettled transactions: allocated from a LIFO free
 * list (so both engines hand out the same ids), with each ticket's tau_start,
 * and the argument checks of commitBatch / abortBatch.
 */
export class TicketBook {
  #live = new Uint8Array(64);
  #tauStart = new Float64Array(64);
  #marks = new Uint32Array(64);
  #mark = 0;
  readonly #free: number[] = [];
  #size = 0;
  #liveCount = 0;

  get liveCount(): number {
    return this.#liveCount;
  }

  allocate(tauStart: number): number {
    let id: number;
    if (this.#free.length > 0) {
      id = this.#free.pop() as number;
    } else {
      id = this.#size++;
      if (this.#size > this.#live.length) {
        this.#live = grown(this.#live, this.#size, (n) => new Uint8Array(n));
        this.#tauStart = grown(this.#tauStart, this.#size, (n) => new Float64Array(n));
        this.#marks = grown(this.#marks, this.#size, (n) => new Uint32Array(n));
      }
    }
    this.#live[id] = 1;
    this.#tauStart[id] = tauStart;
    this.#liveCount += 1;
    return id;
  }

  release(id: number): void {
    if (this.#live[id] !== 1) throw new RangeError(`ticket ${id} is not in flight`);
    this.#live[id] = 0;
    this.#free.push(id);
    this.#liveCount -= 1;
  }

  tauStartOf(id: number): number {
    return this.#tauStart[id];
  }

  /** Checks a settle call's arguments: live, distinct tickets and (for commits) taus after tau_start. */
  check(tickets: Uint32Array, taus: Float64Array | null, count: number): void {
    if (!(tickets instanceof Uint32Array)) throw new TypeError("tickets must be a Uint32Array");
    if (taus !== null && !(taus instanceof Float64Array))
      throw new TypeError("taus must be a Float64Array");
    if (typeof count !== "number") throw new TypeError("count must be a number");
    if (
      !Number.isInteger(count) ||
      count < 0 ||
      count > tickets.length ||
      count > conflict_tickets_max
    ) {
      throw new RangeError(`count ${count} is outside [0, tickets.length]`);
    }
    if (taus !== null && count > taus.length)
      throw new RangeError(`count ${count} exceeds taus.length`);
    this.#mark = (this.#mark + 1) >>> 0;
    if (this.#mark === 0) {
      this.#marks.fill(0);
      this.#mark = 1;
    }
    const live = this.#live;
    const marks = this.#marks;
    const mark = this.#mark;
    const size = this.#size;
    for (let i = 0; i < count; i++) {
      const id = tickets[i];
      if (id >= size || live[id] !== 1) throw new RangeError(`ticket ${id} is not in flight`);
      if (marks[id] === mark) throw new RangeError(`ticket ${id} is named twice`);
      marks[id] = mark;
    }
    if (taus !== null) this.#checkTaus(tickets, taus, count);
  }

  /** Each commit tau is a safe integer after its ticket's tau_start. */
  #checkTaus(tickets: Uint32Array, taus: Float64Array, count: number): void {
    const tauStart = this.#tauStart;
    for (let i = 0; i < count; i++) {
      const tau = taus[i];
      // Number.isSafeInteger by hand: the builtin call boxed the double.
      if (
        !(tau >= -Number.MAX_SAFE_INTEGER && tau <= Number.MAX_SAFE_INTEGER) ||
        Math.floor(tau) !== tau
      ) {
        throw new RangeError(`tau_commit ${String(tau)} is not a safe integer`);
      }
      if (tau <= tauStart[tickets[i]]) {
        throw new RangeError(
          `tau_commit ${String(tau)} is not after tau_start ${String(tauStart[tickets[i]])}`,
        );
      }
    }
  }
}

/** Checks a horizon argument against the current one. */
export function checkHorizon(horizonTau: unknown, current: number): number {
  if (typeof horizonTau !== "number") throw new TypeError("horizonTau must be a number");
  if (!Number.isSafeInteger(horizonTau))
    throw new RangeError(`horizon ${horizonTau} is not a safe integer`);
  if (horizonTau < current)
    throw new RangeError(`horizon ${horizonTau} is behind the current ${current}`);
  return horizonTau;
}
