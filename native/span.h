// Bounds-checked views over memory that the native code does not own.
//
// Every interface in native/ takes a ByteView or a MutableSpan<T> instead of a
// raw pointer plus a length (DESIGN §6): the pair travels together, and every
// read goes through a checked accessor, so a decoder that miscomputes an offset
// stops at an assertion instead of reading past the end of a caller's buffer.
// Nothing here depends on N-API, so the scanner and the checksum build the
// same way under sanitizers and a fuzzer.
#ifndef ORDO_NATIVE_SPAN_H_
#define ORDO_NATIVE_SPAN_H_

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace ordo {

// An invariant that must hold whatever the input; a failure is a bug in ordo,
// never a property of untrusted bytes, so it stops the process loudly.
#define ORDO_ASSERT(condition)                                                           \
  do {                                                                                   \
    if (!(condition)) {                                                                  \
      std::fprintf(stderr, "ordo: assertion failed: %s (%s:%d)\n", #condition, __FILE__, \
                   __LINE__);                                                            \
      std::abort();                                                                      \
    }                                                                                    \
  } while (0)

// A read-only view of bytes owned by someone else (a JS ArrayBuffer, a test).
class ByteView {
 public:
  constexpr ByteView() noexcept : data_(nullptr), size_(0) {}

  // The one place a pointer and a length meet: wrapping memory handed to us.
  static ByteView FromRaw(const uint8_t* data, size_t size) {
    ORDO_ASSERT(data != nullptr || size == 0);
    return ByteView(data, size);
  }

  size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }

  uint8_t at(size_t index) const {
    ORDO_ASSERT(index < size_);
    return data_[index];
  }

  // Little-endian u32 at `offset`; the four bytes must lie inside the view.
  uint32_t u32le(size_t offset) const {
    ORDO_ASSERT(offset <= size_ && size_ - offset >= 4);
    const uint8_t* p = data_ + offset;
    return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
           (static_cast<uint32_t>(p[2]) << 16) | (static_cast<uint32_t>(p[3]) << 24);
  }

  // Little-endian u16 at `offset`.
  uint16_t u16le(size_t offset) const {
    ORDO_ASSERT(offset <= size_ && size_ - offset >= 2);
    const uint8_t* p = data_ + offset;
    return static_cast<uint16_t>(p[0] | (p[1] << 8));
  }

  // Native-endian u64 at `offset`, loaded without alignment requirements.
  uint64_t u64(size_t offset) const {
    ORDO_ASSERT(offset <= size_ && size_ - offset >= 8);
    uint64_t value;
    std::memcpy(&value, data_ + offset, sizeof value);
    return value;
  }

  // Bytes [offset, offset + length) of this view.
  ByteView sub(size_t offset, size_t length) const {
    ORDO_ASSERT(offset <= size_ && length <= size_ - offset);
    return ByteView(data_ + offset, length);
  }

  // Bytes from `offset` to the end.
  ByteView from(size_t offset) const {
    ORDO_ASSERT(offset <= size_);
    return ByteView(data_ + offset, size_ - offset);
  }

 private:
  constexpr ByteView(const uint8_t* data, size_t size) noexcept : data_(data), size_(size) {}

  const uint8_t* data_;
  size_t size_;
};

// A writable view of `T` slots owned by someone else (an output TypedArray).
template <typename T>
class MutableSpan {
 public:
  constexpr MutableSpan() noexcept : data_(nullptr), size_(0) {}

  static MutableSpan FromRaw(T* data, size_t size) {
    ORDO_ASSERT(data != nullptr || size == 0);
    return MutableSpan(data, size);
  }

  size_t size() const noexcept { return size_; }

  T& operator[](size_t index) const {
    ORDO_ASSERT(index < size_);
    return data_[index];
  }

 private:
  constexpr MutableSpan(T* data, size_t size) noexcept : data_(data), size_(size) {}

  T* data_;
  size_t size_;
};

}  // namespace ordo

#endif  // ORDO_NATIVE_SPAN_H_
