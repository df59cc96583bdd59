// The N-API door of ordo's native code: registers the addon, checks every
// argument again (the TypeScript wrapper in src/native/index.ts checks first),
// and turns every rejection into the one JS error class the wrapper hands in
// at load (`setErrorClass`). The hot-path logic lives in N-API-free files
// (crc32c.cc, frame.cc) so the same sources build under a fuzzer.
//
// Calls are batch-shaped: scanFrames reports every complete frame of a buffer
// in one call, writing (type, offset, length) triples into a caller-owned
// Uint32Array instead of allocating JS objects.
#include <napi.h>
#include <time.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "crc32c.h"
#include "crossbar.h"
#include "frame.h"
#include "span.h"

namespace ordo {

// Adds the crossbar's functions to `exports` (defined at the end of this file).
// They throw the error class that `error_class` will hold once setErrorClass ran.
void RegisterCrossbar(Napi::Env env, Napi::Object exports,
                      const Napi::FunctionReference* error_class);
// Adds the journal record batch functions (defined after the crossbar's).
void RegisterRecords(Napi::Env env, Napi::Object exports,
                     const Napi::FunctionReference* error_class);
// Adds the adjudicator's conflict table functions (defined at the end of this file).
void RegisterConflictTable(Napi::Env env, Napi::Object exports,
                           const Napi::FunctionReference* error_class);

namespace {

// Layout of scanFrames' output Uint32Array: a header of scan_meta_words, then
// one triple per frame.
constexpr size_t scan_meta_words = 4;
constexpr size_t scan_meta_frame_count = 0;
constexpr size_t scan_meta_consumed = 1;
constexpr size_t scan_meta_error = 2;
constexpr size_t scan_meta_output_full = 3;
constexpr size_t scan_frame_words = 3;
// Offsets travel as u32, so one scan covers at most this many bytes.
constexpr size_t scan_buffer_bytes_max = 0xFFFFFFFFu;
// A call reports at most this many frames; the caller continues from `consumed`.
constexpr size_t scan_frames_per_call_max = 65536;

constexpr int64_t us_per_s = 1000000;
constexpr int64_t ns_per_us = 1000;

class OrdoAddon : public Napi::Addon<OrdoAddon> {
 public:
  OrdoAddon(Napi::Env env, Napi::Object exports) : env_(env) {
    DefineAddon(
        exports,
        {
            InstanceMethod("setErrorClass", &OrdoAddon::SetErrorClass),
            InstanceMethod("crc32c", &OrdoAddon::Crc32cMethod),
            InstanceMethod("crc32cTable", &OrdoAddon::Crc32cTableMethod),
            InstanceMethod("scanFrames", &OrdoAddon::ScanFramesMethod),
            InstanceMethod("realtimeMicros", &OrdoAddon::RealtimeMicros),
            InstanceValue("framePayloadBytesMax", Napi::Number::New(env, frame_payload_bytes_max)),
            InstanceValue("frameHeaderBytes", Napi::Number::New(env, frame_header_bytes)),
            InstanceValue("scanMetaWords", Napi::Number::New(env, scan_meta_words)),
            InstanceValue("crc32cHardware", Napi::Boolean::New(env, Crc32cHardwareAvailable())),
        });
    NAPI_THROW_IF_FAILED_VOID(env_,
                              napi_add_env_cleanup_hook(env_, &OrdoAddon::OnEnvCleanup, this));
    RegisterCrossbar(env, exports, &error_class_);
    RegisterRecords(env, exports, &error_class_);
    RegisterConflictTable(env, exports, &error_class_);
  }

  ~OrdoAddon() {
    if (!cleaned_up_) {
      napi_remove_env_cleanup_hook(env_, &OrdoAddon::OnEnvCleanup, this);
      Release();
    }
  }

  OrdoAddon(const OrdoAddon&) = delete;
  OrdoAddon& operator=(const OrdoAddon&) = delete;

 private:
  // Runs when the environment (main thread or worker) shuts down: drop the
  // references this addon holds so nothing outlives its isolate.
  static void OnEnvCleanup(void* arg) {
    auto* self = static_cast<OrdoAddon*>(arg);
    self->Release();
    self->cleaned_up_ = true;
  }

  void Release() {
    if (!error_class_.IsEmpty()) error_class_.Reset();
  }

  [[noreturn]] void Throw(Napi::Env env, const char* code, const std::string& message) {
    if (!error_class_.IsEmpty()) {
      Napi::Object error =
          error_class_.New({Napi::String::New(env, message), Napi::String::New(env, code)});
      throw Napi::Error(env, error);
    }
    // Before setErrorClass: still a typed, coded error.
    Napi::Error error = Napi::TypeError::New(env, message);
    error.Set("code", Napi::String::New(env, code));
    throw error;
  }

  void ExpectArgs(const Napi::CallbackInfo& info, size_t count, const char* method) {
    if (info.Length() != count) {
      Throw(info.Env(), "invalid_argument",
            std::string(method) + " expects " + std::to_string(count) + " arguments, got " +
                std::to_string(info.Length()));
    }
  }

  ByteView BytesArg(const Napi::CallbackInfo& info, size_t index, const char* name) {
    const Napi::Value value = info[index];
    if (!value.IsTypedArray() ||
        value.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
      Throw(info.Env(), "invalid_argument", std::string(name) + " must be a Uint8Array or Buffer");
    }
    Napi::Uint8Array array = value.As<Napi::Uint8Array>();
    return ByteView::FromRaw(array.Data(), array.ElementLength());
  }

  MutableSpan<uint32_t> WordsArg(const Napi::CallbackInfo& info, size_t index, const char* name) {
    const Napi::Value value = info[index];
    if (!value.IsTypedArray() ||
        value.As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array) {
      Throw(info.Env(), "invalid_argument", std::string(name) + " must be a Uint32Array");
    }
    Napi::Uint32Array array = value.As<Napi::Uint32Array>();
    return MutableSpan<uint32_t>::FromRaw(array.Data(), array.ElementLength());
  }

  // An integral JS number in [min, max].
  double IntegerArg(const Napi::CallbackInfo& info, size_t index, const char* name, double min,
                    double max) {
    const Napi::Value value = info[index];
    if (!value.IsNumber()) {
      Throw(info.Env(), "invalid_argument", std::string(name) + " must be a number");
    }
    const double number = value.As<Napi::Number>().DoubleValue();
    if (!std::isfinite(number) || std::trunc(number) != number || number < min || number > max) {
      Throw(info.Env(), "out_of_range",
            std::string(name) + " must be an integer in [" + std::to_string(min) + ", " +
                std::to_string(max) + "]");
    }
    return number;
  }

