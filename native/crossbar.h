// The crossbar's hot path: a k-way merge of journal streams into one total
// order by (tau_commit, journal id), released only up to the global watermark
// min_j W_j (DESIGN §2, §3 invariant 3), and routed by key range into bounded
// per-subscriber buffers. Pure C++ with no N-API, so a fuzzer and the
// sanitizer build drive it directly; native/addon.cc is its N-API door and
// src/crossbar/merge.ts (JsMergeEngine) is its TypeScript twin.
//
// K-way merge via a loser tree (tournament tree): each internal node keeps the
// loser of the match played there, so taking the winner's next record replays
// one leaf-to-root path, log2(k) comparisons. A journal whose queue runs empty
// gets the key +infinity; when records arrive for it, the tree is rebuilt once
// (O(k)) at the start of the next release, since a loser tree only supports
// replaying the winner's leaf.
//
// Every byte handed in is hostile: batches and the subscriber configuration
// are validated in full (bounds, counts, lengths, strictly increasing taus)
// before anything is kept, and a rejected batch changes nothing. A batch is
// copied (one memcpy) into memory this class owns and then decoded in place
// on that copy, so records live outside the V8 heap, the caller may reuse its
// buffer at once, and no per-record index is built: a chunk's records are
// walked by their own record_bytes. Routing finds a key's interval through a
// 256-entry table on its first byte (a comparison only against the bounds
// that share that byte), and one-write records, the common case, are copied
// into their subscribers' entries directly. The byte formats are specified
// in docs/crossbar.md.
#ifndef ORDO_NATIVE_CROSSBAR_H_
#define ORDO_NATIVE_CROSSBAR_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "span.h"

namespace ordo {

// Batch format (docs/crossbar.md): header, then records, then nothing.
constexpr uint32_t crossbar_batch_magic = 0x3142584Fu;  // bytes "OXB1"
constexpr size_t crossbar_batch_header_bytes = 8;       // magic u32, record_count u32
constexpr size_t crossbar_record_header_bytes = 24;     // bytes u32, writes u32, tau i64, txn u64
constexpr size_t crossbar_write_header_bytes = 8;       // key_len u32, payload_len u32
constexpr size_t crossbar_entry_header_bytes = 32;      // bytes, journal, writes, 0, tau, txn
// Subscriber configuration format (docs/crossbar.md).
constexpr uint32_t crossbar_config_magic = 0x3143584Fu;  // bytes "OXC1"

// Bounds on what one crossbar accepts.
constexpr uint32_t crossbar_journals_max = 4096;
constexpr uint32_t crossbar_subscribers_max = 4096;
constexpr uint32_t crossbar_ranges_per_subscriber_max = 65536;
constexpr uint32_t crossbar_key_bytes_max = 16 * 1024;
constexpr uint32_t crossbar_payload_bytes_max = 16u * 1024u * 1024u;
constexpr uint32_t crossbar_writes_per_record_max = 1u << 20;
constexpr size_t crossbar_batch_bytes_max = 1024u * 1024u * 1024u;
constexpr size_t crossbar_buffer_bytes_max = 1024u * 1024u * 1024u;
// Taus are integers in [0, crossbar_tau_max] (a JS safe integer), so the
// TypeScript twin represents every one exactly.
constexpr int64_t crossbar_tau_max = (int64_t{1} << 53) - 1;
// The watermark of a journal that has published none yet; it holds back all.
constexpr int64_t crossbar_watermark_none = -1;

// Why a batch or a configuration was rejected. Values cross the N-API boundary.
enum class CrossbarReject : uint32_t {
  kNone = 0,
  kMalformed = 1,   // bounds, counts, lengths, magic
  kOutOfOrder = 2,  // a tau not above the journal's last tau and watermark
};

struct CrossbarStatus {
  CrossbarReject reject;
  std::string message;  // empty when reject == kNone

