// The machinery every N-API binding in native/bind_*.cc shares, so each
// binding file holds only its own functions: the one way to throw (the JS
// error class handed in at load, with a stable `code`), the second check of
// every argument (the TypeScript wrapper in src/native/index.ts checks first),
// member functions exported as JS functions, and native objects lent to
// JavaScript as type-tagged handles that a finalizer or the environment
// cleanup hook frees, whichever comes first.
//
// Only the bind_*.cc files and addon.cc include this header (and napi.h); the
// cores they wrap stay N-API-free so they build under sanitizers and fuzzers.
#ifndef ORDO_NATIVE_BINDING_H_
#define ORDO_NATIVE_BINDING_H_

#include <napi.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "span.h"

namespace ordo {

// Each binding adds its functions and constants to `exports`. They throw the
// error class that `error_class` holds once setErrorClass ran (addon.cc).
void RegisterFrame(Napi::Env env, Napi::Object exports, const Napi::FunctionReference* error_class);
void RegisterCrossbar(Napi::Env env, Napi::Object exports,
                      const Napi::FunctionReference* error_class);
void RegisterRecords(Napi::Env env, Napi::Object exports,
                     const Napi::FunctionReference* error_class);
void RegisterConflictTable(Napi::Env env, Napi::Object exports,
                           const Napi::FunctionReference* error_class);

// Throws the error class handed in at load, constructed as (message, code);
// before setErrorClass ran, a TypeError that still carries `code`.
class ErrorThrower {
 public:
  explicit ErrorThrower(const Napi::FunctionReference* error_class) : error_class_(error_class) {
    ORDO_ASSERT(error_class != nullptr);
  }

  [[noreturn]] void Throw(Napi::Env env, const char* code, const std::string& message) const {
    if (!error_class_->IsEmpty()) {
      Napi::Object error =
          error_class_->New({Napi::String::New(env, message), Napi::String::New(env, code)});
      throw Napi::Error(env, error);
    }
    Napi::Error error = Napi::TypeError::New(env, message);
    error.Set("code", Napi::String::New(env, code));
    throw error;
  }

 private:
  const Napi::FunctionReference* error_class_;
};

// The second check of every argument: a wrong type throws "invalid_argument",
// a value outside its bounds "out_of_range".
class ArgumentChecks : public ErrorThrower {
 public:
  using ErrorThrower::ErrorThrower;

  void ExpectArgs(const Napi::CallbackInfo& info, size_t count, const char* method) const {
    if (info.Length() != count) {
      Throw(info.Env(), "invalid_argument",
            std::string(method) + " expects " + std::to_string(count) + " arguments, got " +
                std::to_string(info.Length()));
    }
  }

  // An integral JS number in [min, max].
  double IntegerArg(const Napi::CallbackInfo& info, size_t index, const char* name, double min,
                    double max) const {
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

  // A typed array of `type` (named `type_name` in the message), as a span of T.
  template <typename T>
  MutableSpan<T> TypedValue(Napi::Env env, const Napi::Value& value, const char* name,
                            napi_typedarray_type type, const char* type_name) const {
    if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != type) {
      Throw(env, "invalid_argument", std::string(name) + " must be a " + type_name);
    }
    Napi::TypedArrayOf<std::remove_const_t<T>> array =
        value.As<Napi::TypedArrayOf<std::remove_const_t<T>>>();
    return MutableSpan<T>::FromRaw(array.Data(), array.ElementLength());
  }

  template <typename T>
  MutableSpan<T> TypedArg(const Napi::CallbackInfo& info, size_t index, const char* name,
                          napi_typedarray_type type, const char* type_name) const {
    return TypedValue<T>(info.Env(), info[index], name, type, type_name);
  }

  // A Uint8Array value (not necessarily an argument: recordsEncode's views).
  ByteView BytesValue(Napi::Env env, const Napi::Value& value, const char* name) const {
    const MutableSpan<const uint8_t> bytes =
        TypedValue<const uint8_t>(env, value, name, napi_uint8_array, "Uint8Array or Buffer");
    return bytes.size() == 0 ? ByteView() : ByteView::FromRaw(&bytes[0], bytes.size());
  }

  ByteView BytesArg(const Napi::CallbackInfo& info, size_t index, const char* name) const {
    return BytesValue(info.Env(), info[index], name);
  }

  MutableSpan<uint8_t> MutableBytesArg(const Napi::CallbackInfo& info, size_t index,
                                       const char* name) const {
    return TypedArg<uint8_t>(info, index, name, napi_uint8_array, "Uint8Array or Buffer");
  }

  MutableSpan<uint32_t> WordsArg(const Napi::CallbackInfo& info, size_t index,
                                 const char* name) const {
    return TypedArg<uint32_t>(info, index, name, napi_uint32_array, "Uint32Array");
  }

  // A Float64Array of at least `words_min` numbers.
  MutableSpan<double> DoublesArg(const Napi::CallbackInfo& info, size_t index, const char* name,
                                 size_t words_min) const {
    const MutableSpan<double> doubles =
        TypedArg<double>(info, index, name, napi_float64_array, "Float64Array");
    if (doubles.size() < words_min) {
      Throw(info.Env(), "out_of_range",
            std::string(name) + " must hold at least " + std::to_string(words_min) + " numbers");
    }
    return doubles;
  }
};

// A binding object of one environment: its member functions become JS
// functions, and the environment cleanup hook deletes it (after letting
// Derived free what it holds, see OnEnvCleanup). Derived is created with new
// and calls AddCleanupHook once from its registration.
template <typename Derived>
class Binding : public ArgumentChecks {
 public:
  Binding(const Binding&) = delete;
  Binding& operator=(const Binding&) = delete;