  Napi::Value SetErrorClass(const Napi::CallbackInfo& info) {
    ExpectArgs(info, 1, "setErrorClass");
    if (!info[0].IsFunction()) {
      Throw(info.Env(), "invalid_argument", "setErrorClass expects a constructor");
    }
    error_class_ = Napi::Persistent(info[0].As<Napi::Function>());
    return info.Env().Undefined();
  }

  // crc32c(data: Uint8Array, seed: number) -> number
  Napi::Value Crc32cMethod(const Napi::CallbackInfo& info) {
    ExpectArgs(info, 2, "crc32c");
    const ByteView data = BytesArg(info, 0, "data");
    const double seed = IntegerArg(info, 1, "seed", 0, 4294967295.0);
    const uint32_t crc = Crc32c(data, static_cast<uint32_t>(seed));
    return Napi::Number::New(info.Env(), crc);
  }

  // crc32cTable(data: Uint8Array, seed: number) -> number: the portable path,
  // so tests can check it on a CPU where crc32c takes the SSE4.2 path.
  Napi::Value Crc32cTableMethod(const Napi::CallbackInfo& info) {
    ExpectArgs(info, 2, "crc32cTable");
    const ByteView data = BytesArg(info, 0, "data");
    const double seed = IntegerArg(info, 1, "seed", 0, 4294967295.0);
    const uint32_t crc = Crc32cTable(data, static_cast<uint32_t>(seed));
    return Napi::Number::New(info.Env(), crc);
  }

  // scanFrames(buffer: Uint8Array, payloadBytesMax: number, out: Uint32Array) -> frame count.
  // out[0..3] = frame count, consumed, error code, output full; then triples.
  Napi::Value ScanFramesMethod(const Napi::CallbackInfo& info) {
    ExpectArgs(info, 3, "scanFrames");
    const ByteView buffer = BytesArg(info, 0, "buffer");
    const double bound = IntegerArg(info, 1, "payloadBytesMax", 0, frame_payload_bytes_max);
    const MutableSpan<uint32_t> out = WordsArg(info, 2, "out");
    if (buffer.size() > scan_buffer_bytes_max) {
      Throw(info.Env(), "out_of_range", "buffer is longer than one scan may cover");
    }
    if (out.size() < scan_meta_words + scan_frame_words) {
      Throw(info.Env(), "out_of_range", "out must hold at least one frame");
    }
    const size_t capacity =
        std::min((out.size() - scan_meta_words) / scan_frame_words, scan_frames_per_call_max);
    if (scratch_.size() < capacity) scratch_.resize(capacity);
    const MutableSpan<ScannedFrame> frames =
        MutableSpan<ScannedFrame>::FromRaw(scratch_.data(), capacity);
    const ScanOutcome outcome = ScanFrames(buffer, static_cast<uint32_t>(bound), frames);
    for (size_t i = 0; i < outcome.frame_count; i++) {
      const ScannedFrame& frame = frames[i];
      const size_t base = scan_meta_words + i * scan_frame_words;
      out[base] = frame.type;
      out[base + 1] = static_cast<uint32_t>(frame.payload_offset);
      out[base + 2] = frame.payload_length;
    }
    out[scan_meta_frame_count] = static_cast<uint32_t>(outcome.frame_count);
    out[scan_meta_consumed] = static_cast<uint32_t>(outcome.consumed);
    out[scan_meta_error] = static_cast<uint32_t>(outcome.error);
    out[scan_meta_output_full] = outcome.output_full ? 1 : 0;
    return Napi::Number::New(info.Env(), static_cast<double>(outcome.frame_count));
  }

  // realtimeMicros() -> CLOCK_REALTIME in whole microseconds since the epoch.
  Napi::Value RealtimeMicros(const Napi::CallbackInfo& info) {
    ExpectArgs(info, 0, "realtimeMicros");
    struct timespec now;
    if (clock_gettime(CLOCK_REALTIME, &now) != 0) {
      Throw(info.Env(), "internal", "clock_gettime(CLOCK_REALTIME) failed");
    }
    const int64_t micros = static_cast<int64_t>(now.tv_sec) * us_per_s + now.tv_nsec / ns_per_us;
    return Napi::Number::New(info.Env(), static_cast<double>(micros));
  }

  napi_env env_;
  Napi::FunctionReference error_class_;
  // Scan results before they are copied out; kept across calls so the hot path
  // allocates only when a caller asks for more frames than ever before.
  std::vector<ScannedFrame> scratch_;
  bool cleaned_up_ = false;
};

}  // namespace
}  // namespace ordo

// NODE_API_ADDON pastes the class name into identifiers, so it needs a plain name.
using OrdoAddon = ordo::OrdoAddon;
NODE_API_ADDON(OrdoAddon)

// ---------------------------------------------------------------------------
// Crossbar (native/crossbar.h): merge and route behind one opaque, type-tagged
// handle per crossbar. The TypeScript door is NativeCrossbar in
// src/native/index.ts; it checks every argument first, and the functions below
// check them again. A handle's crossbar is freed by crossbarClose, by the
// handle's finalizer, or by the environment cleanup hook, whichever comes
// first; a call on a freed handle throws code "closed".
namespace ordo {
namespace {

// Layout of crossbarRelease's Float64Array summary.
constexpr size_t crossbar_summary_words = 6;
// Layout of crossbarSubscriberState's Float64Array.
constexpr size_t crossbar_state_words = 4;

// Distinguishes crossbar handles from every other external value.
constexpr napi_type_tag crossbar_type_tag = {0x6f72646f2d786261ULL, 0x72636f7373626172ULL};

struct CrossbarHandle;

// Live handles of one environment, shared by the handles themselves so a
// finalizer that runs after the cleanup hook still finds it.
struct CrossbarRegistry {
  std::vector<CrossbarHandle*> live;
};

struct CrossbarHandle {
  std::unique_ptr<Crossbar> crossbar;
  std::shared_ptr<CrossbarRegistry> registry;
};

class CrossbarBinding {
 public:
  explicit CrossbarBinding(const Napi::FunctionReference* error_class)
      : error_class_(error_class), registry_(std::make_shared<CrossbarRegistry>()) {}