  bool ok() const { return reject == CrossbarReject::kNone; }
};

// What one Release call did.
struct CrossbarReleaseSummary {
  uint64_t released;          // records released in this call
  int64_t last_tau;           // tau of the last released record, or -1
  int64_t last_journal;       // journal of the last released record, or -1
  int64_t global_watermark;   // min_j W_j, or crossbar_watermark_none
  uint64_t newly_overflowed;  // subscribers that overflowed during this call
  uint64_t pending_records;   // records held, not yet released
};

struct CrossbarSubscriberState {
  bool overflowed;
  int64_t overflow_tau;      // tau of the first record it missed, or -1
  int64_t overflow_journal;  // journal of that record, or -1
  size_t buffered_bytes;     // encoded entries waiting to be drained
};

class Crossbar {
 public:
  // Validates `config` (docs/crossbar.md) and returns the crossbar, or null
  // with `status` saying why.
  static std::unique_ptr<Crossbar> Create(uint32_t journals, ByteView config,
                                          CrossbarStatus* status);

  Crossbar(const Crossbar&) = delete;
  Crossbar& operator=(const Crossbar&) = delete;

  uint32_t journal_count() const { return static_cast<uint32_t>(journals_.size()); }
  uint32_t subscriber_count() const { return static_cast<uint32_t>(subscribers_.size()); }

  // Appends the records of `batch` to `journal`, then raises its watermark to
  // `watermark` (crossbar_watermark_none: only the records raise it). Every
  // tau must be above the journal's last tau and its watermark. All or nothing.
  CrossbarStatus PushBatch(uint32_t journal, ByteView batch, int64_t watermark);
  // The same for a caller's contiguous bytes, copied with one memcpy.
  CrossbarStatus PushBatch(uint32_t journal, MutableSpan<const uint8_t> batch, int64_t watermark);

  // Raises W_journal to `tau` (a lower value changes nothing).
  void AdvanceWatermark(uint32_t journal, int64_t tau);

  // Merges and routes up to `max_records` records with tau <= the global
  // watermark.
  CrossbarReleaseSummary Release(uint64_t max_records);

  int64_t global_watermark() const { return global_watermark_; }
  uint64_t pending_records() const { return pending_records_; }

  CrossbarSubscriberState subscriber_state(uint32_t subscriber) const;

  // Copies the longest prefix of whole buffered entries that fits into `out`,
  // frees it, and returns its length in bytes.
  size_t DrainInto(uint32_t subscriber, MutableSpan<uint8_t> out);

  // Clears the overflow mark and the buffer after the subscriber was caught up
  // from the journals; it receives records released from now on.
  void ResetSubscriber(uint32_t subscriber);

 private:
  struct KeyRange {
    std::vector<uint8_t> lo;
    std::vector<uint8_t> hi;  // empty: unbounded above
  };

  // An owned, growable byte array that, unlike std::vector, does not zero
  // the bytes it is about to overwrite.
  class ByteBuffer {
   public:
    size_t size() const { return size_; }
    uint8_t* data() { return data_.get(); }
    const uint8_t* data() const { return data_.get(); }
    ByteView view() const { return ByteView::FromRaw(data_.get(), size_); }
    // Makes room for `bytes` more and returns where they go; size grows by them.
    uint8_t* Append(size_t bytes) {
      if (capacity_ - size_ < bytes) Grow(bytes);
      uint8_t* at = data_.get() + size_;
      size_ += bytes;
      return at;
    }
    void Clear() { size_ = 0; }
    // Drops the first `bytes` bytes, moving the rest to the front.
    void DropFront(size_t bytes);

   private:
    // Makes room for `bytes` more, keeping what is there.
    void Grow(size_t bytes);

    std::unique_ptr<uint8_t[]> data_;
    size_t size_ = 0;
    size_t capacity_ = 0;
  };

  struct Subscriber {
    std::vector<KeyRange> ranges;
    size_t buffer_bytes_max = 0;
    ByteBuffer buffer;  // encoded entries, oldest first
    bool overflowed = false;
    int64_t overflow_tau = -1;
    int64_t overflow_journal = -1;
  };

  // A record about to be routed: its tau, where its header lies in the
  // chunk's bytes, and its write count (all read from the validated copy).
  struct RecordRef {
    int64_t tau;
    uint32_t offset;
    uint32_t write_count;
  };
  // One accepted batch, copied. Its records are walked in place: the next one
  // starts where the previous one's record_bytes end, so no per-record index
  // is built or stored.
  struct Chunk {
    ByteBuffer bytes;
    uint32_t record_count = 0;
    uint32_t next = 0;       // first record not yet released
    size_t next_offset = 0;  // where that record's header lies
  };

