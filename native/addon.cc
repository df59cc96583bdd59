// The N-API door of ordo's native code: registers the addon and takes the one
// JS error class the wrapper in src/native/index.ts hands in at load
// (`setErrorClass`), which every binding throws from then on. The bindings
// live one per file (bind_frame.cc, bind_crossbar.cc, bind_records.cc,
// bind_conflict_table.cc) on the shared machinery of binding.h; the hot-path
// logic lives in N-API-free cores so the same sources build under a fuzzer.
#include <napi.h>

#include "binding.h"

namespace ordo {
namespace {

class OrdoAddon : public Napi::Addon<OrdoAddon> {
 public:
  OrdoAddon(Napi::Env env, Napi::Object exports) : env_(env) {
    DefineAddon(exports, {InstanceMethod("setErrorClass", &OrdoAddon::SetErrorClass)});
    NAPI_THROW_IF_FAILED_VOID(env_,
                              napi_add_env_cleanup_hook(env_, &OrdoAddon::OnEnvCleanup, this));
    // Each binding's cleanup hook runs before this addon's (hooks run in
    // reverse order of registration), while the error class is still held.
    RegisterFrame(env, exports, &error_class_);
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

  Napi::Value SetErrorClass(const Napi::CallbackInfo& info) {
    const ArgumentChecks checks(&error_class_);
    checks.ExpectArgs(info, 1, "setErrorClass");
    if (!info[0].IsFunction()) {
      checks.Throw(info.Env(), "invalid_argument", "setErrorClass expects a constructor");
    }
    error_class_ = Napi::Persistent(info[0].As<Napi::Function>());
    return info.Env().Undefined();
  }

  napi_env env_;
  Napi::FunctionReference error_class_;
  bool cleaned_up_ = false;
};

}  // namespace
}  // namespace ordo

// NODE_API_ADDON pastes the class name into identifiers, so it needs a plain name.
using OrdoAddon = ordo::OrdoAddon;
NODE_API_ADDON(OrdoAddon)
