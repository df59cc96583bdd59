// The adjudicator's conflict table (DESIGN §3 invariant 4, §6), driven in
// batches like FoundationDB's ConflictBatch: one Detect call decides a batch
// of transactions in order, one CommitBatch / AbortBatch settles many
// tickets, ForgetBefore drops history at or below a horizon. Pure C++ with no
// N-API, so a fuzzer and the sanitizer build drive it directly;
// native/addon.cc is its N-API door and src/adjudicator/conflict-table.ts
// (JsConflictTable) its TypeScript twin, which must answer every call alike.
//
// Memory: an open-addressing hash table (linear probing, backward-shift
// deletion) maps key bytes to entry indexes; entries are one cache line each,
// reused through a free list, and hold keys of up to
// conflict_inline_key_bytes_max bytes inline, so a lookup touches one slot
// line and one entry line. Longer keys live in a byte arena (compacted when
// more than half of it is garbage). History for forgetting is kept in commit
// order: a FIFO ring takes every record whose tau is not below the last one
// queued (the usual case: commits arrive in tau order), and a binary min-heap
// of (tau, entry) takes the rest, so forgetting walks memory in order and
// costs O(1) per record in steady state. Lookups are software-prefetched a
// transaction or two ahead. Tickets keep their entry list in a vector whose
// capacity is reused. So the steady state allocates nothing per key or per
// transaction.
//
// Every batch handed in is hostile: its index is decoded and checked in full
// (magic, counts, lengths, taus) before anything changes, and a rejected call
// changes nothing. The batch format is specified in docs/adjudicator.md.
#ifndef ORDO_NATIVE_CONFLICT_TABLE_H_
#define ORDO_NATIVE_CONFLICT_TABLE_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "span.h"

namespace ordo {

// Batch index (Uint32Array): header, then per transaction its key count
// followed by one word per key (length, bit 31 set for a shared key).
constexpr uint32_t conflict_batch_magic = 0x3142434Fu;  // bytes "OCB1"
constexpr size_t conflict_batch_header_words = 4;       // magic, txns, index words, key bytes
constexpr uint32_t conflict_key_shared_bit = 0x80000000u;

// Bounds on what one table accepts.
constexpr uint32_t conflict_key_bytes_max = 16u * 1024u * 1024u;
constexpr uint32_t conflict_batch_txns_max = 1u << 20;
constexpr size_t conflict_batch_index_words_max = size_t{1} << 26;
constexpr size_t conflict_batch_key_bytes_max = size_t{1} << 30;
constexpr uint32_t conflict_tickets_max = 1u << 24;
// Keys up to this long are stored inside their entry; longer ones in the arena.
constexpr uint32_t conflict_inline_key_bytes_max = 31;
// Taus are integers in [-tau_max, tau_max] (JS safe integers).
constexpr int64_t conflict_tau_max = (int64_t{1} << 53) - 1;

// Per-transaction verdicts of Detect. Values cross the N-API boundary.
enum class ConflictVerdict : uint8_t {
  kApproved = 0,
  kCommittedWrite = 1,
  kCommittedShared = 2,
  kInFlightWrite = 3,
  kInFlightShared = 4,
  kTooOld = 5,
};

enum class ConflictReject : uint32_t {
  kNone = 0,
  kMalformed = 1,   // a batch or argument array that does not decode
  kOutOfRange = 2,  // a tau, ticket or count outside its bounds
};

struct ConflictStatus {
  ConflictReject reject;
  std::string message;  // empty when reject == kNone

  bool ok() const { return reject == ConflictReject::kNone; }
  static ConflictStatus Ok() { return {ConflictReject::kNone, std::string()}; }
};

// Read-only views of typed arrays handed in.
using WordView = MutableSpan<const uint32_t>;
using DoubleView = MutableSpan<const double>;

// Where Detect writes its answers, one slot per transaction.
struct DetectOutput {
  MutableSpan<uint8_t> verdicts;  // ConflictVerdict
  MutableSpan<uint32_t> details;  // ticket if approved, else index of the conflicting key
  MutableSpan<double> taus;       // the conflicting commit's tau for committed verdicts, else 0
};

class ConflictTable {
 public:
  explicit ConflictTable(int64_t horizon_tau);

  ConflictTable(const ConflictTable&) = delete;
  ConflictTable& operator=(const ConflictTable&) = delete;

  // Decides the batch in order (taus are tau_start): each approved
  // transaction gets a ticket and its keys are in flight for the ones after.
  ConflictStatus Detect(WordView index, DoubleView taus, ByteView key_bytes,
                        const DetectOutput& out);
  // Records the batch's transactions as committed at their taus (replay);
  // those at or below the horizon are ignored.
  ConflictStatus Register(WordView index, DoubleView taus, ByteView key_bytes);
  // The first `count` tickets became durable at their taus (> their tau_start).
  ConflictStatus CommitBatch(WordView tickets, DoubleView taus, size_t count);
  // The first `count` tickets will never be durable.
  ConflictStatus AbortBatch(WordView tickets, size_t count);
  // Drops committed history at or below `horizon_tau`; it may not move back.
  ConflictStatus ForgetBefore(double horizon_tau);