  CrossbarBinding(const CrossbarBinding&) = delete;
  CrossbarBinding& operator=(const CrossbarBinding&) = delete;

  void Register(Napi::Env env, Napi::Object exports) {
    exports.Set("crossbarOpen", Method<&CrossbarBinding::Open>(env, "crossbarOpen"));
    exports.Set("crossbarPushBatch", Method<&CrossbarBinding::PushBatch>(env, "crossbarPushBatch"));
    exports.Set("crossbarAdvanceWatermark",
                Method<&CrossbarBinding::AdvanceWatermark>(env, "crossbarAdvanceWatermark"));
    exports.Set("crossbarRelease", Method<&CrossbarBinding::Release>(env, "crossbarRelease"));
    exports.Set("crossbarDrainInto", Method<&CrossbarBinding::DrainInto>(env, "crossbarDrainInto"));
    exports.Set("crossbarSubscriberState",
                Method<&CrossbarBinding::SubscriberState>(env, "crossbarSubscriberState"));
    exports.Set("crossbarResetSubscriber",
                Method<&CrossbarBinding::ResetSubscriber>(env, "crossbarResetSubscriber"));
    exports.Set("crossbarGlobalWatermark",
                Method<&CrossbarBinding::GlobalWatermark>(env, "crossbarGlobalWatermark"));
    exports.Set("crossbarClose", Method<&CrossbarBinding::Close>(env, "crossbarClose"));
    exports.Set("crossbarBatchMagic", Napi::Number::New(env, crossbar_batch_magic));
    exports.Set("crossbarConfigMagic", Napi::Number::New(env, crossbar_config_magic));
    exports.Set("crossbarEntryHeaderBytes", Napi::Number::New(env, crossbar_entry_header_bytes));
    exports.Set("crossbarRecordHeaderBytes", Napi::Number::New(env, crossbar_record_header_bytes));
    exports.Set("crossbarSummaryWords", Napi::Number::New(env, crossbar_summary_words));
    exports.Set("crossbarStateWords", Napi::Number::New(env, crossbar_state_words));
    NAPI_THROW_IF_FAILED_VOID(
        env, napi_add_env_cleanup_hook(env, &CrossbarBinding::OnEnvCleanup, this));
  }

 private:
  using MethodPointer = Napi::Value (CrossbarBinding::*)(const Napi::CallbackInfo&);

  template <MethodPointer M>
  static Napi::Value Dispatch(const Napi::CallbackInfo& info) {
    return (static_cast<CrossbarBinding*>(info.Data())->*M)(info);
  }

  template <MethodPointer M>
  Napi::Function Method(Napi::Env env, const char* name) {
    return Napi::Function::New(env, &CrossbarBinding::Dispatch<M>, name, this);
  }

  // Environment teardown: free every crossbar still open, then this binding.
  static void OnEnvCleanup(void* arg) {
    auto* self = static_cast<CrossbarBinding*>(arg);
    for (CrossbarHandle* handle : self->registry_->live) handle->crossbar.reset();
    self->registry_->live.clear();
    delete self;
  }

  static void Finalize(Napi::Env /*env*/, CrossbarHandle* handle) {
    std::vector<CrossbarHandle*>& live = handle->registry->live;
    live.erase(std::remove(live.begin(), live.end(), handle), live.end());
    delete handle;
  }

  [[noreturn]] void Throw(Napi::Env env, const char* code, const std::string& message) {
    if (!error_class_->IsEmpty()) {
      Napi::Object error =
          error_class_->New({Napi::String::New(env, message), Napi::String::New(env, code)});
      throw Napi::Error(env, error);
    }
    Napi::Error error = Napi::TypeError::New(env, message);
    error.Set("code", Napi::String::New(env, code));
    throw error;
  }

  void ExpectArgs(const Napi::CallbackInfo& info, size_t count, const char* method) {
    if (info.Length() != count) {
      Throw(info.Env(), "invalid_argument",
            std::string(method) + " expects " + std::to_string(count) + " arguments, got " +
                std::to_string(info.Length()));
    }
  }

  double IntegerArg(const Napi::CallbackInfo& info, size_t index, const char* name, double min,
                    double max) {
    const Napi::Value value = info[index];
    if (!value.IsNumber()) {
      Throw(info.Env(), "invalid_argument", std::string(name) + " must be a number");
    }
    const double number = value.As<Napi::Number>().DoubleValue();
    if (!std::isfinite(number) || std::trunc(number) != number || number < min || number > max) {
      Throw(info.Env(), "out_of_range",
            std::string(name) + " must be an integer in [" + std::to_string(min) + ", " +
                std::to_string(max) + "]");
    }
    return number;
  }

  ByteView BytesArg(const Napi::CallbackInfo& info, size_t index, const char* name) {
    const Napi::Value value = info[index];
    if (!value.IsTypedArray() ||
        value.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
      Throw(info.Env(), "invalid_argument", std::string(name) + " must be a Uint8Array or Buffer");
    }
    Napi::Uint8Array array = value.As<Napi::Uint8Array>();
    return ByteView::FromRaw(array.Data(), array.ElementLength());
  }

  MutableSpan<uint8_t> MutableBytesArg(const Napi::CallbackInfo& info, size_t index,
                                       const char* name) {
    const Napi::Value value = info[index];
    if (!value.IsTypedArray() ||
        value.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
      Throw(info.Env(), "invalid_argument", std::string(name) + " must be a Uint8Array or Buffer");
    }
    Napi::Uint8Array array = value.As<Napi::Uint8Array>();
    return MutableSpan<uint8_t>::FromRaw(array.Data(), array.ElementLength());
  }

  MutableSpan<double> DoublesArg(const Napi::CallbackInfo& info, size_t index, const char* name,
                                 size_t words_min) {
    const Napi::Value value = info[index];
    if (!value.IsTypedArray() ||
        value.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) {
      Throw(info.Env(), "invalid_argument", std::string(name) + " must be a Float64Array");
    }
    Napi::Float64Array array = value.As<Napi::Float64Array>();
    if (array.ElementLength() < words_min) {
      Throw(info.Env(), "out_of_range",
            std::string(name) + " must hold at least " + std::to_string(words_min) + " numbers");
    }
    return MutableSpan<double>::FromRaw(array.Data(), array.ElementLength());
  }

