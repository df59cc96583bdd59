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
#include "frame.h"
#include "span.h"

namespace ordo {
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
