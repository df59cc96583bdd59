// The N-API door of the crossbar (crossbar.h): merge and route behind one
// opaque, type-tagged handle per crossbar. The TypeScript door is
// NativeCrossbar in src/native/index.ts; it checks every argument first, and
// the functions below check them again (binding.h). A handle's crossbar is
// freed by crossbarClose, by the handle's finalizer, or by the environment
// cleanup hook, whichever comes first; a call on a freed handle throws code
// "closed".
#include <napi.h>

#include <cstdint>
#include <memory>
#include <string>

#include "binding.h"
#include "crossbar.h"
#include "span.h"

namespace ordo {
namespace {

// Layout of crossbarRelease's Float64Array summary.
constexpr size_t crossbar_summary_words = 6;
// Layout of crossbarSubscriberState's Float64Array.
constexpr size_t crossbar_state_words = 4;
// crossbarRelease's maxRecords: any safe integer (2^53 - 1).
constexpr double crossbar_release_records_max = 9007199254740991.0;

struct CrossbarTag {
  // Distinguishes crossbar handles from every other external value.
  static constexpr napi_type_tag type_tag = {0x6f72646f2d786261ULL, 0x72636f7373626172ULL};
  static constexpr const char* noun = "crossbar";
};

class CrossbarBinding : public HandleBinding<CrossbarBinding, Crossbar, CrossbarTag> {
 public:
  explicit CrossbarBinding(const Napi::FunctionReference* error_class)
      : HandleBinding(error_class) {}

  void Register(Napi::Env env, Napi::Object exports) {
    Export<&CrossbarBinding::Open>(env, exports, "crossbarOpen");
    Export<&CrossbarBinding::PushBatch>(env, exports, "crossbarPushBatch");
    Export<&CrossbarBinding::AdvanceWatermark>(env, exports, "crossbarAdvanceWatermark");
    Export<&CrossbarBinding::Release>(env, exports, "crossbarRelease");
    Export<&CrossbarBinding::DrainInto>(env, exports, "crossbarDrainInto");
    Export<&CrossbarBinding::SubscriberState>(env, exports, "crossbarSubscriberState");
    Export<&CrossbarBinding::ResetSubscriber>(env, exports, "crossbarResetSubscriber");
    Export<&CrossbarBinding::GlobalWatermark>(env, exports, "crossbarGlobalWatermark");
    Export<&CrossbarBinding::Close>(env, exports, "crossbarClose");
    exports.Set("crossbarBatchMagic", Napi::Number::New(env, crossbar_batch_magic));
    exports.Set("crossbarConfigMagic", Napi::Number::New(env, crossbar_config_magic));
    exports.Set("crossbarEntryHeaderBytes", Napi::Number::New(env, crossbar_entry_header_bytes));
    exports.Set("crossbarRecordHeaderBytes", Napi::Number::New(env, crossbar_record_header_bytes));
    exports.Set("crossbarSummaryWords", Napi::Number::New(env, crossbar_summary_words));
    exports.Set("crossbarStateWords", Napi::Number::New(env, crossbar_state_words));
    AddCleanupHook(env);
  }

 private:
  [[noreturn]] void ThrowReject(Napi::Env env, const CrossbarStatus& status) {
    Throw(env, status.reject == CrossbarReject::kOutOfOrder ? "out_of_order" : "malformed",
          status.message);
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

  // crossbarOpen(journals: number, config: Uint8Array) -> handle
  Napi::Value Open(const Napi::CallbackInfo& info) {
    ExpectArgs(info, 2, "crossbarOpen");
    const double journals = IntegerArg(info, 0, "journals", 1, crossbar_journals_max);
    const ByteView config = BytesArg(info, 1, "config");
    CrossbarStatus status{CrossbarReject::kNone, std::string()};
    std::unique_ptr<Crossbar> crossbar =
        Crossbar::Create(static_cast<uint32_t>(journals), config, &status);
    if (crossbar == nullptr) ThrowReject(info.Env(), status);
    return Lend(info.Env(), std::move(crossbar));
  }

  // crossbarPushBatch(handle, journal, batch: Uint8Array, watermark) -> undefined
  Napi::Value PushBatch(const Napi::CallbackInfo& info) {
    ExpectArgs(info, 4, "crossbarPushBatch");
    Crossbar& crossbar = ObjectArg(info);
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
    Crossbar& crossbar = ObjectArg(info);
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
    Crossbar& crossbar = ObjectArg(info);
    const double max_records = IntegerArg(info, 1, "maxRecords", 0, crossbar_release_records_max);
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
    Crossbar& crossbar = ObjectArg(info);
    const uint32_t subscriber = SubscriberArg(info, 1, crossbar);
    const MutableSpan<uint8_t> out = MutableBytesArg(info, 2, "out");
    const size_t written = crossbar.DrainInto(subscriber, out);
    return Napi::Number::New(info.Env(), static_cast<double>(written));
  }

  // crossbarSubscriberState(handle, subscriber, out: Float64Array) -> undefined.
  // out = [overflowed 0|1, overflowTau, overflowJournal, bufferedBytes]
  Napi::Value SubscriberState(const Napi::CallbackInfo& info) {
    ExpectArgs(info, 3, "crossbarSubscriberState");
    Crossbar& crossbar = ObjectArg(info);
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
    Crossbar& crossbar = ObjectArg(info);
    crossbar.ResetSubscriber(SubscriberArg(info, 1, crossbar));
    return info.Env().Undefined();
  }

  // crossbarGlobalWatermark(handle) -> min_j W_j, or -1
  Napi::Value GlobalWatermark(const Napi::CallbackInfo& info) {
    ExpectArgs(info, 1, "crossbarGlobalWatermark");
    Crossbar& crossbar = ObjectArg(info);
    return Napi::Number::New(info.Env(), static_cast<double>(crossbar.global_watermark()));
  }

  // crossbarClose(handle) -> undefined; closing twice is allowed.
  Napi::Value Close(const Napi::CallbackInfo& info) {
    ExpectArgs(info, 1, "crossbarClose");
    HandleArg(info).object.reset();
    return info.Env().Undefined();
  }
};

}  // namespace

void RegisterCrossbar(Napi::Env env, Napi::Object exports,
                      const Napi::FunctionReference* error_class) {
  RegisterBinding<CrossbarBinding>(env, exports, error_class);
}

}  // namespace ordo
