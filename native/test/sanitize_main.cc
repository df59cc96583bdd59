// Standalone driver for the pure C++ cores of native/ (crc32c, frame,
// records, crossbar, and the conflict table when ORDO_HAVE_CONFLICT_TABLE is
// defined), built by scripts/native-sanitize.sh with AddressSanitizer and
// UndefinedBehaviorSanitizer (-fno-sanitize-recover=all), so any overflow,
// use-after-free or undefined operation stops the run. It feeds each core
// edge inputs and many random and malformed buffers; the decoders must reject
// them without reading outside what they were given. Every buffer is copied
// into an exactly-sized heap block so ASan sees any read past its end.
//
// Usage: sanitize_main [iterations] [seed]
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "../crc32c.h"
#include "../crossbar.h"
#include "../frame.h"
#include "../records.h"
#include "../span.h"
#ifdef ORDO_HAVE_CONFLICT_TABLE
#include "../conflict_table.h"
#endif

namespace ordo {
namespace {

constexpr uint64_t iterations_default = 3000;
constexpr size_t random_buffer_bytes_max = 4096;

int failures = 0;

#define CHECK(condition)                                                               \
  do {                                                                                 \
    if (!(condition)) {                                                                \
      std::fprintf(stderr, "check failed: %s (%s:%d)\n", #condition, __FILE__, __LINE__); \
      failures++;                                                                      \
    }                                                                                  \
  } while (0)

// splitmix64: deterministic per seed.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  size_t Below(size_t bound) { return bound == 0 ? 0 : static_cast<size_t>(Next() % bound); }
  uint8_t Byte() { return static_cast<uint8_t>(Next()); }

 private:
  uint64_t state_;
};

// An exactly-sized heap copy, so ASan catches a read one byte past the end.
class Exact {
 public:
  explicit Exact(const std::vector<uint8_t>& bytes)
      : bytes_(new uint8_t[bytes.empty() ? 1 : bytes.size()]), size_(bytes.size()) {
    if (!bytes.empty()) std::memcpy(bytes_.get(), bytes.data(), bytes.size());
  }
  ByteView view() const { return ByteView::FromRaw(size_ == 0 ? nullptr : bytes_.get(), size_); }

