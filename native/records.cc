// Journal record batches (see records.h): checks first, then writes; every
// offset of a decoded buffer is bounds-checked against the bytes actually
// present before it is used, and the checksum comes from native/crc32c.cc
// (the SSE4.2 instruction where the CPU has it).
#include "records.h"

#include <algorithm>
#include <cstring>

#include "crc32c.h"

namespace ordo {
namespace {

constexpr size_t payload_type_offset = 0;
constexpr size_t payload_tau_commit_offset = 1;
constexpr size_t payload_txn_id_offset = 9;
constexpr size_t payload_tau_start_offset = 25;
constexpr size_t payload_body_length_offset = 33;
constexpr size_t record_block_bytes_min = 4096;

void PutU32(MutableSpan<uint8_t> out, size_t at, uint32_t value) {
  for (size_t i = 0; i < 4; i++) out[at + i] = static_cast<uint8_t>(value >> (8 * i));
}

void PutI64(MutableSpan<uint8_t> out, size_t at, int64_t value) {
  const uint64_t bits = static_cast<uint64_t>(value);
  for (size_t i = 0; i < 8; i++) out[at + i] = static_cast<uint8_t>(bits >> (8 * i));
}

void PutBytes(MutableSpan<uint8_t> out, size_t at, ByteView bytes) {
  const size_t size = bytes.size();
  if (size == 0) return;
  ORDO_ASSERT(at <= out.size() && size <= out.size() - at);
  // Eight bytes at a time through the views' checked accessors; a caller may
  // hand in a view of a block this encoder lent out, so never memcpy ranges.
  uint8_t* dst = &out[at];
  size_t i = 0;
  for (; i + 8 <= size; i += 8) {
    const uint64_t word = bytes.u64(i);
    std::memcpy(dst + i, &word, sizeof word);
  }
  for (; i < size; i++) dst[i] = bytes.at(i);
}

int64_t GetI64(ByteView bytes, size_t at) {
  const uint64_t lo = bytes.u32le(at);
  const uint64_t hi = bytes.u32le(at + 4);
  return static_cast<int64_t>(lo | (hi << 32));
}

bool TauCommitInRange(int64_t tau) { return tau > 0 && tau <= record_tau_max; }
bool TauStartInRange(int64_t tau) { return tau >= 0 && tau <= record_tau_max; }

}  // namespace

RecordBlock::RecordBlock(size_t capacity) : bytes_(new uint8_t[capacity]), capacity_(capacity) {
  ORDO_ASSERT(capacity > 0);
}

size_t RecordBytes(size_t body_length) {
  ORDO_ASSERT(body_length <= record_body_bytes_max);
  return record_header_bytes + record_payload_fixed_bytes + body_length;
}

RecordInputError CheckRecordInput(const RecordInput& input) {
  if (input.txn_id.size() != record_txn_id_bytes) return RecordInputError::kTxnIdLength;
  if (input.body.size() > record_body_bytes_max) return RecordInputError::kBodyTooLarge;
  if (!TauCommitInRange(input.tau_commit)) return RecordInputError::kTauCommitRange;
  if (!TauStartInRange(input.tau_start)) return RecordInputError::kTauStartRange;
  return RecordInputError::kNone;
}

void EncodeRecord(const RecordInput& input, MutableSpan<uint8_t> out, size_t at) {
  ORDO_ASSERT(CheckRecordInput(input) == RecordInputError::kNone);
  const size_t bytes = RecordBytes(input.body.size());
  ORDO_ASSERT(at <= out.size() && bytes <= out.size() - at);
  const uint32_t payload_length =
      static_cast<uint32_t>(record_payload_fixed_bytes + input.body.size());
  const size_t p = at + record_header_bytes;
  PutU32(out, at, payload_length);
  out[p + payload_type_offset] = record_type_commit;
  PutI64(out, p + payload_tau_commit_offset, input.tau_commit);
  PutBytes(out, p + payload_txn_id_offset, input.txn_id);
  PutI64(out, p + payload_tau_start_offset, input.tau_start);
  PutU32(out, p + payload_body_length_offset, static_cast<uint32_t>(input.body.size()));
  PutBytes(out, p + record_payload_fixed_bytes, input.body);
  // The CRC covers the length field and the payload, read back from `out`.
  const ByteView written = ByteView::FromRaw(&out[at], bytes);
  const uint32_t crc =
      Crc32c(written.sub(record_header_bytes, payload_length), Crc32c(written.sub(0, 4), 0));
  PutU32(out, at + 4, crc);
}

RecordBatchEncoder::RecordBatchEncoder(size_t initial_bytes)
    : block_(std::make_shared<RecordBlock>(std::max(initial_bytes, size_t{1}))) {}

RecordInputError RecordBatchEncoder::Encode(const std::vector<RecordInput>& inputs) {
  size_ = 0;
  if (inputs.size() > record_batch_records_max) return RecordInputError::kTooManyRecords;
  size_t total = 0;
  for (const RecordInput& input : inputs) {
    const RecordInputError error = CheckRecordInput(input);
    if (error != RecordInputError::kNone) return error;
    total += RecordBytes(input.body.size());
    if (total > record_batch_bytes_max) return RecordInputError::kBatchTooLarge;
  }
  if (total > block_->capacity()) {
    size_t capacity = std::max(block_->capacity(), record_block_bytes_min);
    while (capacity < total) capacity = std::min(capacity * 2, record_batch_bytes_max);
    block_ = std::make_shared<RecordBlock>(capacity);
    generation_++;
  }
  const MutableSpan<uint8_t> out = block_->span();
  size_t at = 0;
  for (const RecordInput& input : inputs) {
    EncodeRecord(input, out, at);
    at += RecordBytes(input.body.size());
  }
  ORDO_ASSERT(at == total);
  size_ = total;
  return RecordInputError::kNone;
}

RecordInputError SealRecords(MutableSpan<uint8_t> staged, size_t count) {
  if (count > record_batch_records_max) return RecordInputError::kTooManyRecords;
  const size_t size = staged.size();
  if (size > record_batch_bytes_max) return RecordInputError::kBatchTooLarge;
  const ByteView bytes = size == 0 ? ByteView() : ByteView::FromRaw(&staged[0], size);
  // First pass: every check, so a refused batch changes nothing.
  size_t at = 0;
  for (size_t i = 0; i < count; i++) {
    if (size - at < record_header_bytes + record_payload_fixed_bytes) {
      return RecordInputError::kStagedMalformed;
    }
    const uint32_t length = bytes.u32le(at);
    if (length < record_payload_fixed_bytes || length > record_payload_bytes_max ||
        size - at - record_header_bytes < length) {
      return RecordInputError::kStagedMalformed;
    }
    const ByteView payload = bytes.sub(at + record_header_bytes, length);
    if (payload.at(payload_type_offset) != record_type_commit ||
        payload.u32le(payload_body_length_offset) != length - record_payload_fixed_bytes) {
      return RecordInputError::kStagedMalformed;
    }
    if (!TauCommitInRange(GetI64(payload, payload_tau_commit_offset))) {
      return RecordInputError::kTauCommitRange;
    }
    if (!TauStartInRange(GetI64(payload, payload_tau_start_offset))) {
      return RecordInputError::kTauStartRange;
    }
    at += record_header_bytes + length;
  }
  if (at != size) return RecordInputError::kStagedMalformed;
  // Second pass: the CRC covers the length field and the payload.
  at = 0;
  for (size_t i = 0; i < count; i++) {
    const uint32_t length = bytes.u32le(at);
    const uint32_t crc =
        Crc32c(bytes.sub(at + record_header_bytes, length), Crc32c(bytes.sub(at, 4), 0));
    PutU32(staged, at + 4, crc);
    at += record_header_bytes + length;
  }
  ORDO_ASSERT(at == size);
  return RecordInputError::kNone;
}

DecodeOutcome DecodeRecords(ByteView buffer, int64_t last_tau, MutableSpan<DecodedRecord> out) {
  ORDO_ASSERT(TauStartInRange(last_tau));
  DecodeOutcome outcome{0, 0, RecordError::kNone, 0, false, last_tau};
  size_t at = 0;
  const size_t size = buffer.size();
  while (at < size) {
    if (outcome.count == out.size()) {
      outcome.output_full = true;
      break;
    }
    if (size - at < record_header_bytes) {
      outcome.error = RecordError::kShort;
      outcome.need = record_header_bytes;
      break;
    }
    const uint32_t length = buffer.u32le(at);
    if (length < record_payload_fixed_bytes || length > record_payload_bytes_max) {
      outcome.error = RecordError::kLength;
      break;
    }
    const size_t need = record_header_bytes + length;
    if (size - at < need) {
      outcome.error = RecordError::kShort;
      outcome.need = need;
      break;
    }
    const ByteView record = buffer.sub(at, need);
    const ByteView payload = record.sub(record_header_bytes, length);
    if (record.u32le(4) != Crc32c(payload, Crc32c(record.sub(0, 4), 0))) {
      outcome.error = RecordError::kChecksum;
      break;
    }
    if (payload.at(payload_type_offset) != record_type_commit) {
      outcome.error = RecordError::kType;
      break;
    }
    if (payload.u32le(payload_body_length_offset) != length - record_payload_fixed_bytes) {
      outcome.error = RecordError::kBodyLength;
      break;
    }
    const int64_t tau_commit = GetI64(payload, payload_tau_commit_offset);
    const int64_t tau_start = GetI64(payload, payload_tau_start_offset);
    if (!TauCommitInRange(tau_commit)) {
      outcome.error = RecordError::kTauCommitRange;
      break;
    }
    if (!TauStartInRange(tau_start)) {
      outcome.error = RecordError::kTauStartRange;
      break;
    }
    if (tau_commit <= outcome.last_tau) {
      outcome.error = RecordError::kTauNotIncreasing;
      break;
    }
    out[outcome.count] = DecodedRecord{at, length, tau_commit, tau_start};
    outcome.count++;
    outcome.last_tau = tau_commit;
    at += need;
  }
  outcome.consumed = at;
  ORDO_ASSERT(outcome.consumed <= size);
  ORDO_ASSERT(outcome.count <= out.size());
  ORDO_ASSERT(outcome.error != RecordError::kShort || outcome.need > size - at);
  return outcome;
}

}  // namespace ordo
