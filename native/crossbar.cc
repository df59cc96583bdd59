// Crossbar merge and route (see crossbar.h). The checks in PushBatch and
// Create run in the order docs/crossbar.md gives, which the TypeScript twin
// (src/crossbar/merge.ts) follows too, so both reject the same input with the
// same code.
#include "crossbar.h"

#include <algorithm>
#include <cstring>
#include <limits>

namespace ordo {
namespace {

constexpr int64_t tau_empty = std::numeric_limits<int64_t>::max();

// Copies every byte of `src` to `out`, which holds src.size() bytes.
void CopyView(ByteView src, uint8_t* out) {
  const size_t n = src.size();
  size_t i = 0;
  for (; n - i >= 8; i += 8) {
    const uint64_t word = src.u64(i);
    std::memcpy(out + i, &word, sizeof word);
  }
  for (; i < n; i++) out[i] = src.at(i);
}

void CopyView(ByteView src, std::vector<uint8_t>* dst) {
  dst->resize(src.size());
  CopyView(src, dst->data());
}

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
void PutU32(uint8_t* at, uint32_t value) { std::memcpy(at, &value, sizeof value); }
void PutU64(uint8_t* at, uint64_t value) { std::memcpy(at, &value, sizeof value); }
// Little-endian loads from memory this class owns, bounds checked by the caller.
uint32_t LoadU32(const uint8_t* at) {
  uint32_t value;
  std::memcpy(&value, at, sizeof value);
  return value;
}
uint64_t LoadU64(const uint8_t* at) {
  uint64_t value;
  std::memcpy(&value, at, sizeof value);
  return value;
}
#else
uint32_t LoadU32(const uint8_t* at) {
  return static_cast<uint32_t>(at[0]) | (static_cast<uint32_t>(at[1]) << 8) |
         (static_cast<uint32_t>(at[2]) << 16) | (static_cast<uint32_t>(at[3]) << 24);
}
uint64_t LoadU64(const uint8_t* at) {
  return static_cast<uint64_t>(LoadU32(at)) | (static_cast<uint64_t>(LoadU32(at + 4)) << 32);
}
void PutU32(uint8_t* at, uint32_t value) {
  at[0] = static_cast<uint8_t>(value);
  at[1] = static_cast<uint8_t>(value >> 8);
  at[2] = static_cast<uint8_t>(value >> 16);
  at[3] = static_cast<uint8_t>(value >> 24);
}
void PutU64(uint8_t* at, uint64_t value) {
  PutU32(at, static_cast<uint32_t>(value));
  PutU32(at + 4, static_cast<uint32_t>(value >> 32));
}
#endif

CrossbarStatus Reject(CrossbarReject reject, std::string message) {
  return CrossbarStatus{reject, std::move(message)};
}

CrossbarStatus Ok() { return CrossbarStatus{CrossbarReject::kNone, std::string()}; }

// Unsigned lexicographic comparison of two byte strings: <0, 0, >0. Keys
// usually differ in their first bytes, so a plain loop beats a memcmp call.
inline int CompareKeys(const uint8_t* a, size_t a_length, const uint8_t* b, size_t b_length) {
  const size_t common = a_length < b_length ? a_length : b_length;
  for (size_t i = 0; i < common; i++) {
    if (a[i] != b[i]) return a[i] < b[i] ? -1 : 1;
  }
  if (a_length < b_length) return -1;
  return a_length > b_length ? 1 : 0;
}

constexpr size_t byte_buffer_initial_bytes = 4096;

// Copies n bytes; the short copies of routing (a write or two) inline as
// 16-byte moves, the last one overlapping, instead of a libc call.
inline void CopyBytes(uint8_t* out, const uint8_t* in, size_t n) {
  if (n >= 16 && n <= 64) {
    for (size_t i = 0; i + 16 < n; i += 16) std::memcpy(out + i, in + i, 16);
    std::memcpy(out + n - 16, in + n - 16, 16);
    return;
  }
  std::memcpy(out, in, n);
}

// An output entry's header; `record` is the record's bytes, whose txn field
// is carried as sent.
void PutEntryHeader(uint8_t* out, size_t entry_bytes, uint32_t journal, uint32_t matched,
                    int64_t tau, const uint8_t* record) {
  PutU32(out, static_cast<uint32_t>(entry_bytes));
  PutU32(out + 4, journal);
  PutU32(out + 8, matched);
  PutU32(out + 12, 0);
  PutU64(out + 16, static_cast<uint64_t>(tau));
  std::memcpy(out + 24, record + 16, 8);
}

}  // namespace

std::unique_ptr<Crossbar> Crossbar::Create(uint32_t journals, ByteView config,
                                           CrossbarStatus* status) {
  ORDO_ASSERT(status != nullptr);
  if (journals < 1 || journals > crossbar_journals_max) {
    *status = Reject(CrossbarReject::kMalformed, "journal count out of range");
    return nullptr;
  }
  if (config.size() < 8 || config.u32le(0) != crossbar_config_magic) {
    *status = Reject(CrossbarReject::kMalformed, "config: bad header");
    return nullptr;
  }
  const uint32_t subscriber_count = config.u32le(4);
  if (subscriber_count > crossbar_subscribers_max) {
    *status = Reject(CrossbarReject::kMalformed, "config: too many subscribers");
    return nullptr;
  }
  std::unique_ptr<Crossbar> crossbar(new Crossbar());
  crossbar->subscribers_.resize(subscriber_count);
  size_t offset = 8;
  for (uint32_t s = 0; s < subscriber_count; s++) {
    Subscriber& subscriber = crossbar->subscribers_[s];
    if (config.size() - offset < 8) {
      *status = Reject(CrossbarReject::kMalformed, "config: truncated subscriber");
      return nullptr;
    }
    const uint32_t buffer_bytes_max = config.u32le(offset);
    const uint32_t range_count = config.u32le(offset + 4);
    offset += 8;
    if (buffer_bytes_max > crossbar_buffer_bytes_max ||
        range_count > crossbar_ranges_per_subscriber_max) {
      *status = Reject(CrossbarReject::kMalformed, "config: subscriber bound out of range");
      return nullptr;
    }
    subscriber.buffer_bytes_max = buffer_bytes_max;
    subscriber.ranges.resize(range_count);
    for (uint32_t r = 0; r < range_count; r++) {
      if (config.size() - offset < 8) {
        *status = Reject(CrossbarReject::kMalformed, "config: truncated range");
        return nullptr;
      }
      const uint32_t lo_length = config.u32le(offset);
      const uint32_t hi_length = config.u32le(offset + 4);
      offset += 8;
      if (lo_length > crossbar_key_bytes_max || hi_length > crossbar_key_bytes_max ||
          config.size() - offset < static_cast<size_t>(lo_length) + hi_length) {
        *status = Reject(CrossbarReject::kMalformed, "config: range key out of bounds");
        return nullptr;
      }
      KeyRange& range = subscriber.ranges[r];
      CopyView(config.sub(offset, lo_length), &range.lo);
      CopyView(config.sub(offset + lo_length, hi_length), &range.hi);
      offset += static_cast<size_t>(lo_length) + hi_length;
      if (!range.hi.empty() &&
          CompareKeys(range.lo.data(), range.lo.size(), range.hi.data(), range.hi.size()) >= 0) {
        *status = Reject(CrossbarReject::kMalformed, "config: range with lo >= hi");
        return nullptr;
      }
    }
  }
  if (offset != config.size()) {
    *status = Reject(CrossbarReject::kMalformed, "config: trailing bytes");
    return nullptr;
  }
  crossbar->journals_.resize(journals);
  crossbar->journal_count_ = journals;
  crossbar->head_tau_.assign(journals, tau_empty);
  crossbar->losers_.assign(journals, TreeKey{tau_empty, 0});
  crossbar->BuildRoutingTable();
  crossbar->tree_dirty_ = true;
  *status = Ok();
  return crossbar;
}

void Crossbar::ByteBuffer::Grow(size_t bytes) {
  ORDO_ASSERT(bytes <= std::numeric_limits<size_t>::max() - size_);
  size_t capacity = std::max(capacity_, byte_buffer_initial_bytes);
  while (capacity - size_ < bytes) capacity *= 2;
  std::unique_ptr<uint8_t[]> grown(new uint8_t[capacity]);
  if (size_ > 0) std::memcpy(grown.get(), data_.get(), size_);
  data_ = std::move(grown);
  capacity_ = capacity;
}

void Crossbar::ByteBuffer::DropFront(size_t bytes) {
  ORDO_ASSERT(bytes <= size_);
  if (bytes < size_) std::memmove(data_.get(), data_.get() + bytes, size_ - bytes);
  size_ -= bytes;
}

Crossbar::Chunk* Crossbar::TakeChunk() {
  if (!free_chunks_.empty()) {
    Chunk* chunk = free_chunks_.back();
    free_chunks_.pop_back();
    return chunk;
  }
  chunk_store_.push_back(std::make_unique<Chunk>());
  return chunk_store_.back().get();
}

void Crossbar::ReturnChunk(Chunk* chunk) {
  chunk->bytes.Clear();
  chunk->record_count = 0;
  chunk->next = 0;
  chunk->next_offset = crossbar_batch_header_bytes;
  free_chunks_.push_back(chunk);
}

CrossbarStatus Crossbar::PushBatch(uint32_t journal_id, ByteView batch, int64_t watermark) {
  CrossbarStatus status = CheckBatchHeader(batch);
  if (!status.ok()) return status;
  Chunk* chunk = TakeChunk();
  CopyView(batch, chunk->bytes.Append(batch.size()));
  return AcceptChunk(journal_id, chunk, watermark);
}

CrossbarStatus Crossbar::PushBatch(uint32_t journal_id, MutableSpan<const uint8_t> batch,
                                   int64_t watermark) {
  const ByteView view = batch.size() == 0 ? ByteView() : ByteView::FromRaw(&batch[0], batch.size());
  CrossbarStatus status = CheckBatchHeader(view);
  if (!status.ok()) return status;
  Chunk* chunk = TakeChunk();
  // The header check proved at least crossbar_batch_header_bytes are there.
  std::memcpy(chunk->bytes.Append(batch.size()), &batch[0], batch.size());
  return AcceptChunk(journal_id, chunk, watermark);
}

// The checks that come before the copy: length, magic, record count.
CrossbarStatus Crossbar::CheckBatchHeader(ByteView batch) const {
  if (batch.size() > crossbar_batch_bytes_max) {
    return Reject(CrossbarReject::kMalformed, "batch longer than crossbar_batch_bytes_max");
  }
  if (batch.size() < crossbar_batch_header_bytes || batch.u32le(0) != crossbar_batch_magic) {
    return Reject(CrossbarReject::kMalformed, "batch: bad header");
  }
  const uint32_t record_count = batch.u32le(4);
  if (record_count > (batch.size() - crossbar_batch_header_bytes) / crossbar_record_header_bytes) {
    return Reject(CrossbarReject::kMalformed, "batch: record count exceeds its bytes");
  }
  return Ok();
}

// Decodes the chunk's copy of a batch whose header passed CheckBatchHeader
// and appends it to the journal, or returns the chunk and the rejection. The
// copy is ours, so after each bounds check its bytes are read directly.
CrossbarStatus Crossbar::AcceptChunk(uint32_t journal_id, Chunk* chunk, int64_t watermark) {
  ORDO_ASSERT(journal_id < journals_.size());
  ORDO_ASSERT(watermark >= crossbar_watermark_none && watermark <= crossbar_tau_max);
  Journal& journal = journals_[journal_id];
  const uint8_t* bytes = chunk->bytes.data();
  const size_t size = chunk->bytes.size();
  ORDO_ASSERT(size >= crossbar_batch_header_bytes);
  const uint32_t record_count = LoadU32(bytes + 4);
  int64_t first_tau = 0;
  int64_t previous = journal.watermark;
  size_t offset = crossbar_batch_header_bytes;
  const char* malformed = nullptr;
  for (uint32_t i = 0; i < record_count; i++) {
    const size_t remaining = size - offset;
    if (remaining < crossbar_record_header_bytes) {
      malformed = "batch: truncated record header";
      break;
    }
    const uint8_t* record = bytes + offset;
    const uint32_t record_bytes = LoadU32(record);
    const uint32_t write_count = LoadU32(record + 4);
    if (record_bytes < crossbar_record_header_bytes || record_bytes > remaining) {
      malformed = "batch: record length out of bounds";
      break;
    }
    if (write_count > crossbar_writes_per_record_max ||
        write_count > (record_bytes - crossbar_record_header_bytes) / crossbar_write_header_bytes) {
      malformed = "batch: write count out of bounds";
      break;
    }
    const uint64_t tau_bits = LoadU64(record + 8);
    if (tau_bits > static_cast<uint64_t>(crossbar_tau_max)) {
      malformed = "batch: tau out of range";
      break;
    }
    const int64_t tau = static_cast<int64_t>(tau_bits);
    if (tau <= previous) {
      ReturnChunk(chunk);
      return Reject(CrossbarReject::kOutOfOrder, "batch: tau " + std::to_string(tau) +
                                                     " is not above " + std::to_string(previous) +
                                                     " (last tau or watermark of journal " +
                                                     std::to_string(journal_id) + ")");
    }
    malformed = CheckWrites(record, record_bytes, write_count);
    if (malformed != nullptr) break;
    if (i == 0) first_tau = tau;
    previous = tau;
    offset += record_bytes;
  }
  if (malformed == nullptr && offset != size) malformed = "batch: trailing bytes";
  if (malformed != nullptr) {
    ReturnChunk(chunk);
    return Reject(CrossbarReject::kMalformed, malformed);
  }
  if (record_count == 0) {
    ReturnChunk(chunk);
  } else {
    if (journal.chunks.empty()) {
      head_tau_[journal_id] = first_tau;
      tree_dirty_ = true;
    }
    chunk->record_count = record_count;
    chunk->next = 0;
    chunk->next_offset = crossbar_batch_header_bytes;
    journal.chunks.push_back(chunk);
    journal.last_tau = previous;
    pending_records_ += record_count;
  }
  journal.watermark = std::max({journal.watermark, journal.last_tau, watermark});
  RecomputeGlobalWatermark();
  return Ok();
}

// Checks the writes of one record (whose header was checked): null when they
// fill it exactly, else why not.
const char* Crossbar::CheckWrites(const uint8_t* record, uint32_t record_bytes,
                                  uint32_t write_count) {
  size_t at = crossbar_record_header_bytes;
  for (uint32_t w = 0; w < write_count; w++) {
    if (record_bytes - at < crossbar_write_header_bytes) return "batch: truncated write header";
    const uint32_t key_length = LoadU32(record + at);
    const uint32_t payload_length = LoadU32(record + at + 4);
    if (key_length > crossbar_key_bytes_max || payload_length > crossbar_payload_bytes_max ||
        record_bytes - at - crossbar_write_header_bytes <
            static_cast<size_t>(key_length) + payload_length) {
      return "batch: write length out of bounds";
    }
    at += crossbar_write_header_bytes + key_length + payload_length;
  }
  if (at != record_bytes) return "batch: record length disagrees with writes";
  return nullptr;
}

void Crossbar::AdvanceWatermark(uint32_t journal_id, int64_t tau) {
  ORDO_ASSERT(journal_id < journals_.size());
  ORDO_ASSERT(tau >= crossbar_watermark_none && tau <= crossbar_tau_max);
  Journal& journal = journals_[journal_id];
  if (tau <= journal.watermark) return;
  journal.watermark = tau;
  RecomputeGlobalWatermark();
}

void Crossbar::RecomputeGlobalWatermark() {
  int64_t minimum = tau_empty;
  for (const Journal& journal : journals_) minimum = std::min(minimum, journal.watermark);
  // The global watermark never moves back: each W_j only rises.
  ORDO_ASSERT(minimum >= global_watermark_);
  global_watermark_ = minimum;
}

bool Crossbar::Beats(uint32_t a, uint32_t b) const {
  const int64_t ta = head_tau_[a];
  const int64_t tb = head_tau_[b];
  return ta < tb || (ta == tb && a < b);
}

void Crossbar::RebuildTree() {
  const uint32_t k = journal_count();
  tree_dirty_ = false;
  if (k == 1) {
    winner_ = 0;
    return;
  }
  // winners[n] for every node n in [1, 2k): leaves are k..2k-1.
  std::vector<uint32_t>& winners = winners_scratch_;
  winners.assign(2 * static_cast<size_t>(k), 0);
  for (uint32_t j = 0; j < k; j++) winners[k + j] = j;
  for (uint32_t n = k - 1; n >= 1; n--) {
    const uint32_t a = winners[2 * n];
    const uint32_t b = winners[2 * n + 1];
    const uint32_t win = Beats(a, b) ? a : b;
    const uint32_t lose = win == a ? b : a;
    winners[n] = win;
    losers_[n] = TreeKey{head_tau_[lose], lose};
  }
  winner_ = winners[1];
}

void Crossbar::ReplayWinner() {
  const uint32_t k = journal_count_;
  uint32_t journal = winner_;
  int64_t tau = head_tau_[journal];
  TreeKey* losers = losers_.data();
  for (uint32_t node = (k + journal) / 2; node >= 1; node /= 2) {
    const TreeKey loser = losers[node];
    // (tau, journal) order. Written as selects; the compiler turns them
    // into branches, which measured faster here than explicit masks.
    const bool swap = (loser.tau < tau) | ((loser.tau == tau) & (loser.journal < journal));
    losers[node] = swap ? TreeKey{tau, journal} : loser;
    tau = swap ? loser.tau : tau;
    journal = swap ? loser.journal : journal;
  }
  winner_ = journal;
}

void Crossbar::BuildRoutingTable() {
  for (const Subscriber& subscriber : subscribers_) {
    for (const KeyRange& range : subscriber.ranges) {
      bounds_.push_back(range.lo);
      if (!range.hi.empty()) bounds_.push_back(range.hi);
    }
  }
  const auto less = [](const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
    return CompareKeys(a.data(), a.size(), b.data(), b.size()) < 0;
  };
  std::sort(bounds_.begin(), bounds_.end(), less);
  bounds_.erase(std::unique(bounds_.begin(), bounds_.end()), bounds_.end());
  // Interval i starts at bounds_[i-1] (interval 0 at the empty key, the
  // smallest key); no bound lies inside an interval, so its first key decides
  // membership for all of it.
  interval_start_.assign(1, 0);
  const std::vector<uint8_t> empty_key;
  for (size_t i = 0; i <= bounds_.size(); i++) {
    const std::vector<uint8_t>& first = i == 0 ? empty_key : bounds_[i - 1];
    for (uint32_t s = 0; s < subscribers_.size(); s++) {
      for (const KeyRange& range : subscribers_[s].ranges) {
        if (CompareKeys(first.data(), first.size(), range.lo.data(), range.lo.size()) >= 0 &&
            (range.hi.empty() ||
             CompareKeys(first.data(), first.size(), range.hi.data(), range.hi.size()) < 0)) {
          interval_subscribers_.push_back(s);
          break;
        }
      }
    }
    interval_start_.push_back(static_cast<uint32_t>(interval_subscribers_.size()));
  }
  BuildFirstByteTable();
}

// Fills first_byte_: for each first byte b, the bounds that a key starting
// with b is surely at or above (the empty bound, bounds starting below b, and
// the one-byte bound {b}), and the longer bounds starting with b, which need
// a comparison.
void Crossbar::BuildFirstByteTable() {
  size_t next = 0;
  empty_bounds_ = 0;
  if (!bounds_.empty() && bounds_[0].empty()) {
    empty_bounds_ = 1;
    next = 1;
  }
  for (uint32_t b = 0; b < 256; b++) {
    if (next < bounds_.size() && bounds_[next].size() == 1 && bounds_[next][0] == b) next++;
    const size_t below = next;
    while (next < bounds_.size() && bounds_[next][0] == b) next++;
    first_byte_[b] = FirstByteBounds{static_cast<uint32_t>(below), static_cast<uint32_t>(next)};
  }
  ORDO_ASSERT(next == bounds_.size());
}

uint32_t Crossbar::Interval(const uint8_t* key, size_t key_length) const {
  // upper_bound: the first bound above key; its index is the interval.
  if (key_length == 0) return empty_bounds_;
  const FirstByteBounds range = first_byte_[key[0]];
  if (range.below == range.end) return range.below;
  return IntervalSearch(key, key_length, range);
}

// The binary search among the bounds that share the key's first byte.
uint32_t Crossbar::IntervalSearch(const uint8_t* key, size_t key_length,
                                  FirstByteBounds range) const {
  size_t lo = range.below;
  size_t hi = range.end;
  while (lo < hi) {
    const size_t mid = lo + (hi - lo) / 2;
    const std::vector<uint8_t>& bound = bounds_[mid];
    if (CompareKeys(bound.data(), bound.size(), key, key_length) <= 0) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return static_cast<uint32_t>(lo);
}

bool Crossbar::IntervalHas(uint32_t interval, uint32_t subscriber) const {
  for (uint32_t i = interval_start_[interval]; i < interval_start_[interval + 1]; i++) {
    if (interval_subscribers_[i] == subscriber) return true;
  }
  return false;
}

void Crossbar::Append(Subscriber& subscriber, uint32_t subscriber_id, uint32_t journal,
                      const RecordRef& ref, const uint8_t* data, size_t entry_bytes,
                      uint32_t matched, uint64_t* newly_overflowed) {
  if (subscriber.buffer.size() + entry_bytes > subscriber.buffer_bytes_max) {
    MarkOverflowed(subscriber, journal, ref, newly_overflowed);
    return;
  }
  uint8_t* out = subscriber.buffer.Append(entry_bytes);
  PutEntryHeader(out, entry_bytes, journal, matched, ref.tau, data);
  size_t put = crossbar_entry_header_bytes;
  if (matched == ref.write_count) {
    // Every write matched: the record's writes, as they are.
    const size_t writes_bytes =
        write_offsets_scratch_[ref.write_count] - crossbar_record_header_bytes;
    std::memcpy(out + put, data + crossbar_record_header_bytes, writes_bytes);
    put += writes_bytes;
  } else {
    for (uint32_t w = 0; w < ref.write_count; w++) {
      if (!IntervalHas(match_scratch_[w], subscriber_id)) continue;
      const size_t write_bytes = write_offsets_scratch_[w + 1] - write_offsets_scratch_[w];
      std::memcpy(out + put, data + write_offsets_scratch_[w], write_bytes);
      put += write_bytes;
    }
  }
  ORDO_ASSERT(put == entry_bytes);
}

void Crossbar::Route(uint32_t journal, const Chunk& chunk, const RecordRef& ref,
                     uint64_t* newly_overflowed) {
  const uint32_t write_count = ref.write_count;
  if (write_count == 0 || subscribers_.empty()) return;
  const ByteView bytes = chunk.bytes.view();
  const size_t record_bytes = bytes.u32le(ref.offset);
  const ByteView record = bytes.sub(ref.offset, record_bytes);
  // Write offsets and routing intervals, found once for every subscriber. The
  // record was validated in full by PushBatch and lives in memory we own, so
  // after these checked reads its bytes are addressed directly.
  std::vector<uint32_t>& write_offsets = write_offsets_scratch_;
  if (write_offsets.size() < write_count + 1) {
    write_offsets.resize(write_count + 1);
    match_scratch_.resize(write_count);
  }
  const uint8_t* data = chunk.bytes.data() + ref.offset;
  size_t at = crossbar_record_header_bytes;
  for (uint32_t w = 0; w < write_count; w++) {
    const uint32_t key_length = record.u32le(at);
    write_offsets[w] = static_cast<uint32_t>(at);
    match_scratch_[w] = Interval(data + at + crossbar_write_header_bytes, key_length);
    at += crossbar_write_header_bytes + key_length + record.u32le(at + 4);
  }
  ORDO_ASSERT(at == record_bytes);
  write_offsets[write_count] = static_cast<uint32_t>(at);
  for (uint32_t s = 0; s < subscribers_.size(); s++) {
    Subscriber& subscriber = subscribers_[s];
    if (subscriber.overflowed) continue;
    size_t entry_bytes = crossbar_entry_header_bytes;
    uint32_t matched = 0;
    for (uint32_t w = 0; w < write_count; w++) {
      if (IntervalHas(match_scratch_[w], s)) {
        matched++;
        entry_bytes += write_offsets[w + 1] - write_offsets[w];
      }
    }
    if (matched == 0) continue;
    Append(subscriber, s, journal, ref, data, entry_bytes, matched, newly_overflowed);
  }
}

// One write: exactly the subscribers of its interval, nobody else, and the
// entry is the record's header fields and its write as they are. The record
// was validated by AcceptChunk and lives in memory this class owns.
uint32_t Crossbar::RouteSingleWrite(uint32_t journal, const Chunk& chunk, const RecordRef& ref) {
  uint32_t overflowed = 0;
  const uint8_t* data = chunk.bytes.data() + ref.offset;
  const uint32_t record_bytes = LoadU32(data);
  const uint32_t key_length = LoadU32(data + crossbar_record_header_bytes);
  ORDO_ASSERT(crossbar_record_header_bytes + crossbar_write_header_bytes + size_t{key_length} <=
              record_bytes);
  const uint32_t interval =
      Interval(data + crossbar_record_header_bytes + crossbar_write_header_bytes, key_length);
  const size_t write_bytes = record_bytes - crossbar_record_header_bytes;
  const size_t entry_bytes = crossbar_entry_header_bytes + write_bytes;
  for (uint32_t i = interval_start_[interval]; i < interval_start_[interval + 1]; i++) {
    const uint32_t s = interval_subscribers_[i];
    Subscriber& subscriber = subscribers_[s];
    if (subscriber.overflowed) continue;
    if (subscriber.buffer.size() + entry_bytes > subscriber.buffer_bytes_max) {
      uint64_t newly = 0;
      MarkOverflowed(subscriber, journal, ref, &newly);
      overflowed += static_cast<uint32_t>(newly);
      continue;
    }
    uint8_t* out = subscriber.buffer.Append(entry_bytes);
    PutEntryHeader(out, entry_bytes, journal, 1, ref.tau, data);
    CopyBytes(out + crossbar_entry_header_bytes, data + crossbar_record_header_bytes, write_bytes);
  }
  return overflowed;
}

void Crossbar::MarkOverflowed(Subscriber& subscriber, uint32_t journal, const RecordRef& ref,
                              uint64_t* newly_overflowed) {
  // Reported, never overwritten; the others keep receiving.
  subscriber.overflowed = true;
  subscriber.overflow_tau = ref.tau;
  subscriber.overflow_journal = journal;
  (*newly_overflowed)++;
}

CrossbarReleaseSummary Crossbar::Release(uint64_t max_records) {
  if (tree_dirty_) RebuildTree();
  // Kept in locals (registers) in the loop, stored once at the end.
  uint64_t released = 0;
  int64_t last_tau = -1;
  int64_t last_journal = -1;
  uint64_t newly_overflowed = 0;
  const int64_t watermark = global_watermark_;
  while (released < max_records) {
    const uint32_t j = winner_;
    const int64_t tau = head_tau_[j];
    // Invariant 3: never above min_j W_j (tau_empty is above everything).
    if (tau == tau_empty || tau > watermark) break;
    Journal& journal = journals_[j];
    ORDO_ASSERT(!journal.chunks.empty());
    Chunk* chunk = journal.chunks.front();
    ORDO_ASSERT(chunk->next < chunk->record_count);
    const uint8_t* record = chunk->bytes.data() + chunk->next_offset;
    ORDO_ASSERT(static_cast<int64_t>(LoadU64(record + 8)) == tau);
    const RecordRef ref{tau, static_cast<uint32_t>(chunk->next_offset), LoadU32(record + 4)};
    if (ref.write_count == 1) {
      newly_overflowed += RouteSingleWrite(j, *chunk, ref);
    } else {
      Route(j, *chunk, ref, &newly_overflowed);
    }
    released++;
    last_tau = tau;
    last_journal = j;
    chunk->next++;
    chunk->next_offset += LoadU32(record);
    if (chunk->next == chunk->record_count) {
      ORDO_ASSERT(chunk->next_offset == chunk->bytes.size());
      journal.chunks.pop_front();
      ReturnChunk(chunk);
      if (journal.chunks.empty()) {
        head_tau_[j] = tau_empty;
      } else {
        const uint8_t* following =
            journal.chunks.front()->bytes.data() + crossbar_batch_header_bytes;
        head_tau_[j] = static_cast<int64_t>(LoadU64(following + 8));
      }
    } else {
      const uint8_t* following = chunk->bytes.data() + chunk->next_offset;
      head_tau_[j] = static_cast<int64_t>(LoadU64(following + 8));
      // This journal's record after next is needed within about k records:
      // start loading its line now.
      __builtin_prefetch(following + LoadU32(following));
    }
    ReplayWinner();
  }
  ORDO_ASSERT(released <= pending_records_);
  pending_records_ -= released;
  return CrossbarReleaseSummary{released,          last_tau,         last_journal,
                                global_watermark_, newly_overflowed, pending_records_};
}

CrossbarSubscriberState Crossbar::subscriber_state(uint32_t subscriber_id) const {
  ORDO_ASSERT(subscriber_id < subscribers_.size());
  const Subscriber& subscriber = subscribers_[subscriber_id];
  return CrossbarSubscriberState{subscriber.overflowed, subscriber.overflow_tau,
                                 subscriber.overflow_journal, subscriber.buffer.size()};
}

size_t Crossbar::DrainInto(uint32_t subscriber_id, MutableSpan<uint8_t> out) {
  ORDO_ASSERT(subscriber_id < subscribers_.size());
  ByteBuffer& buffer = subscribers_[subscriber_id].buffer;
  size_t length = buffer.size();
  if (length > out.size()) {
    // The longest prefix of whole entries that fits.
    const ByteView view = buffer.view();
    length = 0;
    while (length < buffer.size()) {
      const size_t entry = view.u32le(length);
      if (entry > out.size() - length) break;
      length += entry;
    }
  }
  if (length == 0) return 0;
  ORDO_ASSERT(length <= out.size());
  std::memcpy(&out[0], buffer.data(), length);
  buffer.DropFront(length);
  return length;
}

void Crossbar::ResetSubscriber(uint32_t subscriber_id) {
  ORDO_ASSERT(subscriber_id < subscribers_.size());
  Subscriber& subscriber = subscribers_[subscriber_id];
  subscriber.overflowed = false;
  subscriber.overflow_tau = -1;
  subscriber.overflow_journal = -1;
  subscriber.buffer.Clear();
}

}  // namespace ordo