 private:
  std::unique_ptr<uint8_t[]> bytes_;
  size_t size_;
};

std::vector<uint8_t> RandomBytes(Rng& rng, size_t size) {
  std::vector<uint8_t> bytes(size);
  for (uint8_t& b : bytes) b = rng.Byte();
  return bytes;
}

void PutU32(std::vector<uint8_t>& out, uint32_t value) {
  for (int i = 0; i < 4; i++) out.push_back(static_cast<uint8_t>(value >> (8 * i)));
}

void PutU64(std::vector<uint8_t>& out, uint64_t value) {
  for (int i = 0; i < 8; i++) out.push_back(static_cast<uint8_t>(value >> (8 * i)));
}

// Mutates `bytes` the way torn writes and bit rot do.
void Damage(Rng& rng, std::vector<uint8_t>& bytes) {
  switch (rng.Below(5)) {
    case 0:
      bytes.resize(rng.Below(bytes.size() + 1));
      break;
    case 1:
      if (!bytes.empty()) bytes[rng.Below(bytes.size())] ^= static_cast<uint8_t>(1 + rng.Below(255));
      break;
    case 2:  // a length field set to something hostile
      if (bytes.size() >= 4) {
        const size_t at = rng.Below(bytes.size() - 3);
        const uint32_t values[] = {0, 1, 36, 37, 0x7FFFFFFFu, 0xFFFFFFFFu,
                                   static_cast<uint32_t>(rng.Next())};
        const uint32_t value = values[rng.Below(7)];
        for (int i = 0; i < 4; i++) bytes[at + i] = static_cast<uint8_t>(value >> (8 * i));
      }
      break;
    case 3: {
      const std::vector<uint8_t> tail = RandomBytes(rng, rng.Below(64));
      bytes.insert(bytes.end(), tail.begin(), tail.end());
      break;
    }
    default:
      break;
  }
}

// ---- crc32c --------------------------------------------------------------

void TestCrc32c(Rng& rng, uint64_t iterations) {
  const char* check = "123456789";
  std::vector<uint8_t> digits(check, check + 9);
  CHECK(Crc32c(Exact(digits).view(), 0) == 0xE3069283u);
  CHECK(Crc32cTable(Exact(digits).view(), 0) == 0xE3069283u);
  CHECK(Crc32c(ByteView(), 0) == 0);
  for (uint64_t i = 0; i < iterations; i++) {
    const std::vector<uint8_t> bytes = RandomBytes(rng, rng.Below(600));
    const Exact exact(bytes);
    const ByteView view = exact.view();
    const uint32_t seed = static_cast<uint32_t>(rng.Next());
    CHECK(Crc32c(view, seed) == Crc32cTable(view, seed));
    const size_t cut = rng.Below(bytes.size() + 1);
    CHECK(Crc32c(view.from(cut), Crc32c(view.sub(0, cut), 0)) == Crc32c(view, 0));
  }
}

// ---- frames --------------------------------------------------------------

std::vector<uint8_t> Frame(uint8_t type, const std::vector<uint8_t>& payload) {
  std::vector<uint8_t> out;
  PutU32(out, static_cast<uint32_t>(payload.size()));
  out.push_back(protocol_version);
  out.push_back(type);
  out.push_back(0);
  out.push_back(0);
  std::vector<uint8_t> covered(out.begin() + 4, out.begin() + 8);
  covered.insert(covered.end(), payload.begin(), payload.end());
  PutU32(out, Crc32c(Exact(covered).view(), 0));
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

void TestFrames(Rng& rng, uint64_t iterations) {
  std::vector<ScannedFrame> frames(64);
  const MutableSpan<ScannedFrame> out = MutableSpan<ScannedFrame>::FromRaw(frames.data(), 64);
  const ScanOutcome empty = ScanFrames(ByteView(), frame_payload_bytes_max, out);
  CHECK(empty.frame_count == 0 && empty.consumed == 0 && empty.error == FrameError::kNone);
  for (uint64_t i = 0; i < iterations; i++) {
    std::vector<uint8_t> bytes;
    const size_t count = rng.Below(6);
    for (size_t f = 0; f < count; f++) {
      const std::vector<uint8_t> frame =
          Frame(static_cast<uint8_t>(1 + rng.Below(5)), RandomBytes(rng, rng.Below(100)));
      bytes.insert(bytes.end(), frame.begin(), frame.end());
    }
    const bool damaged = rng.Below(2) == 0;
    if (damaged) Damage(rng, bytes);
    if (rng.Below(8) == 0) bytes = RandomBytes(rng, rng.Below(random_buffer_bytes_max));
    const Exact exact(bytes);
    const size_t room = 1 + rng.Below(8);
    const ScanOutcome outcome = ScanFrames(exact.view(), static_cast<uint32_t>(rng.Below(200)),
                                           MutableSpan<ScannedFrame>::FromRaw(frames.data(), room));
    CHECK(outcome.consumed <= bytes.size());
    CHECK(outcome.frame_count <= room);
    for (size_t f = 0; f < outcome.frame_count; f++) {
      CHECK(frames[f].payload_offset + frames[f].payload_length <= outcome.consumed);
    }
  }
}

// ---- records ---------------------------------------------------------------

struct OwnedRecord {
  int64_t tau_commit;
  std::vector<uint8_t> txn_id;
  int64_t tau_start;
  std::vector<uint8_t> body;
};

void TestRecords(Rng& rng, uint64_t iterations) {
  RecordBatchEncoder encoder(1);
  std::vector<DecodedRecord> decoded(64);
  // Edge inputs: empty batch, refused inputs, the largest taus.
  CHECK(encoder.Encode({}) == RecordInputError::kNone && encoder.size() == 0);
  const std::vector<uint8_t> id(record_txn_id_bytes, 7);
  const Exact id_exact(id);
  const std::vector<uint8_t> short_id(3, 1);
  const Exact short_exact(short_id);
  CHECK(encoder.Encode({RecordInput{1, short_exact.view(), 0, ByteView()}}) ==
        RecordInputError::kTxnIdLength);
  CHECK(encoder.Encode({RecordInput{0, id_exact.view(), 0, ByteView()}}) ==
        RecordInputError::kTauCommitRange);
  CHECK(encoder.Encode({RecordInput{1, id_exact.view(), -1, ByteView()}}) ==
        RecordInputError::kTauStartRange);
  CHECK(encoder.Encode({RecordInput{record_tau_max + 1, id_exact.view(), 0, ByteView()}}) ==
        RecordInputError::kTauCommitRange);
  CHECK(encoder.Encode({RecordInput{record_tau_max, id_exact.view(), record_tau_max, ByteView()}}) ==
        RecordInputError::kNone);
  {
    const DecodeOutcome outcome = DecodeRecords(
        encoder.view(), 0, MutableSpan<DecodedRecord>::FromRaw(decoded.data(), decoded.size()));
    CHECK(outcome.count == 1 && outcome.error == RecordError::kNone &&
          outcome.last_tau == record_tau_max);
    const DecodeOutcome again = DecodeRecords(
        encoder.view(), record_tau_max,
        MutableSpan<DecodedRecord>::FromRaw(decoded.data(), decoded.size()));
    CHECK(again.count == 0 && again.error == RecordError::kTauNotIncreasing);
  }
  for (uint64_t i = 0; i < iterations; i++) {
    std::vector<OwnedRecord> records(rng.Below(12));
    int64_t tau = 1 + static_cast<int64_t>(rng.Below(1000));
    for (OwnedRecord& r : records) {
      tau += 1 + static_cast<int64_t>(rng.Below(50));
      r.tau_commit = tau;
      r.txn_id = RandomBytes(rng, record_txn_id_bytes);
      r.tau_start = static_cast<int64_t>(rng.Below(static_cast<size_t>(tau)));
      r.body = RandomBytes(rng, rng.Below(rng.Below(10) == 0 ? 3000 : 200));
    }
    std::vector<std::unique_ptr<Exact>> owners;
    std::vector<RecordInput> inputs;
    for (const OwnedRecord& r : records) {
      owners.push_back(std::make_unique<Exact>(r.txn_id));
      const ByteView txn = owners.back()->view();
      owners.push_back(std::make_unique<Exact>(r.body));
      inputs.push_back(RecordInput{r.tau_commit, txn, r.tau_start, owners.back()->view()});
    }
    // Keep a borrowed block alive across growth, as the addon's ArrayBuffers do.
    const std::shared_ptr<RecordBlock> borrowed = encoder.block();
    CHECK(encoder.Encode(inputs) == RecordInputError::kNone);
    const ByteView encoded = encoder.view();
    size_t expected = 0;
    for (const OwnedRecord& r : records) expected += RecordBytes(r.body.size());
    CHECK(encoded.size() == expected);
    CHECK(borrowed->capacity() > 0);

    std::vector<uint8_t> bytes(expected);
    for (size_t b = 0; b < expected; b++) bytes[b] = encoded.at(b);
    {
      const Exact exact(bytes);
      const DecodeOutcome clean = DecodeRecords(
          exact.view(), 0, MutableSpan<DecodedRecord>::FromRaw(decoded.data(), decoded.size()));
      CHECK(clean.error == RecordError::kNone && clean.count == records.size());
      CHECK(clean.consumed == bytes.size());
      for (size_t r = 0; r < clean.count; r++) {
        CHECK(decoded[r].tau_commit == records[r].tau_commit);
        CHECK(decoded[r].tau_start == records[r].tau_start);
      }
    }
    Damage(rng, bytes);
    if (rng.Below(8) == 0) bytes = RandomBytes(rng, rng.Below(random_buffer_bytes_max));
    const Exact exact(bytes);
    const size_t room = 1 + rng.Below(16);
    const int64_t last_tau = static_cast<int64_t>(rng.Below(2000));
    const DecodeOutcome outcome = DecodeRecords(
        exact.view(), last_tau, MutableSpan<DecodedRecord>::FromRaw(decoded.data(), room));
    CHECK(outcome.consumed <= bytes.size());
    CHECK(outcome.count <= room);
    int64_t previous = last_tau;
    for (size_t r = 0; r < outcome.count; r++) {
      CHECK(decoded[r].offset + record_header_bytes + decoded[r].payload_length <= outcome.consumed);
      CHECK(decoded[r].tau_commit > previous);
      previous = decoded[r].tau_commit;
    }
    CHECK(outcome.last_tau == previous);
  }
}

// ---- crossbar --------------------------------------------------------------

std::vector<uint8_t> CrossbarConfig(Rng& rng, uint32_t subscribers) {
  std::vector<uint8_t> out;
  PutU32(out, crossbar_config_magic);
  PutU32(out, subscribers);
  for (uint32_t s = 0; s < subscribers; s++) {
    PutU32(out, static_cast<uint32_t>(256 + rng.Below(8192)));
    PutU32(out, 1);
    const uint8_t lo = static_cast<uint8_t>(s * (256 / subscribers));
    PutU32(out, 1);
    PutU32(out, 0);
    out.push_back(lo);
  }
  return out;
}

std::vector<uint8_t> CrossbarBatch(Rng& rng, int64_t* tau, size_t records) {
  std::vector<uint8_t> out;
  PutU32(out, crossbar_batch_magic);
  PutU32(out, static_cast<uint32_t>(records));
  for (size_t r = 0; r < records; r++) {
    *tau += 1 + static_cast<int64_t>(rng.Below(5));
    const size_t writes = rng.Below(4);
    std::vector<uint8_t> body;
    for (size_t w = 0; w < writes; w++) {
      const std::vector<uint8_t> key = RandomBytes(rng, 1 + rng.Below(8));
      const std::vector<uint8_t> payload = RandomBytes(rng, rng.Below(32));
      PutU32(body, static_cast<uint32_t>(key.size()));
      PutU32(body, static_cast<uint32_t>(payload.size()));
      body.insert(body.end(), key.begin(), key.end());
      body.insert(body.end(), payload.begin(), payload.end());
    }
    PutU32(out, static_cast<uint32_t>(crossbar_record_header_bytes + body.size()));
    PutU32(out, static_cast<uint32_t>(writes));
    PutU64(out, static_cast<uint64_t>(*tau));
    PutU64(out, rng.Next());
    out.insert(out.end(), body.begin(), body.end());
  }
  return out;
}

void TestCrossbar(Rng& rng, uint64_t iterations) {
  CrossbarStatus status{CrossbarReject::kNone, std::string()};
  const std::vector<uint8_t> garbage = RandomBytes(rng, 40);
  CHECK(Crossbar::Create(2, Exact(garbage).view(), &status) == nullptr && !status.ok());
  const uint32_t journals = 3;
  const std::vector<uint8_t> config = CrossbarConfig(rng, 4);
  status = CrossbarStatus{CrossbarReject::kNone, std::string()};
  std::unique_ptr<Crossbar> crossbar = Crossbar::Create(journals, Exact(config).view(), &status);
  CHECK(crossbar != nullptr);
  if (crossbar == nullptr) return;
  std::vector<int64_t> taus(journals, 0);
  std::vector<bool> tainted(journals, false);
  std::vector<uint8_t> drained(64 * 1024);
  for (uint64_t i = 0; i < iterations; i++) {
    const uint32_t journal = static_cast<uint32_t>(rng.Below(journals));
    int64_t tau = taus[journal];
    std::vector<uint8_t> batch = CrossbarBatch(rng, &tau, rng.Below(6));
    const bool damaged = rng.Below(3) == 0;
    if (damaged) Damage(rng, batch);
    const Exact exact(batch);
    const CrossbarStatus pushed = crossbar->PushBatch(journal, exact.view(), tau);
    if (pushed.ok()) taus[journal] = tau;
    // A damaged batch that still decodes may carry any tau; its journal's
    // later batches may then be refused, so only untainted journals are checked.
    if (pushed.ok() && damaged) tainted[journal] = true;
    CHECK(pushed.ok() || damaged || tainted[journal]);
    if (rng.Below(4) == 0) {
      taus[journal]++;
      crossbar->AdvanceWatermark(journal, taus[journal]);
    }
    crossbar->Release(1 + rng.Below(50));
    for (uint32_t s = 0; s < crossbar->subscriber_count(); s++) {
      const size_t room = rng.Below(drained.size());
      crossbar->DrainInto(s, MutableSpan<uint8_t>::FromRaw(drained.data(), room));
      if (crossbar->subscriber_state(s).overflowed) crossbar->ResetSubscriber(s);
    }
  }
}

// ---- conflict table ----------------------------------------------------------

#ifdef ORDO_HAVE_CONFLICT_TABLE
void TestConflictTable(Rng& rng, uint64_t iterations) {
  ConflictTable table(0);
  std::vector<uint8_t> verdicts(64);
  std::vector<uint32_t> details(64);
  std::vector<double> out_taus(64);
  for (uint64_t i = 0; i < iterations; i++) {
    // A well-formed batch, then possibly a damaged one: either is decided or refused.
    const size_t txns = 1 + rng.Below(8);
    std::vector<uint32_t> index = {conflict_batch_magic, static_cast<uint32_t>(txns), 0, 0};
    std::vector<uint8_t> keys;
    std::vector<double> taus;
    for (size_t t = 0; t < txns; t++) {
      const size_t count = rng.Below(4);
      index.push_back(static_cast<uint32_t>(count));
      for (size_t k = 0; k < count; k++) {
        const size_t length = 1 + rng.Below(4);
        for (size_t b = 0; b < length; b++) keys.push_back(static_cast<uint8_t>(rng.Below(4)));
        index.push_back(static_cast<uint32_t>(length) |
                        (rng.Below(3) == 0 ? conflict_key_shared_bit : 0));
      }
      taus.push_back(static_cast<double>(i * 10 + t));
    }
    index[2] = static_cast<uint32_t>(index.size());
    index[3] = static_cast<uint32_t>(keys.size());
    if (rng.Below(3) == 0 && !index.empty()) index[rng.Below(index.size())] = static_cast<uint32_t>(rng.Next());
    if (rng.Below(5) == 0) taus.resize(rng.Below(taus.size() + 1));
    const Exact key_exact(keys);
    const DetectOutput out{MutableSpan<uint8_t>::FromRaw(verdicts.data(), verdicts.size()),
                           MutableSpan<uint32_t>::FromRaw(details.data(), details.size()),
                           MutableSpan<double>::FromRaw(out_taus.data(), out_taus.size())};
    const ConflictStatus status =
        table.Detect(WordView::FromRaw(index.data(), index.size()),
                     DoubleView::FromRaw(taus.data(), taus.size()), key_exact.view(), out);
    if (!status.ok()) continue;
    std::vector<uint32_t> tickets;
    std::vector<double> commit_taus;
    for (size_t t = 0; t < txns && t < taus.size(); t++) {
      if (verdicts[t] == static_cast<uint8_t>(ConflictVerdict::kApproved)) {
        tickets.push_back(details[t]);
        commit_taus.push_back(taus[t] + 1 + static_cast<double>(rng.Below(5)));
      }
    }
    if (rng.Below(2) == 0) {
      table.CommitBatch(WordView::FromRaw(tickets.data(), tickets.size()),
                        DoubleView::FromRaw(commit_taus.data(), commit_taus.size()),
                        tickets.size());
    } else {
      table.AbortBatch(WordView::FromRaw(tickets.data(), tickets.size()), tickets.size());
    }
    if (rng.Below(10) == 0) table.ForgetBefore(static_cast<double>(i * 10));
  }
}
#endif

}  // namespace
}  // namespace ordo

int main(int argc, char** argv) {
  const uint64_t iterations =
      argc > 1 ? std::strtoull(argv[1], nullptr, 10) : ordo::iterations_default;
  const uint64_t seed = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 0x6f72646f;
  ordo::Rng rng(seed);
  std::printf("sanitize: %" PRIu64 " iterations per core, seed %" PRIu64 ", crc32c %s\n",
              iterations, seed, ordo::Crc32cHardwareAvailable() ? "sse4.2" : "table");
  ordo::TestCrc32c(rng, iterations);
  std::printf("  crc32c ok\n");
  ordo::TestFrames(rng, iterations);
  std::printf("  frame ok\n");
  ordo::TestRecords(rng, iterations);
  std::printf("  records ok\n");
  ordo::TestCrossbar(rng, iterations);
  std::printf("  crossbar ok\n");
#ifdef ORDO_HAVE_CONFLICT_TABLE
  ordo::TestConflictTable(rng, iterations);
  std::printf("  conflict_table ok\n");
#else
  std::printf("  conflict_table not present, skipped\n");
#endif
  if (ordo::failures > 0) {
    std::fprintf(stderr, "sanitize: %d checks failed\n", ordo::failures);
    return 1;
  }
  std::printf("sanitize: all cores clean\n");
  return 0;
}
