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
    const ByteView batch = BytesArg(info, 2, "batch");
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