  // The open crossbar behind argument 0.
  Crossbar& CrossbarArg(const Napi::CallbackInfo& info) {
    const Napi::Value value = info[0];
    if (!value.IsExternal() || !value.As<Napi::External<CrossbarHandle>>().CheckTypeTag(
                                   &crossbar_type_tag)) {
      Throw(info.Env(), "invalid_argument", "handle must be a crossbar handle");
    }
    CrossbarHandle* handle = value.As<Napi::External<CrossbarHandle>>().Data();
    if (handle->crossbar == nullptr) Throw(info.Env(), "closed", "crossbar is closed");
    return *handle->crossbar;
  }

  [[noreturn]] void ThrowReject(Napi::Env env, const CrossbarStatus& status) {
    Throw(env, status.reject == CrossbarReject::kOutOfOrder ? "out_of_order" : "malformed",
          status.message);
  }

  // crossbarOpen(journals: number, config: Uint8Array) -> handle
  Napi::Value Open(const Napi::CallbackInfo& info) {
    ExpectArgs(info, 2, "crossbarOpen");
    const double journals = IntegerArg(info, 0, "journals", 1, crossbar_journals_max);
    const ByteView config = BytesArg(info, 1, "config");
    CrossbarStatus status{CrossbarReject::kNone, std::string()};
    std::unique_ptr<Crossbar> crossbar =
        Crossbar::Create(static_cast<uint32_t>(journals), config, &status);
    if (crossbar == nullptr) ThrowReject(info.Env(), status);
    auto* handle = new CrossbarHandle{std::move(crossbar), registry_};
    registry_->live.push_back(handle);
    Napi::External<CrossbarHandle> external =
        Napi::External<CrossbarHandle>::New(info.Env(), handle, &CrossbarBinding::Finalize);
    external.TypeTag(&crossbar_type_tag);
    return external;
  }

  uint32_t JournalArg(const Napi::CallbackInfo& info, size_t index, const Crossbar& crossbar) {
    return static_cast<uint32_t>(
        IntegerArg(info, index, "journal", 0, static_cast<double>(crossbar.journal_count()) - 1));
  }

  uint32_t SubscriberArg(const Napi::CallbackInfo& info, size_t index, const Crossbar& crossbar) {
    if (crossbar.subscriber_count() == 0) {
      Throw(info.Env(), "out_of_range", "crossbar has no subscribers");
    }
    return static_cast<uint32_t>(IntegerArg(info, index, "subscriber", 0,
                                            static_cast<double>(crossbar.subscriber_count()) - 1));
  }

  double TauArg(const Napi::CallbackInfo& info, size_t index, const char* name) {
    return IntegerArg(info, index, name, static_cast<double>(crossbar_watermark_none),
                      static_cast<double>(crossbar_tau_max));
  }

  // crossbarPushBatch(handle, journal, batch: Uint8Array, watermark) -> undefined
  Napi::Value PushBatch(const Napi::CallbackInfo& info) {
    ExpectArgs(info, 4, "crossbarPushBatch");
    Crossbar& crossbar = CrossbarArg(info);
    const uint32_t journal = JournalArg(info, 1, crossbar);
    // As a span, so the crossbar copies it with one memcpy before decoding.
    const MutableSpan<uint8_t> bytes = MutableBytesArg(info, 2, "batch");
    const MutableSpan<const uint8_t> batch =
        bytes.size() == 0 ? MutableSpan<const uint8_t>()
                          : MutableSpan<const uint8_t>::FromRaw(&bytes[0], bytes.size());
    const double watermark = TauArg(info, 3, "watermark");
    const CrossbarStatus status =
        crossbar.PushBatch(journal, batch, static_cast<int64_t>(watermark));
    if (!status.ok()) ThrowReject(info.Env(), status);
    return info.Env().Undefined();
  }

  // crossbarAdvanceWatermark(handle, journal, tau) -> undefined
  Napi::Value AdvanceWatermark(const Napi::CallbackInfo& info) {
    ExpectArgs(info, 3, "crossbarAdvanceWatermark");
    Crossbar& crossbar = CrossbarArg(info);
    const uint32_t journal = JournalArg(info, 1, crossbar);
    const double tau = TauArg(info, 2, "tau");
    crossbar.AdvanceWatermark(journal, static_cast<int64_t>(tau));
    return info.Env().Undefined();
  }

  // crossbarRelease(handle, maxRecords, summary: Float64Array) -> released.
  // summary = [released, lastTau, lastJournal, globalWatermark,
  //            newlyOverflowed, pendingRecords]
  Napi::Value Release(const Napi::CallbackInfo& info) {
    ExpectArgs(info, 3, "crossbarRelease");
    Crossbar& crossbar = CrossbarArg(info);
    const double max_records = IntegerArg(info, 1, "maxRecords", 0, 9007199254740991.0);
    const MutableSpan<double> out = DoublesArg(info, 2, "summary", crossbar_summary_words);
    const CrossbarReleaseSummary summary = crossbar.Release(static_cast<uint64_t>(max_records));
    out[0] = static_cast<double>(summary.released);
    out[1] = static_cast<double>(summary.last_tau);
    out[2] = static_cast<double>(summary.last_journal);
    out[3] = static_cast<double>(summary.global_watermark);
    out[4] = static_cast<double>(summary.newly_overflowed);
    out[5] = static_cast<double>(summary.pending_records);
    return Napi::Number::New(info.Env(), static_cast<double>(summary.released));
  }

  // crossbarDrainInto(handle, subscriber, out: Uint8Array) -> bytes written
  Napi::Value DrainInto(const Napi::CallbackInfo& info) {
    ExpectArgs(info, 3, "crossbarDrainInto");
    Crossbar& crossbar = CrossbarArg(info);
    const uint32_t subscriber = SubscriberArg(info, 1, crossbar);
    const MutableSpan<uint8_t> out = MutableBytesArg(info, 2, "out");
    const size_t written = crossbar.DrainInto(subscriber, out);
    return Napi::Number::New(info.Env(), static_cast<double>(written));
  }

  // crossbarSubscriberState(handle, subscriber, out: Float64Array) -> undefined.
  // out = [overflowed 0|1, overflowTau, overflowJournal, bufferedBytes]
  Napi::Value SubscriberState(const Napi::CallbackInfo& info) {
    ExpectArgs(info, 3, "crossbarSubscriberState");
    Crossbar& crossbar = CrossbarArg(info);
    const uint32_t subscriber = SubscriberArg(info, 1, crossbar);
    const MutableSpan<double> out = DoublesArg(info, 2, "out", crossbar_state_words);
    const CrossbarSubscriberState state = crossbar.subscriber_state(subscriber);
    out[0] = state.overflowed ? 1 : 0;
    out[1] = static_cast<double>(state.overflow_tau);
    out[2] = static_cast<double>(state.overflow_journal);
    out[3] = static_cast<double>(state.buffered_bytes);
    return info.Env().Undefined();
  }

