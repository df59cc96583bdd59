// The adjudicator's conflict table: see conflict_table.h for what it holds and
// why, and docs/adjudicator.md for the batch format. Semantics match
// JsConflictTable (src/adjudicator/conflict-table.ts) call for call.
#include "conflict_table.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <utility>

namespace ordo {
namespace {

constexpr uint32_t slot_empty = 0xFFFFFFFFu;
constexpr uint32_t entry_none = 0xFFFFFFFFu;
constexpr int64_t tau_none = std::numeric_limits<int64_t>::min();
constexpr size_t slots_initial = 1024;
// Grow the slot array when live entries exceed this share of it (numerator / 8).
constexpr size_t slots_load_eighths_max = 4;
// Compact the key arena when garbage exceeds both live bytes and this floor.
constexpr size_t arena_garbage_bytes_min = 1u << 20;

// How many transactions ahead Detect prefetches slots, and entries.
constexpr size_t prefetch_slot_txns_ahead = 2;
constexpr size_t prefetch_entry_txns_ahead = 1;
// How many history records ahead ForgetBefore prefetches entries, and slots.
constexpr size_t prefetch_forget_entry_ahead = 16;
constexpr size_t prefetch_forget_slot_ahead = 8;
constexpr size_t history_ring_initial = 1024;

constexpr uint64_t hash_seed = 0xa0761d6478bd642fULL;
constexpr uint64_t hash_secret_0 = 0xe7037ed1a0b428dbULL;
constexpr uint64_t hash_secret_1 = 0x8ebc6af09c88c6e3ULL;

inline uint64_t Mum(uint64_t a, uint64_t b) {
  const unsigned __int128 product = static_cast<unsigned __int128>(a) * b;
  return static_cast<uint64_t>(product) ^ static_cast<uint64_t>(product >> 64);
}

inline void Prefetch(const void* address) { __builtin_prefetch(address, 1, 3); }

bool KeysEqual(ByteView a, ByteView b) {
  if (a.size() != b.size()) return false;
  if (a.size() == 16) return a.u64(0) == b.u64(0) && a.u64(8) == b.u64(8);
  size_t at = 0;
  for (; at + 8 <= a.size(); at += 8) {
    if (a.u64(at) != b.u64(at)) return false;
  }
  for (; at < a.size(); at++) {
    if (a.at(at) != b.at(at)) return false;
  }
  return true;
}

// Copies every byte of `key` to `out`, which holds key.size() bytes.
void CopyKey(ByteView key, uint8_t* out) {
  const size_t n = key.size();
  size_t at = 0;
  for (; n - at >= 8; at += 8) {
    const uint64_t word = key.u64(at);
    std::memcpy(out + at, &word, sizeof word);
  }
  for (; at < n; at++) out[at] = key.at(at);
}

// A JS number that must be an integral tau in range.
bool TauFromDouble(double value, int64_t* tau) {
  if (!std::isfinite(value) || std::trunc(value) != value) return false;
  if (value < -static_cast<double>(conflict_tau_max) ||
      value > static_cast<double>(conflict_tau_max)) {
    return false;
  }
  *tau = static_cast<int64_t>(value);
  return true;
}

ConflictStatus Reject(ConflictReject why, std::string message) { return {why, std::move(message)}; }

}  // namespace

// wyhash-style: one or a few 64x64->128-bit multiplies over the key's words,
// so a short key costs a handful of instructions and every bit of it reaches
// the low bits that pick a slot.
uint32_t ConflictKeyHash(ByteView key) {
  const size_t n = key.size();
  uint64_t seed = hash_seed ^ Mum(n ^ hash_secret_1, hash_secret_0);
  uint64_t a = 0;
  uint64_t b = 0;
  if (n > 16) {
    size_t at = 0;
    for (; n - at > 16; at += 16) {
      seed = Mum(key.u64(at) ^ hash_secret_1, key.u64(at + 8) ^ seed);
    }
    a = key.u64(n - 16);
    b = key.u64(n - 8);
  } else if (n >= 8) {
    a = key.u64(0);
    b = key.u64(n - 8);
  } else if (n >= 4) {
    a = key.u32le(0);
    b = key.u32le(n - 4);
  } else if (n > 0) {
    a = (static_cast<uint64_t>(key.at(0)) << 16) | (static_cast<uint64_t>(key.at(n >> 1)) << 8) |
        key.at(n - 1);
  }
  const uint64_t h = Mum(hash_secret_1 ^ n, Mum(a ^ hash_secret_1, b ^ seed));
  return static_cast<uint32_t>(h ^ (h >> 32));
}

ConflictTable::ConflictTable(int64_t horizon_tau)
    : horizon_tau_(horizon_tau),
      slots_(slots_initial, Slot{0, slot_empty}),
      slot_mask_(slots_initial - 1) {
  ORDO_ASSERT(horizon_tau >= -conflict_tau_max && horizon_tau <= conflict_tau_max);
}

// Checks the whole batch and fills keys_, txn_first_key_ and txn_tau_.
ConflictStatus ConflictTable::DecodeBatch(WordView index, DoubleView taus, ByteView key_bytes) {
  if (index.size() < conflict_batch_header_words) {
    return Reject(ConflictReject::kMalformed, "batch index is shorter than its header");
  }
  if (index[0] != conflict_batch_magic) {
    return Reject(ConflictReject::kMalformed, "batch index has a wrong magic");
  }
  const uint32_t txn_count = index[1];
  const size_t index_words = index[2];
  const size_t byte_count = index[3];
  if (txn_count > conflict_batch_txns_max) {
    return Reject(ConflictReject::kMalformed, "batch holds too many transactions");
  }
  if (index_words < conflict_batch_header_words || index_words > index.size() ||
      index_words > conflict_batch_index_words_max) {
    return Reject(ConflictReject::kMalformed, "batch index word count is out of bounds");
  }
  if (byte_count > key_bytes.size() || byte_count > conflict_batch_key_bytes_max) {
    return Reject(ConflictReject::kMalformed, "batch key byte count is out of bounds");
  }
  if (taus.size() < txn_count) {
    return Reject(ConflictReject::kMalformed, "batch has fewer taus than transactions");
  }
  // Filled by position, grown (doubling) only as far as valid keys go.
  if (txn_first_key_.size() < size_t{txn_count} + 1) {
    txn_first_key_.resize(size_t{txn_count} + 1);
    txn_tau_.resize(txn_count);
  }
  batch_txns_ = txn_count;
  size_t word = conflict_batch_header_words;
  size_t offset = 0;
  uint32_t key_count_total = 0;
  for (uint32_t txn = 0; txn < txn_count; txn++) {
    int64_t tau = 0;
    if (!TauFromDouble(taus[txn], &tau)) {
      return Reject(ConflictReject::kOutOfRange, "batch tau is not an integer in range");
    }
    if (word >= index_words) {
      return Reject(ConflictReject::kMalformed, "batch index ends inside a transaction");
    }
    const size_t key_count = index[word++];
    if (key_count > index_words - word) {
      return Reject(ConflictReject::kMalformed, "transaction key count runs past the index");
    }
    txn_first_key_[txn] = key_count_total;
    txn_tau_[txn] = tau;
    for (size_t k = 0; k < key_count; k++) {
      const uint32_t key_word = index[word++];
      const uint32_t length = key_word & ~conflict_key_shared_bit;
      if (length > conflict_key_bytes_max) {
        return Reject(ConflictReject::kMalformed, "key is longer than conflict_key_bytes_max");
      }
      if (length > byte_count - offset) {
        return Reject(ConflictReject::kMalformed, "key runs past the batch's key bytes");
      }
      if (key_count_total == keys_.size()) keys_.resize(std::max<size_t>(64, keys_.size() * 2));
      keys_[key_count_total++] = KeyRef{offset, length, (key_word & conflict_key_shared_bit) != 0};
      offset += length;
    }
  }
  if (word != index_words) {
    return Reject(ConflictReject::kMalformed, "batch index has words after its last transaction");
  }
  if (offset != byte_count) {
    return Reject(ConflictReject::kMalformed, "batch key bytes do not add up");
  }
  txn_first_key_[txn_count] = key_count_total;
  if (key_hash_.size() < keys_.size()) key_hash_.resize(keys_.size());
  const ByteView bytes = key_bytes.sub(0, byte_count);
  for (size_t k = 0; k < key_count_total; k++) {
    key_hash_[k] = ConflictKeyHash(bytes.sub(keys_[k].offset, keys_[k].length));
  }
  return ConflictStatus::Ok();
}

ConflictVerdict ConflictTable::CheckKey(const Entry& entry, bool shared, int64_t tau_start,
                                        int64_t* tau) const {
  if (entry.write_tau > tau_start) {
    *tau = entry.write_tau;
    return ConflictVerdict::kCommittedWrite;
  }
  if (!shared && entry.shared_tau > tau_start) {
    *tau = entry.shared_tau;
    return ConflictVerdict::kCommittedShared;
  }
  if (entry.in_flight_writes > 0) return ConflictVerdict::kInFlightWrite;
  if (!shared && entry.in_flight_shared > 0) return ConflictVerdict::kInFlightShared;
  return ConflictVerdict::kApproved;
}

ConflictStatus ConflictTable::Detect(WordView index, DoubleView taus, ByteView key_bytes,
                                     const DetectOutput& out) {
  ConflictStatus status = DecodeBatch(index, taus, key_bytes);
  if (!status.ok()) return status;
  const size_t txn_count = batch_txns_;
  if (out.verdicts.size() < txn_count || out.details.size() < txn_count ||
      out.taus.size() < txn_count) {
    return Reject(ConflictReject::kOutOfRange, "output arrays are shorter than the batch");
  }
  if (live_tickets_ + txn_count > conflict_tickets_max) {
    return Reject(ConflictReject::kOutOfRange, "batch could exceed conflict_tickets_max in flight");
  }
  // Slots of the transaction two ahead and entries of the next one are
  // fetched while this one is decided; the first ones are primed here.
  const auto txn_keys_end = [this, txn_count](size_t txn) {
    return txn_first_key_[std::min(txn, txn_count)];
  };
  PrefetchSlots(0, txn_keys_end(prefetch_slot_txns_ahead));
  for (size_t txn = 0; txn < txn_count; txn++) {
    const int64_t tau_start = txn_tau_[txn];
    const uint32_t first = txn_first_key_[txn];
    const uint32_t end = txn_first_key_[txn + 1];
    PrefetchSlots(txn_keys_end(txn + prefetch_slot_txns_ahead),
                  txn_keys_end(txn + prefetch_slot_txns_ahead + 1));
    PrefetchEntries(txn_keys_end(txn + prefetch_entry_txns_ahead),
                    txn_keys_end(txn + prefetch_entry_txns_ahead + 1));
    out.taus[txn] = 0;
    out.details[txn] = 0;
    if (tau_start < horizon_tau_) {
      out.verdicts[txn] = static_cast<uint8_t>(ConflictVerdict::kTooOld);
      continue;
    }
    if (found_.size() < end - first) found_.resize(end - first);
    ConflictVerdict verdict = ConflictVerdict::kApproved;
    int64_t conflict_tau = 0;
    uint32_t conflict_key = 0;
    // Written keys first, then shared keys, as the twin does.
    bool any_shared = false;
    for (uint32_t k = first; k < end; k++) {
      if (keys_[k].shared) {
        any_shared = true;
        continue;
      }
      verdict = Check(k, key_bytes, tau_start, &found_[k - first], &conflict_tau);
      if (verdict != ConflictVerdict::kApproved) {
        conflict_key = k - first;
        break;
      }
    }
    if (verdict == ConflictVerdict::kApproved && any_shared) {
      for (uint32_t k = first; k < end; k++) {
        if (!keys_[k].shared) continue;
        verdict = Check(k, key_bytes, tau_start, &found_[k - first], &conflict_tau);
        if (verdict != ConflictVerdict::kApproved) {
          conflict_key = k - first;
          break;
        }
      }
    }
    out.verdicts[txn] = static_cast<uint8_t>(verdict);
    if (verdict != ConflictVerdict::kApproved) {
      out.details[txn] = conflict_key;
      if (verdict == ConflictVerdict::kCommittedWrite ||
          verdict == ConflictVerdict::kCommittedShared) {
        out.taus[txn] = static_cast<double>(conflict_tau);
      }
      continue;
    }
    const uint32_t ticket = AllocateTicket(tau_start);
    std::vector<uint32_t>& refs = tickets_[ticket].refs;
    for (uint32_t k = first; k < end; k++) {
      const KeyRef& key = keys_[k];
      uint32_t entry = found_[k - first];
      if (entry == entry_none) {
        // Absent when checked; an earlier key of this transaction with the
        // same hash may have been this very key, inserted since.
        bool maybe_inserted = false;
        for (uint32_t before = first; before < k; before++) {
          maybe_inserted |= key_hash_[before] == key_hash_[k];
        }
        const ByteView bytes = key_bytes.sub(key.offset, key.length);
        entry = maybe_inserted ? FindOrInsert(bytes, key_hash_[k]) : Insert(bytes, key_hash_[k]);
      }
      Entry& e = entries_[entry];
      if (key.shared) {
        e.in_flight_shared++;
      } else {
        e.in_flight_writes++;
      }
      refs.push_back(entry << 1 | (key.shared ? 1u : 0u));
    }
    out.details[txn] = ticket;
  }
  return ConflictStatus::Ok();
}

// Looks key k up for a transaction starting at `tau_start`: stores its entry
// (or entry_none) in *found and returns its verdict, with the conflicting
// commit's tau in *tau for committed verdicts.
ConflictVerdict ConflictTable::Check(uint32_t k, ByteView key_bytes, int64_t tau_start,
                                     uint32_t* found, int64_t* tau) const {
  const KeyRef& key = keys_[k];
  const uint32_t entry = Find(key_bytes.sub(key.offset, key.length), key_hash_[k]);
  *found = entry;
  if (entry == entry_none) return ConflictVerdict::kApproved;
  return CheckKey(entries_[entry], key.shared, tau_start, tau);
}

// Starts loading the home slot line of keys [first_key, end_key).
void ConflictTable::PrefetchSlots(uint32_t first_key, uint32_t end_key) const {
  for (uint32_t k = first_key; k < end_key; k++) Prefetch(&slots_[key_hash_[k] & slot_mask_]);
}

// Starts loading the entry that the home slot of keys [first_key, end_key)
// names when its hash matches (the slot line was prefetched earlier).
void ConflictTable::PrefetchEntries(uint32_t first_key, uint32_t end_key) const {
  for (uint32_t k = first_key; k < end_key; k++) {
    const Slot& slot = slots_[key_hash_[k] & slot_mask_];
    if (slot.entry != slot_empty && slot.hash == key_hash_[k]) Prefetch(&entries_[slot.entry]);
  }
}

ConflictStatus ConflictTable::Register(WordView index, DoubleView taus, ByteView key_bytes) {
  ConflictStatus status = DecodeBatch(index, taus, key_bytes);
  if (!status.ok()) return status;
  for (size_t txn = 0; txn < batch_txns_; txn++) {
    const int64_t tau = txn_tau_[txn];
    if (tau <= horizon_tau_) continue;
    for (uint32_t k = txn_first_key_[txn]; k < txn_first_key_[txn + 1]; k++) {
      const KeyRef& key = keys_[k];
      const uint32_t entry = FindOrInsert(key_bytes.sub(key.offset, key.length), key_hash_[k]);
      Record(entry, key.shared, tau);
    }
  }
  return ConflictStatus::Ok();
}

ConflictStatus ConflictTable::CheckTickets(WordView tickets, size_t count) {
  if (count > tickets.size()) {
    return Reject(ConflictReject::kOutOfRange, "count exceeds the tickets array");
  }
  call_mark_++;
  if (call_mark_ == 0) {
    for (Ticket& ticket : tickets_) ticket.mark = 0;
    call_mark_ = 1;
  }
  for (size_t i = 0; i < count; i++) {
    const uint32_t id = tickets[i];
    if (id >= tickets_.size() || !tickets_[id].live) {
      return Reject(ConflictReject::kOutOfRange,
                    "ticket " + std::to_string(id) + " is not in flight");
    }
    if (tickets_[id].mark == call_mark_) {
      return Reject(ConflictReject::kOutOfRange,
                    "ticket " + std::to_string(id) + " is named twice");
    }
    tickets_[id].mark = call_mark_;
  }
  return ConflictStatus::Ok();
}

ConflictStatus ConflictTable::CommitBatch(WordView tickets, DoubleView taus, size_t count) {
  if (count > taus.size())
    return Reject(ConflictReject::kOutOfRange, "count exceeds the taus array");
  ConflictStatus status = CheckTickets(tickets, count);
  if (!status.ok()) return status;
  for (size_t i = 0; i < count; i++) {
    int64_t tau = 0;
    if (!TauFromDouble(taus[i], &tau)) {
      return Reject(ConflictReject::kOutOfRange, "tau_commit is not an integer in range");
    }
    if (tau <= tickets_[tickets[i]].tau_start) {
      return Reject(ConflictReject::kOutOfRange, "tau_commit is not after the ticket's tau_start");
    }
  }
  for (size_t i = 0; i < count; i++) {
    const uint32_t id = tickets[i];
    const int64_t tau = static_cast<int64_t>(taus[i]);
    for (const uint32_t ref : tickets_[id].refs) {
      const uint32_t entry = ref >> 1;
      const bool shared = (ref & 1) != 0;
      Entry& e = entries_[entry];
      uint32_t& count_ref = shared ? e.in_flight_shared : e.in_flight_writes;
      ORDO_ASSERT(count_ref > 0);
      count_ref--;
      Record(entry, shared, tau);
    }
    FreeTicket(id);
  }
  return ConflictStatus::Ok();
}

ConflictStatus ConflictTable::AbortBatch(WordView tickets, size_t count) {
  ConflictStatus status = CheckTickets(tickets, count);
  if (!status.ok()) return status;
  for (size_t i = 0; i < count; i++) {
    const uint32_t id = tickets[i];
    for (const uint32_t ref : tickets_[id].refs) {
      const uint32_t entry = ref >> 1;
      Entry& e = entries_[entry];
      uint32_t& count_ref = (ref & 1) != 0 ? e.in_flight_shared : e.in_flight_writes;
      ORDO_ASSERT(count_ref > 0);
      count_ref--;
      DropIfEmpty(entry);
    }
    FreeTicket(id);
  }
  if (arena_garbage_ > arena_garbage_bytes_min && arena_garbage_ > arena_.size() / 2)
    CompactArena();
  return ConflictStatus::Ok();
}

ConflictStatus ConflictTable::ForgetBefore(double horizon_value) {
  int64_t horizon = 0;
  if (!TauFromDouble(horizon_value, &horizon)) {
    return Reject(ConflictReject::kOutOfRange, "horizon is not an integer in range");
  }
  if (horizon < horizon_tau_) {
    return Reject(ConflictReject::kOutOfRange, "horizon moves backwards");
  }
  horizon_tau_ = horizon;
  // In tau order, so a run of records is dropped walking memory forwards,
  // with the entries and slots they name fetched ahead.
  size_t ahead = 1;
  while (!history_.empty() && history_.front().tau <= horizon) {
    const size_t size = history_.size();
    for (; ahead < size && ahead <= prefetch_forget_entry_ahead; ahead++) {
      Prefetch(&entries_[history_.peek(ahead).entry]);
    }
    if (prefetch_forget_slot_ahead < size)
      PrefetchForget(history_.peek(prefetch_forget_slot_ahead));
    const uint32_t entry = history_.front().entry;
    history_.pop();
    ahead--;
    Forget(entry, horizon);
  }
  while (!heap_.empty() && heap_[0].tau <= horizon) {
    const uint32_t entry = heap_[0].entry;
    HeapPop();
    Forget(entry, horizon);
  }
  if (arena_garbage_ > arena_garbage_bytes_min && arena_garbage_ > arena_.size() / 2)
    CompactArena();
  return ConflictStatus::Ok();
}

// Applies a horizon to the entry a history record names. A stale record may
// name a freed or reused entry: the rule below is right for any key at this
// horizon, and freed entries are skipped.
void ConflictTable::Forget(uint32_t entry, int64_t horizon) {
  Entry& e = entries_[entry];
  if (!e.live) return;
  if (e.write_tau <= horizon) e.write_tau = tau_none;
  if (e.shared_tau <= horizon) e.shared_tau = tau_none;
  DropIfEmpty(entry);
}

// Starts loading the home slot of a record's entry (prefetched earlier), the
// line a drop will probe.
void ConflictTable::PrefetchForget(const HeapItem& item) const {
  const Entry& e = entries_[item.entry];
  Prefetch(&slots_[e.hash & slot_mask_]);
}

void ConflictTable::Record(uint32_t entry, bool shared, int64_t tau) {
  Entry& e = entries_[entry];
  int64_t& slot = shared ? e.shared_tau : e.write_tau;
  slot = std::max(slot, tau);
  if (history_.empty() || history_.back().tau <= tau) {
    history_.push(HeapItem{tau, entry});
  } else {
    HeapPush(HeapItem{tau, entry});
  }
}

bool ConflictTable::EntryHasKey(const Entry& e, ByteView key, uint32_t hash) const {
  if (e.hash != hash || e.key_length != key.size()) return false;
  if (e.key_length <= conflict_inline_key_bytes_max) {
    return KeysEqual(key, ByteView::FromRaw(e.key, e.key_length));
  }
  uint64_t offset = 0;
  std::memcpy(&offset, e.key, sizeof offset);
  return KeysEqual(key, ByteView::FromRaw(arena_.data() + offset, e.key_length));
}

uint32_t ConflictTable::Find(ByteView key, uint32_t hash) const {
  for (size_t at = hash & slot_mask_;; at = (at + 1) & slot_mask_) {
    const Slot& slot = slots_[at];
    if (slot.entry == slot_empty) return entry_none;
    if (slot.hash != hash) continue;
    if (EntryHasKey(entries_[slot.entry], key, hash)) return slot.entry;
  }
}

uint32_t ConflictTable::FindOrInsert(ByteView key, uint32_t hash) {
  const uint32_t existing = Find(key, hash);
  if (existing != entry_none) return existing;
  return Insert(key, hash);
}

// Adds `key`, which must be absent, with no history and nothing in flight.
uint32_t ConflictTable::Insert(ByteView key, uint32_t hash) {
  if ((live_entries_ + 1) * 8 > slots_.size() * slots_load_eighths_max) Grow();
  uint32_t entry;
  if (!free_entries_.empty()) {
    entry = free_entries_.back();
    free_entries_.pop_back();
  } else {
    ORDO_ASSERT(entries_.size() < entry_none >> 1);
    entry = static_cast<uint32_t>(entries_.size());
    entries_.push_back(Entry{});
  }
  Entry& e = entries_[entry];
  e.write_tau = tau_none;
  e.shared_tau = tau_none;
  e.in_flight_writes = 0;
  e.in_flight_shared = 0;
  e.hash = hash;
  e.key_length = static_cast<uint32_t>(key.size());
  e.live = true;
  if (key.size() <= conflict_inline_key_bytes_max) {
    CopyKey(key, e.key);
  } else {
    const uint64_t offset = arena_.size();
    arena_.resize(arena_.size() + key.size());
    CopyKey(key, arena_.data() + offset);
    std::memcpy(e.key, &offset, sizeof offset);
  }
  size_t at = hash & slot_mask_;
  while (slots_[at].entry != slot_empty) at = (at + 1) & slot_mask_;
  slots_[at] = Slot{hash, entry};
  live_entries_++;
  return entry;
}

void ConflictTable::DropIfEmpty(uint32_t entry) {
  Entry& e = entries_[entry];
  ORDO_ASSERT(e.live);
  if (e.write_tau != tau_none || e.shared_tau != tau_none || e.in_flight_writes != 0 ||
      e.in_flight_shared != 0) {
    return;
  }
  RemoveSlot(entry);
  if (e.key_length > conflict_inline_key_bytes_max) arena_garbage_ += e.key_length;
  e.live = false;
  free_entries_.push_back(entry);
  live_entries_--;
}

// Backward-shift deletion: later slots of the probe run move up so no
// tombstones are needed.
void ConflictTable::RemoveSlot(uint32_t entry) {
  size_t hole = entries_[entry].hash & slot_mask_;
  while (slots_[hole].entry != entry) {
    ORDO_ASSERT(slots_[hole].entry != slot_empty);
    hole = (hole + 1) & slot_mask_;
  }
  size_t at = hole;
  for (;;) {
    at = (at + 1) & slot_mask_;
    const Slot slot = slots_[at];
    if (slot.entry == slot_empty) break;
    const size_t home = slot.hash & slot_mask_;
    // Move the slot into the hole unless its home lies cyclically in (hole, at].
    const bool home_after_hole =
        hole <= at ? (home > hole && home <= at) : (home > hole || home <= at);
    if (home_after_hole) continue;
    slots_[hole] = slot;
    hole = at;
  }
  slots_[hole] = Slot{0, slot_empty};
}

void ConflictTable::Grow() {
  std::vector<Slot> old;
  old.swap(slots_);
  slots_.assign(old.size() * 2, Slot{0, slot_empty});
  slot_mask_ = slots_.size() - 1;
  for (const Slot& slot : old) {
    if (slot.entry == slot_empty) continue;
    size_t at = slot.hash & slot_mask_;
    while (slots_[at].entry != slot_empty) at = (at + 1) & slot_mask_;
    slots_[at] = slot;
  }
}

void ConflictTable::CompactArena() {
  std::vector<uint8_t> fresh;
  fresh.reserve(arena_.size() - arena_garbage_ + arena_.size() / 4);
  for (Entry& e : entries_) {
    if (!e.live || e.key_length <= conflict_inline_key_bytes_max) continue;
    uint64_t offset = 0;
    std::memcpy(&offset, e.key, sizeof offset);
    const uint64_t moved = fresh.size();
    fresh.insert(fresh.end(), arena_.begin() + static_cast<std::ptrdiff_t>(offset),
                 arena_.begin() + static_cast<std::ptrdiff_t>(offset + e.key_length));
    std::memcpy(e.key, &moved, sizeof moved);
  }
  arena_.swap(fresh);
  arena_garbage_ = 0;
}

void ConflictTable::HistoryRing::push(HeapItem item) {
  if (count_ == items_.size()) {
    // Grow, unrolling the ring into the front of a twice larger one.
    std::vector<HeapItem> grown(std::max(history_ring_initial, items_.size() * 2));
    for (size_t i = 0; i < count_; i++) grown[i] = items_[(head_ + i) & mask_];
    items_.swap(grown);
    head_ = 0;
    mask_ = items_.size() - 1;
  }
  ORDO_ASSERT(count_ == 0 || back().tau <= item.tau);
  items_[(head_ + count_) & mask_] = item;
  count_++;
}

void ConflictTable::HistoryRing::pop() {
  ORDO_ASSERT(count_ > 0);
  head_ = (head_ + 1) & mask_;
  count_--;
}

void ConflictTable::HeapPush(HeapItem item) {
  heap_.push_back(item);
  size_t at = heap_.size() - 1;
  while (at > 0) {
    const size_t parent = (at - 1) / 2;
    if (heap_[parent].tau <= item.tau) break;
    heap_[at] = heap_[parent];
    at = parent;
  }
  heap_[at] = item;
}

void ConflictTable::HeapPop() {
  ORDO_ASSERT(!heap_.empty());
  const HeapItem last = heap_.back();
  heap_.pop_back();
  if (heap_.empty()) return;
  size_t at = 0;
  const size_t size = heap_.size();
  for (;;) {
    const size_t left = at * 2 + 1;
    if (left >= size) break;
    size_t least = left;
    if (left + 1 < size && heap_[left + 1].tau < heap_[left].tau) least = left + 1;
    if (heap_[least].tau >= last.tau) break;
    heap_[at] = heap_[least];
    at = least;
  }
  heap_[at] = last;
}

uint32_t ConflictTable::AllocateTicket(int64_t tau_start) {
  uint32_t id;
  if (!free_tickets_.empty()) {
    id = free_tickets_.back();
    free_tickets_.pop_back();
  } else {
    id = static_cast<uint32_t>(tickets_.size());
    tickets_.push_back(Ticket{0, 0, false, {}});
  }
  Ticket& ticket = tickets_[id];
  ORDO_ASSERT(!ticket.live && ticket.refs.empty());
  ticket.tau_start = tau_start;
  ticket.live = true;
  live_tickets_++;
  return id;
}

void ConflictTable::FreeTicket(uint32_t id) {
  Ticket& ticket = tickets_[id];
  ORDO_ASSERT(ticket.live);
  ticket.live = false;
  ticket.refs.clear();  // keeps its capacity for the next transaction
  free_tickets_.push_back(id);
  live_tickets_--;
}

}  // namespace ordo
