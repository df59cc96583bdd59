// The N-API door of journal record batches (records.h): recordsSeal, which
// checks a batch that JavaScript staged in wire layout and writes its CRC32Cs
// in place (the path RecordBatchEncoder takes: one call per batch, nothing
// per record crosses the boundary), an encoder behind one opaque,
// type-tagged handle, and a stateless batch decoder. The TypeScript
// door is src/journal/record-buffer.ts (through src/native/index.ts); it
// checks every argument first, and the functions below check them again
// (binding.h).
//
// The encoder's buffer is lent to JavaScript as an external ArrayBuffer: each
// block is lent once, when an encode first wrote into it, and the
// ArrayBuffer's finalizer holds a reference to the block, so a view stays
// valid after the encoder grew or closed. Nothing per record reaches the V8
// heap: inputs come in as one Float64Array of taus and one array of views,
// results go out as a length in a caller-owned Float64Array.
#include <napi.h>

#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "binding.h"
#include "records.h"
#include "span.h"

namespace ordo {
namespace {

// recordsDecode's output Float64Array: meta words, then one quad per record.
constexpr size_t records_meta_words = 6;
constexpr size_t records_record_words = 4;
// recordsEncode's Float64Array of taus: two per record (tau_commit, tau_start).
constexpr size_t records_input_words = 2;
constexpr size_t records_initial_bytes_max = 64u * 1024u * 1024u;

// Encoder handles are not tracked for the cleanup hook: each frees itself in
// its finalizer, which runs at environment teardown too.
struct RecordEncoderHandle {
  // Distinguishes record encoder handles from every other external value.
  static constexpr napi_type_tag type_tag = {0x6f72646f2d726563ULL, 0x6f72646261746368ULL};
  static constexpr const char* noun = "record encoder";

  std::unique_ptr<RecordBatchEncoder> encoder;  // null once closed
  uint64_t lent_generation = UINT64_MAX;        // generation of the block last lent out
};

class RecordsBinding : public Binding<RecordsBinding> {
 public:
  explicit RecordsBinding(const Napi::FunctionReference* error_class) : Binding(error_class) {}

  void Register(Napi::Env env, Napi::Object exports) {
    Export<&RecordsBinding::Open>(env, exports, "recordsEncoderOpen");
    Export<&RecordsBinding::Encode>(env, exports, "recordsEncode");
    Export<&RecordsBinding::Close>(env, exports, "recordsEncoderClose");
    Export<&RecordsBinding::Seal>(env, exports, "recordsSeal");
    Export<&RecordsBinding::Decode>(env, exports, "recordsDecode");
    exports.Set("recordsMetaWords", Napi::Number::New(env, records_meta_words));
    exports.Set("recordsRecordWords", Napi::Number::New(env, records_record_words));
    exports.Set("recordsPayloadFixedBytes", Napi::Number::New(env, record_payload_fixed_bytes));
    exports.Set("recordsBodyBytesMax", Napi::Number::New(env, record_body_bytes_max));
    AddCleanupHook(env);
  }

 private:
  static void FinalizeHandle(Napi::Env /*env*/, RecordEncoderHandle* handle) { delete handle; }

  static void FinalizeBlock(Napi::Env /*env*/, void* /*data*/,
                            std::shared_ptr<RecordBlock>* block) {
    delete block;
  }

  RecordEncoderHandle& HandleArg(const Napi::CallbackInfo& info) {
    return TaggedHandleArg<RecordEncoderHandle>(*this, info, 0);
  }

  void ExpectOpen(Napi::Env env, const RecordEncoderHandle& handle) {
    OpenObject<RecordEncoderHandle>(*this, env, handle.encoder);
  }

  // A tau held in a Float64Array: an integer in [min, record_tau_max].
  bool TauWord(double word, double min) {
    return std::isfinite(word) && std::trunc(word) == word && word >= min &&
           word <= static_cast<double>(record_tau_max);
  }

  // recordsEncoderOpen(initialBytes) -> handle
  Napi::Value Open(const Napi::CallbackInfo& info) {
    ExpectArgs(info, 1, "recordsEncoderOpen");
    const double initial = IntegerArg(info, 0, "initialBytes", 1, records_initial_bytes_max);
    auto* handle = new RecordEncoderHandle{
        std::make_unique<RecordBatchEncoder>(static_cast<size_t>(initial)), UINT64_MAX};
    return LendHandle(info.Env(), handle, &RecordsBinding::FinalizeHandle);
  }

