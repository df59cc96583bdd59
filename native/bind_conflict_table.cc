// The N-API door of the adjudicator's conflict table (conflict_table.h):
// batch-shaped conflict detection behind one opaque, type-tagged handle per
// table. The TypeScript door is NativeConflictTable in src/native/index.ts; it
// checks every argument first, and the functions below check them again
// (binding.h; the table itself decodes every batch as hostile). A handle's
// table is freed by conflictTableClose, by the handle's finalizer, or by the
// environment cleanup hook, whichever comes first; a call on a freed handle
// throws code "closed".
#include <napi.h>

#include <cmath>
#include <cstdint>
#include <memory>
#include <string>

#include "binding.h"
#include "conflict_table.h"
#include "span.h"

namespace ordo {
namespace {

// Layout of conflictTableState's Float64Array: keyCount, inFlightCount, horizonTau.
constexpr size_t conflict_state_words = 3;

struct ConflictTableTag {
  // Distinguishes conflict table handles from every other external value.
  static constexpr napi_type_tag type_tag = {0x6f72646f2d636f6eULL, 0x666c6963747462ULL};
  static constexpr const char* noun = "conflict table";
};

class ConflictTableBinding
    : public HandleBinding<ConflictTableBinding, ConflictTable, ConflictTableTag> {
 public:
  explicit ConflictTableBinding(const Napi::FunctionReference* error_class)
      : HandleBinding(error_class) {}

  void Register(Napi::Env env, Napi::Object exports) {
    Export<&ConflictTableBinding::Open>(env, exports, "conflictTableOpen");
    Export<&ConflictTableBinding::Detect>(env, exports, "conflictTableDetect");
    Export<&ConflictTableBinding::RegisterBatch>(env, exports, "conflictTableRegister");
    Export<&ConflictTableBinding::Commit>(env, exports, "conflictTableCommit");
    Export<&ConflictTableBinding::Abort>(env, exports, "conflictTableAbort");
    Export<&ConflictTableBinding::Forget>(env, exports, "conflictTableForget");
    Export<&ConflictTableBinding::State>(env, exports, "conflictTableState");
    Export<&ConflictTableBinding::Close>(env, exports, "conflictTableClose");
    exports.Set("conflictBatchMagic", Napi::Number::New(env, conflict_batch_magic));
    exports.Set("conflictBatchHeaderWords", Napi::Number::New(env, conflict_batch_header_words));
    exports.Set("conflictKeyBytesMax", Napi::Number::New(env, conflict_key_bytes_max));
    exports.Set("conflictStateWords", Napi::Number::New(env, conflict_state_words));
    AddCleanupHook(env);
  }

 private:
  [[noreturn]] void ThrowReject(Napi::Env env, const ConflictStatus& status) {
    Throw(env, status.reject == ConflictReject::kMalformed ? "malformed" : "out_of_range",
          status.message);
  }

  Napi::Value Done(Napi::Env env, const ConflictStatus& status) {
    if (!status.ok()) ThrowReject(env, status);
    return env.Undefined();
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

  double TauArg(const Napi::CallbackInfo& info, size_t index, const char* name) {
    const double tau = NumberArg(info, index, name);
    if (!std::isfinite(tau) || std::trunc(tau) != tau ||
        std::fabs(tau) > static_cast<double>(conflict_tau_max)) {
      Throw(info.Env(), "out_of_range", std::string(name) + " must be a safe integer");
    }
    return tau;
  }

  WordView ConstWordsArg(const Napi::CallbackInfo& info, size_t index, const char* name) {
    return TypedArg<const uint32_t>(info, index, name, napi_uint32_array, "Uint32Array");
  }

  DoubleView ConstDoublesArg(const Napi::CallbackInfo& info, size_t index, const char* name) {
    return TypedArg<const double>(info, index, name, napi_float64_array, "Float64Array");
  }

  // The batch a call hands over in arguments 1..3: index, taus, keyBytes.
  struct BatchArgs {
    WordView index;
    DoubleView taus;
    ByteView key_bytes;
  };

  BatchArgs BatchArg(const Napi::CallbackInfo& info) {
    // Braced, so the arguments are checked in order.
    return BatchArgs{ConstWordsArg(info, 1, "index"), ConstDoublesArg(info, 2, "taus"),
                     BytesArg(info, 3, "keyBytes")};
  }

  // conflictTableOpen(horizonTau) -> handle
  Napi::Value Open(const Napi::CallbackInfo& info) {
    ExpectArgs(info, 1, "conflictTableOpen");
    const double horizon = TauArg(info, 0, "horizonTau");
    return Lend(info.Env(), std::make_unique<ConflictTable>(static_cast<int64_t>(horizon)));
  }

  // conflictTableDetect(handle, index, taus, keyBytes, verdicts, details, conflictTaus)
  Napi::Value Detect(const Napi::CallbackInfo& info) {
    ExpectArgs(info, 7, "conflictTableDetect");
    ConflictTable& table = ObjectArg(info);
    const BatchArgs batch = BatchArg(info);
    const DetectOutput out{TypedArg<uint8_t>(info, 4, "verdicts", napi_uint8_array, "Uint8Array"),
                           WordsArg(info, 5, "details"), DoublesArg(info, 6, "conflictTaus", 0)};
    return Done(info.Env(), table.Detect(batch.index, batch.taus, batch.key_bytes, out));
  }

  // conflictTableRegister(handle, index, taus, keyBytes)
  Napi::Value RegisterBatch(const Napi::CallbackInfo& info) {
    ExpectArgs(info, 4, "conflictTableRegister");
    ConflictTable& table = ObjectArg(info);
    const BatchArgs batch = BatchArg(info);
    return Done(info.Env(), table.Register(batch.index, batch.taus, batch.key_bytes));
  }

  // conflictTableCommit(handle, tickets, taus, count)
  Napi::Value Commit(const Napi::CallbackInfo& info) {
    ExpectArgs(info, 4, "conflictTableCommit");
    ConflictTable& table = ObjectArg(info);
    const WordView tickets = ConstWordsArg(info, 1, "tickets");
    const DoubleView taus = ConstDoublesArg(info, 2, "taus");
    const size_t count = CountArg(info, 3);
    return Done(info.Env(), table.CommitBatch(tickets, taus, count));
  }

  // conflictTableAbort(handle, tickets, count)
  Napi::Value Abort(const Napi::CallbackInfo& info) {
    ExpectArgs(info, 3, "conflictTableAbort");
    ConflictTable& table = ObjectArg(info);
    const WordView tickets = ConstWordsArg(info, 1, "tickets");
    const size_t count = CountArg(info, 2);
    return Done(info.Env(), table.AbortBatch(tickets, count));
  }

  // conflictTableForget(handle, horizonTau)
  Napi::Value Forget(const Napi::CallbackInfo& info) {
    ExpectArgs(info, 2, "conflictTableForget");
    ConflictTable& table = ObjectArg(info);
    const double horizon = TauArg(info, 1, "horizonTau");
    return Done(info.Env(), table.ForgetBefore(horizon));
  }

  // conflictTableState(handle, out: Float64Array) -> undefined; out = [keys, in flight, horizon]
  Napi::Value State(const Napi::CallbackInfo& info) {
    ExpectArgs(info, 2, "conflictTableState");
    ConflictTable& table = ObjectArg(info);
    const MutableSpan<double> out = DoublesArg(info, 1, "out", 0);
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
    HandleArg(info).object.reset();
    return info.Env().Undefined();
  }
};

}  // namespace

void RegisterConflictTable(Napi::Env env, Napi::Object exports,
                           const Napi::FunctionReference* error_class) {
  RegisterBinding<ConflictTableBinding>(env, exports, error_class);
}

}  // namespace ordo