 protected:
  explicit Binding(const Napi::FunctionReference* error_class) : ArgumentChecks(error_class) {}
  ~Binding() = default;

  using MethodPointer = Napi::Value (Derived::*)(const Napi::CallbackInfo&);

  // exports[name] = a JS function named `name` that calls M on this binding.
  template <MethodPointer M>
  void Export(Napi::Env env, Napi::Object exports, const char* name) {
    exports.Set(name, Method<M>(env, name));
  }

  // A JS function that calls M on this binding; `name` may be null (no name).
  template <MethodPointer M>
  Napi::Function Method(Napi::Env env, const char* name) {
    return Napi::Function::New(env, &Binding::Dispatch<M>, name, static_cast<Derived*>(this));
  }

  void AddCleanupHook(Napi::Env env) {
    NAPI_THROW_IF_FAILED_VOID(env, napi_add_env_cleanup_hook(env, &Binding::OnEnvCleanup, this));
  }

  // What Derived frees at environment teardown before it is deleted; a
  // binding whose objects free themselves in their finalizers keeps this.
  void ReleaseAll() {}

 private:
  template <MethodPointer M>
  static Napi::Value Dispatch(const Napi::CallbackInfo& info) {
    return (static_cast<Derived*>(info.Data())->*M)(info);
  }

  static void OnEnvCleanup(void* arg) {
    auto* self = static_cast<Derived*>(static_cast<Binding*>(arg));
    self->ReleaseAll();
    delete self;
  }
};

// The checks of a handle argument, for a Handle that declares
//   static constexpr napi_type_tag type_tag;  // unique to this kind of handle
//   static constexpr const char* noun;        // "crossbar": in messages
// A value that is not an External with Handle's tag throws
// "invalid_argument: handle must be a <noun> handle".
template <typename Handle>
Handle& TaggedHandleArg(const ErrorThrower& thrower, const Napi::CallbackInfo& info, size_t index) {
  const Napi::Value value = info[index];
  if (!value.IsExternal() || !value.As<Napi::External<Handle>>().CheckTypeTag(&Handle::type_tag)) {
    thrower.Throw(info.Env(), "invalid_argument",
                  std::string("handle must be a ") + Handle::noun + " handle");
  }
  Handle* handle = value.As<Napi::External<Handle>>().Data();
  ORDO_ASSERT(handle != nullptr);
  return *handle;
}

// Throws "closed: <noun> is closed" when the handle's object was freed.
template <typename Handle, typename Object>
Object& OpenObject(const ErrorThrower& thrower, Napi::Env env,
                   const std::unique_ptr<Object>& object) {
  if (object == nullptr) thrower.Throw(env, "closed", std::string(Handle::noun) + " is closed");
  return *object;
}

// Wraps `handle` (owned by the External from now on) in an External tagged
// with Handle::type_tag; `finalize` runs when JavaScript collects it.
template <typename Handle>
Napi::Value LendHandle(Napi::Env env, Handle* handle, void (*finalize)(Napi::Env, Handle*)) {
  Napi::External<Handle> external = Napi::External<Handle>::New(env, handle, finalize);
  external.TypeTag(&Handle::type_tag);
  return external;
}

// Creates Derived for this environment and lets it add its exports; its
// cleanup hook deletes it when the environment shuts down.
template <typename Derived>
void RegisterBinding(Napi::Env env, Napi::Object exports,
                     const Napi::FunctionReference* error_class) {
  auto* binding = new Derived(error_class);
  binding->Register(env, exports);
}

// A binding whose objects (one Object per handle) are also tracked in a list
// of live handles, so the environment cleanup hook frees every object
// JavaScript left open. The list is shared with the handles, so a finalizer
// that runs after the cleanup hook still finds it. Tag is a type with
// `type_tag` and `noun` as TaggedHandleArg describes.
template <typename Derived, typename Object, typename Tag>
class HandleBinding : public Binding<Derived> {
 protected:
  struct Registry;

  struct Handle {
    static constexpr const napi_type_tag& type_tag = Tag::type_tag;
    static constexpr const char* noun = Tag::noun;
    std::unique_ptr<Object> object;  // null once closed
    std::shared_ptr<Registry> registry;
  };

  struct Registry {
    std::vector<Handle*> live;
  };

  explicit HandleBinding(const Napi::FunctionReference* error_class)
      : Binding<Derived>(error_class), registry_(std::make_shared<Registry>()) {}

  // A new handle that owns `object`, as a tagged External.
  Napi::Value Lend(Napi::Env env, std::unique_ptr<Object> object) {
    ORDO_ASSERT(object != nullptr);
    auto* handle = new Handle{std::move(object), registry_};
    registry_->live.push_back(handle);
    return LendHandle<Handle>(env, handle, &HandleBinding::Finalize);
  }

  // The handle at argument 0, open or closed.
  Handle& HandleArg(const Napi::CallbackInfo& info) const {
    return TaggedHandleArg<Handle>(*this, info, 0);
  }

  // The open object behind argument 0.
  Object& ObjectArg(const Napi::CallbackInfo& info) const {
    return OpenObject<Handle>(*this, info.Env(), HandleArg(info).object);
  }

  // Environment teardown: free every object still open.
  void ReleaseAll() {
    for (Handle* handle : registry_->live) handle->object.reset();
    registry_->live.clear();
  }

 private:
  friend class Binding<Derived>;

  static void Finalize(Napi::Env /*env*/, Handle* handle) {
    std::vector<Handle*>& live = handle->registry->live;
    live.erase(std::remove(live.begin(), live.end(), handle), live.end());
    delete handle;
  }

  std::shared_ptr<Registry> registry_;
};

}  // namespace ordo

#endif  // ORDO_NATIVE_BINDING_H_