  // recordsEncode(handle, taus: Float64Array, views: Uint8Array[], count, out: Float64Array)
  //   -> ArrayBuffer when the bytes lie in a block not lent before, else undefined.
  // taus = [tau_commit, tau_start] per record; views = [txn_id, body] per record;
  // out[0] = encoded length in bytes.
  Napi::Value Encode(const Napi::CallbackInfo& info) {
    ExpectArgs(info, 5, "recordsEncode");
    Napi::Env env = info.Env();
    RecordEncoderHandle& handle = HandleArg(info);
    ExpectOpen(env, handle);
    const double count_arg = IntegerArg(info, 3, "count", 0, record_batch_records_max);
    const size_t count = static_cast<size_t>(count_arg);
    const MutableSpan<double> taus = DoublesArg(info, 1, "taus", count * records_input_words);
    if (!info[2].IsArray()) Throw(env, "invalid_argument", "views must be an array");
    const Napi::Array views = info[2].As<Napi::Array>();
    if (views.Length() < count * 2) {
      Throw(env, "out_of_range", "views must hold a txn id and a body per record");
    }
    const MutableSpan<double> out = DoublesArg(info, 4, "out", 1);
    inputs_.clear();
    for (size_t i = 0; i < count; i++) {
      const double tau_commit = taus[i * records_input_words];
      const double tau_start = taus[i * records_input_words + 1];
      if (!TauWord(tau_commit, 1) || !TauWord(tau_start, 0)) {
        Throw(env, "out_of_range", "record " + std::to_string(i) + ": tau out of range");
      }
      const ByteView txn_id = BytesValue(env, views.Get(static_cast<uint32_t>(i * 2)), "txn id");
      const ByteView body = BytesValue(env, views.Get(static_cast<uint32_t>(i * 2 + 1)), "body");
      inputs_.push_back(RecordInput{static_cast<int64_t>(tau_commit), txn_id,
                                    static_cast<int64_t>(tau_start), body});
    }
    // Reading the views may have run JavaScript (array getters): check again.
    ExpectOpen(env, handle);
    const RecordInputError error = handle.encoder->Encode(inputs_);
    inputs_.clear();
    if (error != RecordInputError::kNone) {
      Throw(env, "out_of_range",
            "record batch refused (reason " + std::to_string(static_cast<uint32_t>(error)) + ")");
    }
    out[0] = static_cast<double>(handle.encoder->size());
    if (handle.lent_generation == handle.encoder->generation()) return env.Undefined();
    const std::shared_ptr<RecordBlock>& block = handle.encoder->block();
    auto* hint = new std::shared_ptr<RecordBlock>(block);
    Napi::ArrayBuffer buffer = Napi::ArrayBuffer::New(env, block->data(), block->capacity(),
                                                      &RecordsBinding::FinalizeBlock, hint);
    handle.lent_generation = handle.encoder->generation();
    return buffer;
  }

  // recordsSeal(staged: Uint8Array, byteLength, count) -> undefined.
  // staged[0, byteLength) holds `count` records in wire layout, CRC slots
  // unfilled (RecordBatchEncoder.add in src/journal/record-buffer.ts); this
  // checks them (SealRecords trusts nothing) and writes every CRC32C in place.
  Napi::Value Seal(const Napi::CallbackInfo& info) {
    ExpectArgs(info, 3, "recordsSeal");
    Napi::Env env = info.Env();
    const MutableSpan<uint8_t> staged = MutableBytesArg(info, 0, "staged");
    const double byte_length =
        IntegerArg(info, 1, "byteLength", 0, static_cast<double>(record_batch_bytes_max));
    const double count = IntegerArg(info, 2, "count", 0, record_batch_records_max);
    if (byte_length > static_cast<double>(staged.size())) {
      Throw(env, "out_of_range", "byteLength is past the end of staged");
    }
    const size_t length = static_cast<size_t>(byte_length);
    const MutableSpan<uint8_t> batch =
        length == 0 ? MutableSpan<uint8_t>() : MutableSpan<uint8_t>::FromRaw(&staged[0], length);
    const RecordInputError error = SealRecords(batch, static_cast<size_t>(count));
    if (error != RecordInputError::kNone) {
      Throw(env, "malformed",
            "staged record batch refused (reason " + std::to_string(static_cast<uint32_t>(error)) +
                ")");
    }
    return env.Undefined();
  }

  // recordsEncoderClose(handle) -> undefined; closing twice is allowed. Lent
  // blocks stay valid until their ArrayBuffers are collected.
  Napi::Value Close(const Napi::CallbackInfo& info) {
    ExpectArgs(info, 1, "recordsEncoderClose");
    HandleArg(info).encoder.reset();
    return info.Env().Undefined();
  }

  // recordsDecode(buffer: Uint8Array, lastTau, out: Float64Array) -> record count.
  // out = [count, consumed, error, need, outputFull, lastTau], then per record
  // [offset, payloadLength, tauCommit, tauStart].
  Napi::Value Decode(const Napi::CallbackInfo& info) {
    ExpectArgs(info, 3, "recordsDecode");
    const ByteView buffer = BytesArg(info, 0, "buffer");
    const double last_tau = IntegerArg(info, 1, "lastTau", 0, static_cast<double>(record_tau_max));
    const MutableSpan<double> out =
        DoublesArg(info, 2, "out", records_meta_words + records_record_words);
    const size_t capacity = (out.size() - records_meta_words) / records_record_words;
    if (decoded_.size() < capacity) decoded_.resize(capacity);
    const MutableSpan<DecodedRecord> records =
        MutableSpan<DecodedRecord>::FromRaw(decoded_.data(), capacity);
    const DecodeOutcome outcome = DecodeRecords(buffer, static_cast<int64_t>(last_tau), records);
    for (size_t i = 0; i < outcome.count; i++) {
      const DecodedRecord& record = records[i];
      const size_t base = records_meta_words + i * records_record_words;
      out[base] = static_cast<double>(record.offset);
      out[base + 1] = static_cast<double>(record.payload_length);
      out[base + 2] = static_cast<double>(record.tau_commit);
      out[base + 3] = static_cast<double>(record.tau_start);
    }
    out[0] = static_cast<double>(outcome.count);
    out[1] = static_cast<double>(outcome.consumed);
    out[2] = static_cast<double>(static_cast<uint32_t>(outcome.error));
    out[3] = static_cast<double>(outcome.need);
    out[4] = outcome.output_full ? 1 : 0;
    out[5] = static_cast<double>(outcome.last_tau);
    return Napi::Number::New(info.Env(), static_cast<double>(outcome.count));
  }

  // Reused across calls, so steady-state calls allocate nothing.
  std::vector<RecordInput> inputs_;
  std::vector<DecodedRecord> decoded_;
};

}  // namespace

void RegisterRecords(Napi::Env env, Napi::Object exports,
                     const Napi::FunctionReference* error_class) {
  RegisterBinding<RecordsBinding>(env, exports, error_class);
}

}  // namespace ordo
