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

// Little-endian i64 from two u32 halves; values above crossbar_tau_max or
// below zero come back as -1 so the caller rejects them.
int64_t ReadTau(ByteView view, size_t offset) {
  const uint64_t lo = view.u32le(offset);
  const uint64_t hi = view.u32le(offset + 4);
  const uint64_t value = lo | (hi << 32);
  if (value > static_cast<uint64_t>(crossbar_tau_max)) return -1;
  return static_cast<int64_t>(value);
}

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
void PutU32(uint8_t* at, uint32_t value) { std::memcpy(at, &value, sizeof value); }
void PutU64(uint8_t* at, uint64_t value) { std::memcpy(at, &value, sizeof value); }
#else
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
      if (!range.hi.empty() && CompareKeys(range.lo.data(), range.lo.size(), range.hi.data(),
                                           range.hi.size()) >= 0) {
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
  crossbar->head_tau_.assign(journals, tau_empty);
  crossbar->losers_.assign(journals, TreeKey{tau_empty, 0});
  crossbar->BuildRoutingTable();
  crossbar->tree_dirty_ = true;
  *status = Ok();
  return crossbar;
}

uint8_t* Crossbar::ByteBuffer::Append(size_t bytes) {
  ORDO_ASSERT(bytes <= std::numeric_limits<size_t>::max() - size_);
  if (capacity_ - size_ < bytes) {
    size_t capacity = std::max(capacity_, byte_buffer_initial_bytes);
    while (capacity - size_ < bytes) capacity *= 2;
    std::unique_ptr<uint8_t[]> grown(new uint8_t[capacity]);
    if (size_ > 0) std::memcpy(grown.get(), data_.get(), size_);
    data_ = std::move(grown);
    capacity_ = capacity;
  }
  uint8_t* at = data_.get() + size_;
  size_ += bytes;
  return at;
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
  chunk->records.clear();
  chunk->next = 0;
  free_chunks_.push_back(chunk);
}