  // crossbarResetSubscriber(handle, subscriber) -> undefined
  Napi::Value ResetSubscriber(const Napi::CallbackInfo& info) {
    ExpectArgs(info, 2, "crossbarResetSubscriber");
    Crossbar& crossbar = CrossbarArg(info);
    crossbar.ResetSubscriber(SubscriberArg(info, 1, crossbar));
    return info.Env().Undefined();
  }

  // crossbarGlobalWatermark(handle) -> min_j W_j, or -1
  Napi::Value GlobalWatermark(const Napi::CallbackInfo& info) {
    ExpectArgs(info, 1, "crossbarGlobalWatermark");
    Crossbar& crossbar = CrossbarArg(info);
    return Napi::Number::New(info.Env(), static_cast<double>(crossbar.global_watermark()));
  }

  // crossbarClose(handle) -> undefined; closing twice is allowed.
  Napi::Value Close(const Napi::CallbackInfo& info) {
    ExpectArgs(info, 1, "crossbarClose");
    const Napi::Value value = info[0];
    if (!value.IsExternal() || !value.As<Napi::External<CrossbarHandle>>().CheckTypeTag(
                                   &crossbar_type_tag)) {
      Throw(info.Env(), "invalid_argument", "handle must be a crossbar handle");
    }
    value.As<Napi::External<CrossbarHandle>>().Data()->crossbar.reset();
    return info.Env().Undefined();
  }

  const Napi::FunctionReference* error_class_;
  std::shared_ptr<CrossbarRegistry> registry_;
};

}  // namespace

void RegisterCrossbar(Napi::Env env, Napi::Object exports,
                      const Napi::FunctionReference* error_class) {
  auto* binding = new CrossbarBinding(error_class);
  binding->Register(env, exports);
}

}  // namespace ordo

// ---------------------------------------------------------------------------
// Journal record batches (native/records.h): an encoder behind one opaque,
// type-tagged handle, and a stateless batch decoder. The TypeScript door is
// src/journal/record-buffer.ts (through src/native/index.ts); it checks every
// argument first, and the functions below check them again.
//
// The encoder's buffer is lent to JavaScript as an external ArrayBuffer: each
// block is lent once, when an encode first wrote into it, and the
// ArrayBuffer's finalizer holds a reference to the block, so a view stays
// valid after the encoder grew or closed. Nothing per record reaches the V8
// heap: inputs come in as one Float64Array of taus and one array of views,
// results go out as a length in a caller-owned Float64Array.
#include "records.h"

namespace ordo {
namespace {

// recordsDecode's output Float64Array: meta words, then one quad per record.
constexpr size_t records_meta_words = 6;
constexpr size_t records_record_words = 4;
// recordsEncode's Float64Array of taus: two per record (tau_commit, tau_start).
constexpr size_t records_input_words = 2;
constexpr size_t records_initial_bytes_max = 64u * 1024u * 1024u;

// Distinguishes record encoder handles from every other external value.
constexpr napi_type_tag records_type_tag = {0x6f72646f2d726563ULL, 0x6f72646261746368ULL};

struct RecordEncoderHandle {
  std::unique_ptr<RecordBatchEncoder> encoder;
  uint64_t lent_generation = UINT64_MAX;  // generation of the block last lent out
};

class RecordsBinding {
 public:
  explicit RecordsBinding(const Napi::FunctionReference* error_class)
      : error_class_(error_class) {}

  RecordsBinding(const RecordsBinding&) = delete;
  RecordsBinding& operator=(const RecordsBinding&) = delete;

  void Register(Napi::Env env, Napi::Object exports) {
    exports.Set("recordsEncoderOpen", Method<&RecordsBinding::Open>(env, "recordsEncoderOpen"));
    exports.Set("recordsEncode", Method<&RecordsBinding::Encode>(env, "recordsEncode"));
    exports.Set("recordsEncoderClose",
                Method<&RecordsBinding::Close>(env, "recordsEncoderClose"));
    exports.Set("recordsDecode", Method<&RecordsBinding::Decode>(env, "recordsDecode"));
    exports.Set("recordsMetaWords", Napi::Number::New(env, records_meta_words));
    exports.Set("recordsRecordWords", Napi::Number::New(env, records_record_words));
    exports.Set("recordsPayloadFixedBytes", Napi::Number::New(env, record_payload_fixed_bytes));
    exports.Set("recordsBodyBytesMax", Napi::Number::New(env, record_body_bytes_max));
    NAPI_THROW_IF_FAILED_VOID(env,
                              napi_add_env_cleanup_hook(env, &RecordsBinding::OnEnvCleanup, this));
  }

 private:
  using MethodPointer = Napi::Value (RecordsBinding::*)(const Napi::CallbackInfo&);

  template <MethodPointer M>
  static Napi::Value Dispatch(const Napi::CallbackInfo& info) {
    return (static_cast<RecordsBinding*>(info.Data())->*M)(info);
  }

  template <MethodPointer M>
  Napi::Function Method(Napi::Env env, const char* name) {
    return Napi::Function::New(env, &RecordsBinding::Dispatch<M>, name, this);
  }

  // Encoder handles free themselves in their finalizers (which run at
  // environment teardown too); the binding only has its scratch to drop.
  static void OnEnvCleanup(void* arg) { delete static_cast<RecordsBinding*>(arg); }

  static void FinalizeHandle(Napi::Env /*env*/, RecordEncoderHandle* handle) { delete handle; }

  static void FinalizeBlock(Napi::Env /*env*/, void* /*data*/,
                            std::shared_ptr<RecordBlock>* block) {
    delete block;
  }

  [[noreturn]] void Throw(Napi::Env env, const char* code, const std::string& message) {
    if (!error_class_->IsEmpty()) {
      Napi::Object error =
          error_class_->New({Napi::String::New(env, message), Napi::String::New(env, code)});
      throw Napi::Error(env, error);
    }
    Napi::Error error = Napi::TypeError::New(env, message);
    error.Set("code", Napi::String::New(env, code));
    throw error;
  }