  size_t key_count() const { return live_entries_; }
  size_t in_flight_count() const { return live_tickets_; }
  int64_t horizon_tau() const { return horizon_tau_; }

 private:
  // One cache line: the counters, the hash and the key (inline, or its arena
  // offset when longer than conflict_inline_key_bytes_max).
  struct alignas(64) Entry {
    int64_t write_tau;
    int64_t shared_tau;
    uint32_t in_flight_writes;
    uint32_t in_flight_shared;
    uint32_t hash;
    uint32_t key_length;
    uint8_t key[conflict_inline_key_bytes_max];
    bool live;
  };
  struct Slot {
    uint32_t hash;
    uint32_t entry;  // slot_empty when free
  };
  struct HeapItem {
    int64_t tau;
    uint32_t entry;
  };
  // History records queued in nondecreasing tau order: a ring of HeapItems.
  class HistoryRing {
   public:
    bool empty() const { return count_ == 0; }
    size_t size() const { return count_; }
    const HeapItem& front() const { return items_[head_]; }
    const HeapItem& back() const { return items_[(head_ + count_ - 1) & mask_]; }
    // The item `ahead` places after the front (which must exist).
    const HeapItem& peek(size_t ahead) const { return items_[(head_ + ahead) & mask_]; }
    void push(HeapItem item);
    void pop();

   private:
    std::vector<HeapItem> items_;
    size_t head_ = 0;
    size_t count_ = 0;
    size_t mask_ = 0;
  };
  struct Ticket {
    int64_t tau_start;
    uint32_t mark;  // call number that last named it, to catch duplicates
    bool live;
    std::vector<uint32_t> refs;  // entry << 1 | shared
  };
  // A key of a decoded batch: where its bytes lie and whether it is shared.
  struct KeyRef {
    size_t offset;
    uint32_t length;
    bool shared;
  };

  ConflictStatus DecodeBatch(WordView index, DoubleView taus, ByteView key_bytes);
  ConflictStatus CheckTickets(WordView tickets, size_t count);
  ConflictVerdict CheckKey(const Entry& entry, bool shared, int64_t tau_start, int64_t* tau) const;
  uint32_t Find(ByteView key, uint32_t hash) const;
  uint32_t FindOrInsert(ByteView key, uint32_t hash);
  uint32_t Insert(ByteView key, uint32_t hash);
  ConflictVerdict Check(uint32_t k, ByteView key_bytes, int64_t tau_start, uint32_t* found,
                        int64_t* tau) const;
  void Record(uint32_t entry, bool shared, int64_t tau);
  void Forget(uint32_t entry, int64_t horizon);
  bool EntryHasKey(const Entry& entry, ByteView key, uint32_t hash) const;
  void PrefetchSlots(uint32_t first_key, uint32_t end_key) const;
  void PrefetchEntries(uint32_t first_key, uint32_t end_key) const;
  void PrefetchForget(const HeapItem& item) const;
  void DropIfEmpty(uint32_t entry);
  void RemoveSlot(uint32_t entry);
  void Grow();
  void CompactArena();
  void HeapPush(HeapItem item);
  void HeapPop();
  uint32_t AllocateTicket(int64_t tau_start);
  void FreeTicket(uint32_t ticket);

  int64_t horizon_tau_;
  std::vector<Slot> slots_;
  size_t slot_mask_;
  std::vector<Entry> entries_;
  std::vector<uint32_t> free_entries_;
  size_t live_entries_ = 0;
  std::vector<uint8_t> arena_;
  size_t arena_garbage_ = 0;
  HistoryRing history_;         // records in tau order
  std::vector<HeapItem> heap_;  // records that arrived out of tau order
  std::vector<Ticket> tickets_;
  std::vector<uint32_t> free_tickets_;
  size_t live_tickets_ = 0;
  uint32_t call_mark_ = 0;
  // Scratch of the batch being decided, kept across calls.
  std::vector<KeyRef> keys_;
  size_t batch_txns_ = 0;                // transactions of the decoded batch
  std::vector<uint32_t> txn_first_key_;  // txn i's keys are [first[i], first[i+1])
  std::vector<int64_t> txn_tau_;
  std::vector<uint32_t> key_hash_;
  std::vector<uint32_t> found_;
};

// Hash of key bytes, shared with tests that want to force collisions.
uint32_t ConflictKeyHash(ByteView key);

}  // namespace ordo

#endif  // ORDO_NATIVE_CONFLICT_TABLE_H_