CrossbarStatus Crossbar::PushBatch(uint32_t journal_id, ByteView batch, int64_t watermark) {
  ORDO_ASSERT(journal_id < journals_.size());
  ORDO_ASSERT(watermark >= crossbar_watermark_none && watermark <= crossbar_tau_max);
  Journal& journal = journals_[journal_id];
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
  Chunk* chunk = TakeChunk();
  CopyView(batch, chunk->bytes.Append(batch.size()));
  // From here on, read only the copy: the caller cannot change it under us.
  const ByteView bytes = chunk->bytes.view();
  chunk->records.reserve(record_count);
  int64_t previous = journal.watermark;
  size_t offset = crossbar_batch_header_bytes;
  CrossbarStatus status = Ok();
  for (uint32_t i = 0; i < record_count && status.ok(); i++) {
    const size_t remaining = bytes.size() - offset;
    if (remaining < crossbar_record_header_bytes) {
      status = Reject(CrossbarReject::kMalformed, "batch: truncated record header");
      break;
    }
    const uint32_t record_bytes = bytes.u32le(offset);
    const uint32_t write_count = bytes.u32le(offset + 4);
    if (record_bytes < crossbar_record_header_bytes || record_bytes > remaining) {
      status = Reject(CrossbarReject::kMalformed, "batch: record length out of bounds");
      break;
    }
    if (write_count > crossbar_writes_per_record_max ||
        write_count > (record_bytes - crossbar_record_header_bytes) / crossbar_write_header_bytes) {
      status = Reject(CrossbarReject::kMalformed, "batch: write count out of bounds");
      break;
    }
    const int64_t tau = ReadTau(bytes, offset + 8);
    if (tau < 0) {
      status = Reject(CrossbarReject::kMalformed, "batch: tau out of range");
      break;
    }
    if (tau <= previous) {
      status = Reject(CrossbarReject::kOutOfOrder,
                      "batch: tau " + std::to_string(tau) + " is not above " +
                          std::to_string(previous) + " (last tau or watermark of journal " +
                          std::to_string(journal_id) + ")");
      break;
    }
    size_t write_offset = offset + crossbar_record_header_bytes;
    const size_t record_end = offset + record_bytes;
    for (uint32_t w = 0; w < write_count; w++) {
      if (record_end - write_offset < crossbar_write_header_bytes) {
        status = Reject(CrossbarReject::kMalformed, "batch: truncated write header");
        break;
      }
      const uint32_t key_length = bytes.u32le(write_offset);
      const uint32_t payload_length = bytes.u32le(write_offset + 4);
      if (key_length > crossbar_key_bytes_max || payload_length > crossbar_payload_bytes_max ||
          record_end - write_offset - crossbar_write_header_bytes <
              static_cast<size_t>(key_length) + payload_length) {
        status = Reject(CrossbarReject::kMalformed, "batch: write length out of bounds");
        break;
      }
      write_offset += crossbar_write_header_bytes + key_length + payload_length;
    }
    if (!status.ok()) break;
    if (write_offset != record_end) {
      status = Reject(CrossbarReject::kMalformed, "batch: record length disagrees with writes");
      break;
    }
    chunk->records.push_back(RecordRef{tau, static_cast<uint32_t>(offset), write_count});
    previous = tau;
    offset = record_end;
  }
  if (status.ok() && offset != bytes.size()) {
    status = Reject(CrossbarReject::kMalformed, "batch: trailing bytes");
  }
  if (!status.ok()) {
    ReturnChunk(chunk);
    return status;
  }
  ORDO_ASSERT(chunk->records.size() == record_count);
  if (record_count == 0) {
    ReturnChunk(chunk);
  } else {
    if (journal.chunks.empty()) {
      head_tau_[journal_id] = chunk->records[0].tau;
      tree_dirty_ = true;
    }
    journal.chunks.push_back(chunk);
    journal.last_tau = chunk->records.back().tau;
    pending_records_ += record_count;
  }
  journal.watermark = std::max({journal.watermark, journal.last_tau, watermark});
  RecomputeGlobalWatermark();
  return Ok();
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

namespace {
// (tau, journal) order, without branches: ties are common (equal taus).
inline bool KeyBeats(int64_t ta, uint32_t ja, int64_t tb, uint32_t jb) {
  return (ta < tb) | ((ta == tb) & (ja < jb));
}
}  // namespace

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
  const uint32_t k = journal_count();
  uint32_t journal = winner_;
  int64_t tau = head_tau_[journal];
  TreeKey* losers = losers_.data();
  for (uint32_t node = (k + journal) / 2; node >= 1; node /= 2) {
    const TreeKey loser = losers[node];
    const bool swap = KeyBeats(loser.tau, loser.journal, tau, journal);
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
}

uint32_t Crossbar::Interval(const uint8_t* key, size_t key_length) const {
  // upper_bound: the first bound above key; its index is the interval.
  size_t lo = 0;
  size_t hi = bounds_.size();
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
    // Reported, never overwritten; the others keep receiving.
    subscriber.overflowed = true;
    subscriber.overflow_tau = ref.tau;
    subscriber.overflow_journal = journal;
    (*newly_overflowed)++;
    return;
  }
  uint8_t* out = subscriber.buffer.Append(entry_bytes);
  PutU32(out, static_cast<uint32_t>(entry_bytes));
  PutU32(out + 4, journal);
  PutU32(out + 8, matched);
  PutU32(out + 12, 0);
  PutU64(out + 16, static_cast<uint64_t>(ref.tau));
  std::memcpy(out + 24, data + 16, 8);  // txn, as sent
  size_t put = crossbar_entry_header_bytes;
  if (matched == ref.write_count) {
    // Every write matched: the record's writes, as they are.
    const size_t writes_bytes = write_offsets_scratch_[ref.write_count] - crossbar_record_header_bytes;
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
  if (write_count == 1) {
    // One write: exactly the subscribers of its interval, nobody else.
    const uint32_t interval = match_scratch_[0];
    for (uint32_t i = interval_start_[interval]; i < interval_start_[interval + 1]; i++) {
      const uint32_t s = interval_subscribers_[i];
      Subscriber& subscriber = subscribers_[s];
      if (subscriber.overflowed) continue;
      Append(subscriber, s, journal, ref, data, crossbar_entry_header_bytes + at -
                                                    crossbar_record_header_bytes,
             1, newly_overflowed);
    }
    return;
  }
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

CrossbarReleaseSummary Crossbar::Release(uint64_t max_records) {
  CrossbarReleaseSummary summary{0, -1, -1, global_watermark_, 0, 0};
  if (tree_dirty_) RebuildTree();
  while (summary.released < max_records) {
    const uint32_t j = winner_;
    const int64_t tau = head_tau_[j];
    // Invariant 3: never above min_j W_j (tau_empty is above everything).
    if (tau == tau_empty || tau > global_watermark_) break;
    Journal& journal = journals_[j];
    ORDO_ASSERT(!journal.chunks.empty());
    Chunk* chunk = journal.chunks.front();
    ORDO_ASSERT(chunk->next < chunk->records.size() && chunk->records[chunk->next].tau == tau);
    Route(j, *chunk, chunk->records[chunk->next], &summary.newly_overflowed);
    summary.released++;
    summary.last_tau = tau;
    summary.last_journal = j;
    pending_records_--;
    chunk->next++;
    if (chunk->next == chunk->records.size()) {
      journal.chunks.pop_front();
      ReturnChunk(chunk);
      head_tau_[j] = journal.chunks.empty() ? tau_empty : journal.chunks.front()->records[0].tau;
    } else {
      head_tau_[j] = chunk->records[chunk->next].tau;
    }
    ReplayWinner();
  }
  summary.pending_records = pending_records_;
  return summary;
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