  void ExpectArgs(const Napi::CallbackInfo& info, size_t count, const char* method) {
    if (info.Length() != count) {
      Throw(info.Env(), "invalid_argument",
            std::string(method) + " expects " + std::to_string(count) + " arguments, got " +
                std::to_string(info.Length()));
    }
  }

  double IntegerArg(const Napi::CallbackInfo& info, size_t index, const char* name, double min,
                    double max) {
    const Napi::Value value = info[index];
    if (!value.IsNumber()) {
      Throw(info.Env(), "invalid_argument", std::string(name) + " must be a number");
    }
    const double number = value.As<Napi::Number>().DoubleValue();
    if (!std::isfinite(number) || std::trunc(number) != number || number < min || number > max) {
      Throw(info.Env(), "out_of_range",
            std::string(name) + " must be an integer in [" + std::to_string(min) + ", " +
                std::to_string(max) + "]");
    }
    return number;
  }

  // A Uint8Array value (not an argument): the views handed to recordsEncode.
  ByteView BytesValue(Napi::Env env, const Napi::Value& value, const char* name) {
    if (!value.IsTypedArray() ||
        value.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
      Throw(env, "invalid_argument", std::string(name) + " must be a Uint8Array or Buffer");
    }
    Napi::Uint8Array array = value.As<Napi::Uint8Array>();
    return ByteView::FromRaw(array.Data(), array.ElementLength());
  }

  MutableSpan<double> DoublesArg(const Napi::CallbackInfo& info, size_t index, const char* name,
                                 size_t words_min) {
    const Napi::Value value = info[index];
    if (!value.IsTypedArray() ||
        value.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) {
      Throw(info.Env(), "invalid_argument", std::string(name) + " must be a Float64Array");
    }
    Napi::Float64Array array = value.As<Napi::Float64Array>();
    if (array.ElementLength() < words_min) {
      Throw(info.Env(), "out_of_range",
            std::string(name) + " must hold at least " + std::to_string(words_min) + " numbers");
    }
    return MutableSpan<double>::FromRaw(array.Data(), array.ElementLength());
  }

  RecordEncoderHandle& HandleArg(const Napi::CallbackInfo& info, bool allow_closed) {
    const Napi::Value value = info[0];
    if (!value.IsExternal() || !value.As<Napi::External<RecordEncoderHandle>>().CheckTypeTag(
                                   &records_type_tag)) {
      Throw(info.Env(), "invalid_argument", "handle must be a record encoder handle");
    }
    RecordEncoderHandle& handle = *value.As<Napi::External<RecordEncoderHandle>>().Data();
    if (!allow_closed && handle.encoder == nullptr) {
      Throw(info.Env(), "closed", "record encoder is closed");
    }
    return handle;
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
    Napi::External<RecordEncoderHandle> external = Napi::External<RecordEncoderHandle>::New(
        info.Env(), handle, &RecordsBinding::FinalizeHandle);
    external.TypeTag(&records_type_tag);
    return external;
  }

  // recordsEncode(handle, taus: Float64Array, views: Uint8Array[], count, out: Float64Array)
  //   -> ArrayBuffer when the bytes lie in a block not lent before, else undefined.
  // taus = [tau_commit, tau_start] per record; views = [txn_id, body] per record;
  // out[0] = encoded length in bytes.
  Napi::Value Encode(const Napi::CallbackInfo& info) {
    ExpectArgs(info, 5, "recordsEncode");
    Napi::Env env = info.Env();
    RecordEncoderHandle& handle = HandleArg(info, false);
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
    if (handle.encoder == nullptr) Throw(env, "closed", "record encoder is closed");
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

  // recordsEncoderClose(handle) -> undefined; closing twice is allowed. Lent
  // blocks stay valid until their ArrayBuffers are collected.
  Napi::Value Close(const Napi::CallbackInfo& info) {
    ExpectArgs(info, 1, "recordsEncoderClose");
    HandleArg(info, true).encoder.reset();
    return info.Env().Undefined();
  }

  // recordsDecode(buffer: Uint8Array, lastTau, out: Float64Array) -> record count.
  // out = [count, consumed, error, need, outputFull, lastTau], then per record
  // [offset, payloadLength, tauCommit, tauStart].
  Napi::Value Decode(const Napi::CallbackInfo& info) {
    ExpectArgs(info, 3, "recordsDecode");
    Napi::Env env = info.Env();
    const Napi::Value buffer_value = info[0];
    const ByteView buffer = BytesValue(env, buffer_value, "buffer");
    const double last_tau =
        IntegerArg(info, 1, "lastTau", 0, static_cast<double>(record_tau_max));
    const MutableSpan<double> out =
        DoublesArg(info, 2, "out", records_meta_words + records_record_words);
    const size_t capacity = (out.size() - records_meta_words) / records_record_words;
    if (decoded_.size() < capacity) decoded_.resize(capacity);
    const MutableSpan<DecodedRecord> records =
        MutableSpan<DecodedRecord>::FromRaw(decoded_.data(), capacity);
    const DecodeOutcome outcome =
        DecodeRecords(buffer, static_cast<int64_t>(last_tau), records);
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
    return Napi::Number::New(env, static_cast<double>(outcome.count));
  }

  const Napi::FunctionReference* error_class_;
  // Reused across calls, so steady-state calls allocate nothing.
  std::vector<RecordInput> inputs_;
  std::vector<DecodedRecord> decoded_;
};

}  // namespace

void RegisterRecords(Napi::Env env, Napi::Object exports,
                     const Napi::FunctionReference* error_class) {
  auto* binding = new RecordsBinding(error_class);
  binding->Register(env, exports);
}

}  // namespace ordo

// ---------------------------------------------------------------------------
// Conflict table (native/conflict_table.h): the adjudicator's batch-shaped
// conflict detection behind one opaque, type-tagged handle per table. The
// TypeScript door is NativeConflictTable in src/native/index.ts; it checks
// every argument first, and the functions below check them again (the table
// itself decodes every batch as hostile). A handle's table is freed by
// conflictTableClose, by the handle's finalizer, or by the environment
// cleanup hook, whichever comes first; a call on a freed handle throws code
// "closed".
#include "conflict_table.h"

namespace ordo {
namespace {

// Layout of conflictTableState's Float64Array: keyCount, inFlightCount, horizonTau.
constexpr size_t conflict_state_words = 3;

// Distinguishes conflict table handles from every other external value.
constexpr napi_type_tag conflict_table_type_tag = {0x6f72646f2d636f6eULL, 0x666c6963747462ULL};

struct ConflictTableHandle;

// Live handles of one environment, shared by the handles so a finalizer that
// runs after the cleanup hook still finds it.
struct ConflictTableRegistry {
  std::vector<ConflictTableHandle*> live;
};

struct ConflictTableHandle {
  std::unique_ptr<ConflictTable> table;
  std::shared_ptr<ConflictTableRegistry> registry;
};

class ConflictTableBinding {
 public:
  explicit ConflictTableBinding(const Napi::FunctionReference* error_class)
      : error_class_(error_class), registry_(std::make_shared<ConflictTableRegistry>()) {}

