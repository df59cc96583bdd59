// libFuzzer harness for journal record batches (native/records.h): any byte
// string must decode without a crash or an out-of-bounds read (ASan and
// UBSan are on) and stop at a well-defined place; every record it accepts,
// re-encoded by RecordBatchEncoder, must give back exactly the bytes it came
// from (so the decoder accepts nothing the encoder would not write); the
// consumed prefix must decode again to the same records with no error; and
// the hardware CRC32C must agree with the table path. Built and run by
// scripts/native-fuzz.sh.
#include <cstddef>
#include <cstdint>
#include <algorithm>
#include <cstdlib>
#include <memory>
#include <vector>

#include "../crc32c.h"
#include "../records.h"
#include "../span.h"

namespace {

constexpr size_t fuzz_records_max = 64;

void Require(bool condition) {
  if (!condition) std::abort();
}

// Decodes `buffer` and checks everything the decoder promises about it.
void CheckDecode(ordo::ByteView buffer, int64_t last_tau, size_t room) {
  using namespace ordo;
  std::vector<DecodedRecord> records(room);
  const DecodeOutcome outcome =
      DecodeRecords(buffer, last_tau, MutableSpan<DecodedRecord>::FromRaw(records.data(), room));
  Require(outcome.consumed <= buffer.size());
  Require(outcome.count <= room);
  Require(outcome.output_full == (outcome.count == room && outcome.consumed < buffer.size()));
  Require(outcome.error != RecordError::kShort ||
          outcome.need > buffer.size() - outcome.consumed);
  if (outcome.error == RecordError::kNone && !outcome.output_full) {
    Require(outcome.consumed == buffer.size());
  }

  // Re-encode what was accepted: the bytes must come back exactly.
  std::vector<RecordInput> inputs;
  int64_t previous = last_tau;
  size_t end = 0;
  for (size_t i = 0; i < outcome.count; i++) {
    const DecodedRecord& r = records[i];
    Require(r.offset == end);
    Require(r.tau_commit > previous);
    previous = r.tau_commit;
    const ByteView payload = buffer.sub(r.offset + record_header_bytes, r.payload_length);
    inputs.push_back(RecordInput{r.tau_commit, payload.sub(9, record_txn_id_bytes), r.tau_start,
                                 payload.from(record_payload_fixed_bytes)});
    end = r.offset + record_header_bytes + r.payload_length;
  }
  Require(end == outcome.consumed);
  Require(outcome.last_tau == previous);
  RecordBatchEncoder encoder(1 + buffer.size() % 512);
  Require(encoder.Encode(inputs) == RecordInputError::kNone);
  const ByteView encoded = encoder.view();
  Require(encoded.size() == outcome.consumed);
  for (size_t i = 0; i < encoded.size(); i++) Require(encoded.at(i) == buffer.at(i));

  // The consumed prefix decodes again to the same records, with no error.
  std::vector<DecodedRecord> again(room);
  const DecodeOutcome prefix = DecodeRecords(buffer.sub(0, outcome.consumed), last_tau,
                                             MutableSpan<DecodedRecord>::FromRaw(again.data(), room));
  Require(prefix.count == outcome.count && prefix.consumed == outcome.consumed);
  Require(prefix.error == RecordError::kNone);
}

// Structured mode: the input describes records (a body length byte, then
// that many body bytes, which also feed the taus and txn id), the encoder
// writes them with valid checksums, and the last three input bytes damage
// the result (flip a byte, cut it short, or leave it whole) before decoding.
// This reaches the checks behind the CRC that random bytes rarely pass.
void CheckStructured(ordo::ByteView spec, int64_t last_tau, size_t room) {
  using namespace ordo;
  if (spec.size() < 3) return;
  const ByteView damage = spec.from(spec.size() - 3);
  ByteView rest = spec.sub(0, spec.size() - 3);
  std::vector<RecordInput> inputs;
  int64_t tau = last_tau;
  while (!rest.empty() && inputs.size() < fuzz_records_max) {
    const size_t body_length = std::min<size_t>(rest.at(0), rest.size() - 1);
    const ByteView body = rest.sub(1, body_length);
    // Mostly increasing taus; a zero step makes a record the decoder must refuse.
    tau += body_length == 0 ? 0 : 1 + (body.at(0) & 0x3);
    if (tau < 1) tau = 1;
    const ByteView txn_id = spec.size() >= record_txn_id_bytes ? spec.sub(0, record_txn_id_bytes)
                                                               : ByteView();
    if (txn_id.size() != record_txn_id_bytes) return;
    inputs.push_back(RecordInput{tau, txn_id, tau / 2, body});
    rest = rest.from(1 + body_length);
  }
  RecordBatchEncoder encoder(64);
  Require(encoder.Encode(inputs) == RecordInputError::kNone);
  std::vector<uint8_t> bytes(encoder.size());
  for (size_t i = 0; i < bytes.size(); i++) bytes[i] = encoder.view().at(i);
  if (!bytes.empty()) {
    const size_t at = (static_cast<size_t>(damage.at(0)) << 8 | damage.at(1)) % bytes.size();
    switch (damage.at(2) & 0x3) {
      case 0:
        bytes[at] ^= static_cast<uint8_t>(1 + (damage.at(2) >> 2));
        break;
      case 1:
        bytes.resize(at);
        break;
      default:
        break;
    }
  }
  const std::unique_ptr<uint8_t[]> exact(new uint8_t[bytes.empty() ? 1 : bytes.size()]);
  for (size_t i = 0; i < bytes.size(); i++) exact[i] = bytes[i];
  CheckDecode(ByteView::FromRaw(exact.get(), bytes.size()), last_tau, room);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ordo;
  const ByteView input = ByteView::FromRaw(size == 0 ? nullptr : data, size);
  Require(Crc32c(input, 0) == Crc32cTable(input, 0));
  Require(Crc32c(input, 0xFFFFFFFFu) == Crc32cTable(input, 0xFFFFFFFFu));
  if (size == 0) return 0;

  // The first byte picks the mode, the starting tau and the index room.
  const uint8_t control = input.at(0);
  const int64_t last_tau = static_cast<int64_t>(control & 0x07);
  const size_t room = 1 + (control >> 4 & 0x07) * 9;
  if ((control & 0x08) != 0) {
    CheckStructured(input.from(1), last_tau, room);
  } else {
    CheckDecode(input.from(1), last_tau, room);
  }
  return 0;
}
