// Journal commit records (docs/journal.md) encoded and decoded a batch at a
// time, as a pure C++ core with no N-API, so the sanitizer build and a fuzzer
// drive it directly; native/addon.cc is its N-API door and
// src/journal/record-buffer.ts holds the TypeScript twin.
//
// Record: u32 length | u32 crc32c | payload (length bytes), where
//   payload = u8 type (1) | i64 tau_commit | 16-byte txn_id | i64 tau_start |
//             u32 body_length | body
// and the CRC32C runs over the 4 length bytes followed by the payload.
//
// RecordBatchEncoder writes a whole group-commit batch into a buffer it owns
// (outside the V8 heap); the buffer is a shared block, so the addon can lend
// it to JavaScript as an external ArrayBuffer that keeps the block alive even
// after the encoder moved on to a larger one. DecodeRecords validates a buffer
// of records in one call and reports their positions and taus; it stops at
// the first record it rejects, in the same order of checks as the TypeScript
// decoder (src/journal/record.ts decodeRecord), so the "last good offset" of
// a torn tail is the same whichever engine found it.
#ifndef ORDO_NATIVE_RECORDS_H_
#define ORDO_NATIVE_RECORDS_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "span.h"

namespace ordo {

constexpr size_t record_header_bytes = 8;
constexpr uint8_t record_type_commit = 1;
constexpr size_t record_txn_id_bytes = 16;
// type + tau_commit + txn_id + tau_start + body_length.
constexpr size_t record_payload_fixed_bytes = 1 + 8 + record_txn_id_bytes + 8 + 4;
constexpr uint32_t record_body_bytes_max = 32u * 1024u * 1024u;
constexpr uint32_t record_payload_bytes_max = record_payload_fixed_bytes + record_body_bytes_max;
// Taus are integers in [0, record_tau_max] (a JS safe integer).
constexpr int64_t record_tau_max = (int64_t{1} << 53) - 1;
// Bounds on one encoded batch.
constexpr size_t record_batch_bytes_max = 1024u * 1024u * 1024u;
constexpr size_t record_batch_records_max = 1u << 20;

static_assert(record_payload_fixed_bytes == 37, "docs/journal.md commit_payload_fixed_bytes");
static_assert(record_batch_bytes_max >= record_header_bytes + record_payload_bytes_max,
              "a batch must hold the largest record");

// Why decoding stopped. Values cross the N-API boundary and are mirrored by
// record_decode_error_codes in src/journal/record-buffer.ts.
enum class RecordError : uint32_t {
  kNone = 0,
  kShort = 1,             // fewer bytes than the record needs: torn, or read more
  kLength = 2,            // length below the fixed payload or above the bound
  kChecksum = 3,          // CRC32C mismatch
  kType = 4,              // unknown record type
  kBodyLength = 5,        // body_length != length - fixed payload
  kTauCommitRange = 6,    // tau_commit not in [1, record_tau_max]
  kTauStartRange = 7,     // tau_start not in [0, record_tau_max]
  kTauNotIncreasing = 8,  // tau_commit not above the previous one
};

// One record to encode; the views are read during Encode only.
struct RecordInput {
  int64_t tau_commit;
  ByteView txn_id;
  int64_t tau_start;
  ByteView body;
};

// Why an input batch was refused (before anything was written).
enum class RecordInputError : uint32_t {
  kNone = 0,
  kTooManyRecords = 1,
  kTxnIdLength = 2,
  kBodyTooLarge = 3,
  kTauCommitRange = 4,
  kTauStartRange = 5,
  kBatchTooLarge = 6,
  kStagedMalformed = 7,  // SealRecords: the staged bytes do not parse as `count` records
};

// A fixed-size block of bytes shared by the encoder and whoever borrowed it.
class RecordBlock {
 public:
  explicit RecordBlock(size_t capacity);
  RecordBlock(const RecordBlock&) = delete;
  RecordBlock& operator=(const RecordBlock&) = delete;

  size_t capacity() const { return capacity_; }
  uint8_t* data() { return bytes_.get(); }
  MutableSpan<uint8_t> span() { return MutableSpan<uint8_t>::FromRaw(bytes_.get(), capacity_); }
  ByteView view(size_t size) const {
    ORDO_ASSERT(size <= capacity_);
    return ByteView::FromRaw(bytes_.get(), size);
  }

 private:
  std::unique_ptr<uint8_t[]> bytes_;
  size_t capacity_;
};

class RecordBatchEncoder {
 public:
  // `initial_bytes` of buffer, at least one byte.
  explicit RecordBatchEncoder(size_t initial_bytes);

  // Replaces the buffer's contents with `inputs` encoded back to back. Checks
  // every input first; a refused batch leaves the buffer empty. When the batch
  // does not fit, a larger block replaces the current one (the old block lives
  // on while someone else holds it).
  RecordInputError Encode(const std::vector<RecordInput>& inputs);

  size_t size() const { return size_; }
  ByteView view() const { return block_->view(size_); }
  // The current block; a new one after an Encode that grew the buffer.
  const std::shared_ptr<RecordBlock>& block() const { return block_; }
  // Incremented each time the block is replaced.
  uint64_t generation() const { return generation_; }

 private:
  std::shared_ptr<RecordBlock> block_;
  size_t size_ = 0;
  uint64_t generation_ = 0;
};

// Seals a batch staged in final wire layout (records back to back from
// offset 0, every field written but the CRC32C slots): checks that `staged`
// holds exactly `count` records, each length field, type, body length and tau
// in bounds, then computes each record's CRC32C and writes it into its slot.
// Trusts nothing in `staged`; a refused batch is left unchanged.
RecordInputError SealRecords(MutableSpan<uint8_t> staged, size_t count);

// Bytes a record with a body of `body_length` bytes takes.
size_t RecordBytes(size_t body_length);

// Writes one record into `out`, which must be exactly RecordBytes(body) long.
// The input must already be valid (see CheckRecordInput).
void EncodeRecord(const RecordInput& input, MutableSpan<uint8_t> out, size_t at);

RecordInputError CheckRecordInput(const RecordInput& input);

// One decoded record: where it starts and what the index needs.
struct DecodedRecord {
  size_t offset;            // of the record header in the buffer
  uint32_t payload_length;  // the record's `length` field
  int64_t tau_commit;
  int64_t tau_start;
};

struct DecodeOutcome {
  size_t count;       // records written to `out`
  size_t consumed;    // end of the last good record: where decoding stopped
  RecordError error;  // why it stopped at `consumed`, or kNone
  size_t need;        // with kShort: bytes the record at `consumed` needs
  bool output_full;   // stopped only because `out` had no room
  int64_t last_tau;   // tau_commit of the last good record, or the `last_tau` given
};

// Decodes records from `buffer[0..]`. Each record's tau_commit must be above
// the previous one, the first above `last_tau` (pass 0 to only require taus
// in range). Stops at the end of the buffer (kNone), at a record it rejects,
// at a record that does not fit (kShort, with `need`), or when `out` is full.
DecodeOutcome DecodeRecords(ByteView buffer, int64_t last_tau, MutableSpan<DecodedRecord> out);

}  // namespace ordo

#endif  // ORDO_NATIVE_RECORDS_H_