  ConflictTableBinding(const ConflictTableBinding&) = delete;
  ConflictTableBinding& operator=(const ConflictTableBinding&) = delete;

  void Register(Napi::Env env, Napi::Object exports) {
    exports.Set("conflictTableOpen", Method<&ConflictTableBinding::Open>(env, "conflictTableOpen"));
    exports.Set("conflictTableDetect",
                Method<&ConflictTableBinding::Detect>(env, "conflictTableDetect"));
    exports.Set("conflictTableRegister",
                Method<&ConflictTableBinding::RegisterBatch>(env, "conflictTableRegister"));
    exports.Set("conflictTableCommit",
                Method<&ConflictTableBinding::Commit>(env, "conflictTableCommit"));
    exports.Set("conflictTableAbort", Method<&ConflictTableBinding::Abort>(env, "conflictTableAbort"));
    exports.Set("conflictTableForget",
                Method<&ConflictTableBinding::Forget>(env, "conflictTableForget"));
    exports.Set("conflictTableState", Method<&ConflictTableBinding::State>(env, "conflictTableState"));
    exports.Set("conflictTableClose", Method<&ConflictTableBinding::Close>(env, "conflictTableClose"));
    exports.Set("conflictBatchMagic", Napi::Number::New(env, conflict_batch_magic));
    exports.Set("conflictBatchHeaderWords", Napi::Number::New(env, conflict_batch_header_words));
    exports.Set("conflictKeyBytesMax", Napi::Number::New(env, conflict_key_bytes_max));
    exports.Set("conflictStateWords", Napi::Number::New(env, conflict_state_words));
    NAPI_THROW_IF_FAILED_VOID(
        env, napi_add_env_cleanup_hook(env, &ConflictTableBinding::OnEnvCleanup, this));
  }

 private:
  using MethodPointer = Napi::Value (ConflictTableBinding::*)(const Napi::CallbackInfo&);

  template <MethodPointer M>
  static Napi::Value Dispatch(const Napi::CallbackInfo& info) {
    return (static_cast<ConflictTableBinding*>(info.Data())->*M)(info);
  }

  template <MethodPointer M>
  Napi::Function Method(Napi::Env env, const char* name) {
    return Napi::Function::New(env, &ConflictTableBinding::Dispatch<M>, name, this);
  }

  // Environment teardown: free every table still open, then this binding.
  static void OnEnvCleanup(void* arg) {
    auto* self = static_cast<ConflictTableBinding*>(arg);
    for (ConflictTableHandle* handle : self->registry_->live) handle->table.reset();
    self->registry_->live.clear();
    delete self;
  }

  static void Finalize(Napi::Env /*env*/, ConflictTableHandle* handle) {
    std::vector<ConflictTableHandle*>& live = handle->registry->live;
    live.erase(std::remove(live.begin(), live.end(), handle), live.end());
    delete handle;
  }

  [[noreturn]] void Throw(Napi::Env env, const char* code, const std::string& message) {
    if (!error_class_->IsEmpty()) {
      Napi::Object error =
          error_class_->New({Napi::String::New(env, message), Napi::String::New(env, code)});
      throw Napi::Error(env, error);
    }
    Napi::Error error = Napi::TypeError::New(env, message);
    error.Set("code", Napi::String::New(env, code));
    throw error;
  }

  [[noreturn]] void ThrowReject(Napi::Env env, const ConflictStatus& status) {
    Throw(env, status.reject == ConflictReject::kMalformed ? "malformed" : "out_of_range",
          status.message);
  }

  void ExpectArgs(const Napi::CallbackInfo& info, size_t count, const char* method) {
    if (info.Length() != count) {
      Throw(info.Env(), "invalid_argument",
            std::string(method) + " expects " + std::to_string(count) + " arguments, got " +
                std::to_string(info.Length()));
    }
  }

  double NumberArg(const Napi::CallbackInfo& info, size_t index, const char* name) {
    const Napi::Value value = info[index];
    if (!value.IsNumber()) {
      Throw(info.Env(), "invalid_argument", std::string(name) + " must be a number");
    }
    return value.As<Napi::Number>().DoubleValue();
  }

  size_t CountArg(const Napi::CallbackInfo& info, size_t index) {
    const double count = NumberArg(info, index, "count");
    if (!std::isfinite(count) || std::trunc(count) != count || count < 0 ||
        count > static_cast<double>(conflict_tickets_max)) {
      Throw(info.Env(), "out_of_range", "count must be an integer in [0, conflict_tickets_max]");
    }
    return static_cast<size_t>(count);
  }

  template <typename T>
  MutableSpan<T> TypedArg(const Napi::CallbackInfo& info, size_t index, const char* name,
                          napi_typedarray_type type, const char* type_name) {
    const Napi::Value value = info[index];
    if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != type) {
      Throw(info.Env(), "invalid_argument", std::string(name) + " must be a " + type_name);
    }
    Napi::TypedArrayOf<std::remove_const_t<T>> array =
        value.As<Napi::TypedArrayOf<std::remove_const_t<T>>>();
    return MutableSpan<T>::FromRaw(array.Data(), array.ElementLength());
  }

  WordView WordsArg(const Napi::CallbackInfo& info, size_t index, const char* name) {
    return TypedArg<const uint32_t>(info, index, name, napi_uint32_array, "Uint32Array");
  }

  DoubleView DoublesArg(const Napi::CallbackInfo& info, size_t index, const char* name) {
    return TypedArg<const double>(info, index, name, napi_float64_array, "Float64Array");
  }

