// The N-API door of the frame scanner (frame.h), CRC32C (crc32c.h) and the
// realtime clock. Calls are batch-shaped: scanFrames reports every complete
// frame of a buffer in one call, writing (type, offset, length) triples into a
// caller-owned Uint32Array instead of allocating JS objects. The TypeScript
// door is src/native/index.ts; it checks every argument first, and the
// functions below check them again (binding.h).
//
// These exports are read-only and non-enumerable, like the addon's own
// (setErrorClass, defined through Napi::Addon).
#include <napi.h>
#include <time.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "binding.h"
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
// A CRC32C seed is a u32.
constexpr double crc32c_seed_max = 4294967295.0;

constexpr int64_t us_per_s = 1000000;
constexpr int64_t ns_per_us = 1000;

class FrameBinding : public Binding<FrameBinding> {
 public:
  explicit FrameBinding(const Napi::FunctionReference* error_class) : Binding(error_class) {}

  void Register(Napi::Env env, Napi::Object exports) {
    exports.DefineProperties({
        Fixed<&FrameBinding::Crc32cMethod>(env, "crc32c"),
        Fixed<&FrameBinding::Crc32cTableMethod>(env, "crc32cTable"),
        Fixed<&FrameBinding::ScanFramesMethod>(env, "scanFrames"),
        Fixed<&FrameBinding::RealtimeMicros>(env, "realtimeMicros"),
        Fixed("framePayloadBytesMax", Napi::Number::New(env, frame_payload_bytes_max)),
        Fixed("frameHeaderBytes", Napi::Number::New(env, frame_header_bytes)),
        Fixed("scanMetaWords", Napi::Number::New(env, scan_meta_words)),
        Fixed("crc32cHardware", Napi::Boolean::New(env, Crc32cHardwareAvailable())),
    });
    AddCleanupHook(env);
  }

 private:
  // Like the methods Napi::Addon defines, the function itself has no name.
  template <MethodPointer M>
  Napi::PropertyDescriptor Fixed(Napi::Env env, const char* name) {
    return Fixed(name, Method<M>(env, nullptr));
  }

  static Napi::PropertyDescriptor Fixed(const char* name, Napi::Value value) {
    return Napi::PropertyDescriptor::Value(name, value, napi_default);
  }

  // crc32c(data: Uint8Array, seed: number) -> number
  Napi::Value Crc32cMethod(const Napi::CallbackInfo& info) {
    return Checksum(info, "crc32c", &Crc32c);
  }

  // crc32cTable(data: Uint8Array, seed: number) -> number: the portable path,
  // so tests can check it on a CPU where crc32c takes the SSE4.2 path.
  Napi::Value Crc32cTableMethod(const Napi::CallbackInfo& info) {
    return Checksum(info, "crc32cTable", &Crc32cTable);
  }

  Napi::Value Checksum(const Napi::CallbackInfo& info, const char* method,
                       uint32_t (*crc32c)(ByteView data, uint32_t seed)) {
    ExpectArgs(info, 2, method);
    const ByteView data = BytesArg(info, 0, "data");
    const double seed = IntegerArg(info, 1, "seed", 0, crc32c_seed_max);
    return Napi::Number::New(info.Env(), crc32c(data, static_cast<uint32_t>(seed)));
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

  // Scan results before they are copied out; kept across calls so the hot path
  // allocates only when a caller asks for more frames than ever before.
  std::vector<ScannedFrame> scratch_;
};

}  // namespace

void RegisterFrame(Napi::Env env, Napi::Object exports,
                   const Napi::FunctionReference* error_class) {
  RegisterBinding<FrameBinding>(env, exports, error_class);
}

}  // namespace ordo