  struct Journal {
    std::deque<Chunk*> chunks;  // owned by chunk_store_
    int64_t last_tau = -1;
    int64_t watermark = crossbar_watermark_none;
  };

  Crossbar() = default;

  CrossbarStatus CheckBatchHeader(ByteView batch) const;
  CrossbarStatus AcceptChunk(uint32_t journal, Chunk* chunk, int64_t watermark);
  static const char* CheckWrites(const uint8_t* record, uint32_t record_bytes,
                                 uint32_t write_count);
  Chunk* TakeChunk();
  void ReturnChunk(Chunk* chunk);
  bool Beats(uint32_t a, uint32_t b) const;
  void RebuildTree();
  void ReplayWinner();
  void RecomputeGlobalWatermark();
  void Route(uint32_t journal, const Chunk& chunk, const RecordRef& record,
             uint64_t* newly_overflowed);
  void BuildRoutingTable();
  void BuildFirstByteTable();
  // Returns how many subscribers overflowed on the record.
  uint32_t RouteSingleWrite(uint32_t journal, const Chunk& chunk, const RecordRef& ref);
  static void MarkOverflowed(Subscriber& subscriber, uint32_t journal, const RecordRef& ref,
                             uint64_t* newly_overflowed);
  // The routing interval of `key`: the number of boundaries at or below it.
  uint32_t Interval(const uint8_t* key, size_t key_length) const;
  bool IntervalHas(uint32_t interval, uint32_t subscriber) const;
  void Append(Subscriber& subscriber, uint32_t subscriber_id, uint32_t journal,
              const RecordRef& ref, const uint8_t* data, size_t entry_bytes, uint32_t matched,
              uint64_t* newly_overflowed);

  std::vector<Journal> journals_;
  std::vector<Subscriber> subscribers_;
  std::vector<std::unique_ptr<Chunk>> chunk_store_;
  std::vector<Chunk*> free_chunks_;
  // head_tau_[j]: tau of journal j's next record, or INT64_MAX when empty.
  std::vector<int64_t> head_tau_;
  // Loser tree over journal leaves: losers_[n] for internal node n in
  // [1, k), holding the loser's key so a replay touches only its path;
  // winner_ is the overall winner.
  struct TreeKey {
    int64_t tau;
    uint32_t journal;
  };
  std::vector<TreeKey> losers_;
  uint32_t winner_ = 0;
  // Routing table: every range bound, sorted and unique, cuts the key space
  // into intervals; interval i is [bounds_[i-1], bounds_[i]) (interval 0 is
  // below every bound) and interval_subscribers_[interval_start_[i] ..
  // interval_start_[i+1]) lists, ascending, the subscribers that own it.
  std::vector<std::vector<uint8_t>> bounds_;
  std::vector<uint32_t> interval_start_;
  // first_byte_[b]: a non-empty key starting with byte b is at or above
  // bounds_[0 .. below) and below bounds_[end ..); only bounds_[below .. end)
  // need comparing. empty_bounds_: 1 when the empty key is a bound.
  struct FirstByteBounds {
    uint32_t below;
    uint32_t end;
  };
  FirstByteBounds first_byte_[256] = {};
  uint32_t empty_bounds_ = 0;
  uint32_t journal_count_ = 0;  // journals_.size(), kept for the merge's hot loop
  uint32_t IntervalSearch(const uint8_t* key, size_t key_length, FirstByteBounds range) const;
  std::vector<uint32_t> interval_subscribers_;
  bool tree_dirty_ = true;
  int64_t global_watermark_ = crossbar_watermark_none;
  uint64_t pending_records_ = 0;
  // Per-record scratch: which writes match the subscriber being routed.
  std::vector<uint32_t> match_scratch_;  // interval of each write
  std::vector<uint32_t> write_offsets_scratch_;
  std::vector<uint32_t> winners_scratch_;
};

}  // namespace ordo

#endif  // ORDO_NATIVE_CROSSBAR_H_