  ByteView BytesArg(const Napi::CallbackInfo& info, size_t index, const char* name) {
    const MutableSpan<const uint8_t> bytes =
        TypedArg<const uint8_t>(info, index, name, napi_uint8_array, "Uint8Array or Buffer");
    return bytes.size() == 0 ? ByteView() : ByteView::FromRaw(&bytes[0], bytes.size());
  }

  ConflictTableHandle* HandleArg(const Napi::CallbackInfo& info) {
    const Napi::Value value = info[0];
    if (!value.IsExternal() || !value.As<Napi::External<ConflictTableHandle>>().CheckTypeTag(
                                   &conflict_table_type_tag)) {
      Throw(info.Env(), "invalid_argument", "handle must be a conflict table handle");
    }
    return value.As<Napi::External<ConflictTableHandle>>().Data();
  }

  // The open table behind argument 0.
  ConflictTable& TableArg(const Napi::CallbackInfo& info) {
    ConflictTableHandle* handle = HandleArg(info);
    if (handle->table == nullptr) Throw(info.Env(), "closed", "conflict table is closed");
    return *handle->table;
  }

  double TauArg(const Napi::CallbackInfo& info, size_t index, const char* name) {
    const double tau = NumberArg(info, index, name);
    if (!std::isfinite(tau) || std::trunc(tau) != tau ||
        std::fabs(tau) > static_cast<double>(conflict_tau_max)) {
      Throw(info.Env(), "out_of_range", std::string(name) + " must be a safe integer");
    }
    return tau;
  }

  // conflictTableOpen(horizonTau) -> handle
  Napi::Value Open(const Napi::CallbackInfo& info) {
    ExpectArgs(info, 1, "conflictTableOpen");
    const double horizon = TauArg(info, 0, "horizonTau");
    auto* handle = new ConflictTableHandle{
        std::make_unique<ConflictTable>(static_cast<int64_t>(horizon)), registry_};
    registry_->live.push_back(handle);
    Napi::External<ConflictTableHandle> external = Napi::External<ConflictTableHandle>::New(
        info.Env(), handle, &ConflictTableBinding::Finalize);
    external.TypeTag(&conflict_table_type_tag);
    return external;
  }

  // conflictTableDetect(handle, index, taus, keyBytes, verdicts, details, conflictTaus)
  Napi::Value Detect(const Napi::CallbackInfo& info) {
    ExpectArgs(info, 7, "conflictTableDetect");
    ConflictTable& table = TableArg(info);
    const WordView index = WordsArg(info, 1, "index");
    const DoubleView taus = DoublesArg(info, 2, "taus");
    const ByteView key_bytes = BytesArg(info, 3, "keyBytes");
    const DetectOutput out{
        TypedArg<uint8_t>(info, 4, "verdicts", napi_uint8_array, "Uint8Array"),
        TypedArg<uint32_t>(info, 5, "details", napi_uint32_array, "Uint32Array"),
        TypedArg<double>(info, 6, "conflictTaus", napi_float64_array, "Float64Array")};
    const ConflictStatus status = table.Detect(index, taus, key_bytes, out);
    if (!status.ok()) ThrowReject(info.Env(), status);
    return info.Env().Undefined();
  }

  // conflictTableRegister(handle, index, taus, keyBytes)
  Napi::Value RegisterBatch(const Napi::CallbackInfo& info) {
    ExpectArgs(info, 4, "conflictTableRegister");
    ConflictTable& table = TableArg(info);
    const ConflictStatus status = table.Register(
        WordsArg(info, 1, "index"), DoublesArg(info, 2, "taus"), BytesArg(info, 3, "keyBytes"));
    if (!status.ok()) ThrowReject(info.Env(), status);
    return info.Env().Undefined();
  }

  // conflictTableCommit(handle, tickets, taus, count)
  Napi::Value Commit(const Napi::CallbackInfo& info) {
    ExpectArgs(info, 4, "conflictTableCommit");
    ConflictTable& table = TableArg(info);
    const WordView tickets = WordsArg(info, 1, "tickets");
    const DoubleView taus = DoublesArg(info, 2, "taus");
    const ConflictStatus status = table.CommitBatch(tickets, taus, CountArg(info, 3));
    if (!status.ok()) ThrowReject(info.Env(), status);
    return info.Env().Undefined();
  }

  // conflictTableAbort(handle, tickets, count)
  Napi::Value Abort(const Napi::CallbackInfo& info) {
    ExpectArgs(info, 3, "conflictTableAbort");
    ConflictTable& table = TableArg(info);
    const WordView tickets = WordsArg(info, 1, "tickets");
    const ConflictStatus status = table.AbortBatch(tickets, CountArg(info, 2));
    if (!status.ok()) ThrowReject(info.Env(), status);
    return info.Env().Undefined();
  }

  // conflictTableForget(handle, horizonTau)
  Napi::Value Forget(const Napi::CallbackInfo& info) {
    ExpectArgs(info, 2, "conflictTableForget");
    ConflictTable& table = TableArg(info);
    const ConflictStatus status = table.ForgetBefore(TauArg(info, 1, "horizonTau"));
    if (!status.ok()) ThrowReject(info.Env(), status);
    return info.Env().Undefined();
  }

  // conflictTableState(handle, out: Float64Array) -> undefined; out = [keys, in flight, horizon]
  Napi::Value State(const Napi::CallbackInfo& info) {
    ExpectArgs(info, 2, "conflictTableState");
    ConflictTable& table = TableArg(info);
    const MutableSpan<double> out =
        TypedArg<double>(info, 1, "out", napi_float64_array, "Float64Array");
    if (out.size() < conflict_state_words) {
      Throw(info.Env(), "out_of_range", "out must hold conflictStateWords numbers");
    }
    out[0] = static_cast<double>(table.key_count());
    out[1] = static_cast<double>(table.in_flight_count());
    out[2] = static_cast<double>(table.horizon_tau());
    return info.Env().Undefined();
  }

  // conflictTableClose(handle) -> undefined; closing twice is allowed.
  Napi::Value Close(const Napi::CallbackInfo& info) {
    ExpectArgs(info, 1, "conflictTableClose");
    HandleArg(info)->table.reset();
    return info.Env().Undefined();
  }

  const Napi::FunctionReference* error_class_;
  std::shared_ptr<ConflictTableRegistry> registry_;
};

}  // namespace

void RegisterConflictTable(Napi::Env env, Napi::Object exports,
                           const Napi::FunctionReference* error_class) {
  auto* binding = new ConflictTableBinding(error_class);
  binding->Register(env, exports);
}

}  // namespace ordo
