// libFuzzer harness for the frame scanner (native/frame.h) and CRC32C: any
// byte string must be scanned without a crash or an out-of-bounds read (ASan
// and UBSan are on), every frame reported must lie inside what was consumed,
// a rescan of the consumed prefix must report the same frames, and the
// hardware CRC32C must agree with the table path. Built and run by
// scripts/native-fuzz.sh.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "../crc32c.h"
#include "../frame.h"
#include "../span.h"

namespace {

constexpr size_t fuzz_frames_max = 32;

void Require(bool condition) {
  if (!condition) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ordo;
  const ByteView input = ByteView::FromRaw(size == 0 ? nullptr : data, size);
  Require(Crc32c(input, 0) == Crc32cTable(input, 0));
  if (size >= 4) Require(Crc32c(input.from(4), input.u32le(0)) == Crc32cTable(input.from(4), input.u32le(0)));

  // The first byte picks the receiver's bound and the output room.
  const uint32_t bound = size == 0 ? frame_payload_bytes_max
                                   : (input.at(0) & 1) != 0 ? frame_payload_bytes_max
                                                           : static_cast<uint32_t>(input.at(0)) * 4;
  const size_t room = 1 + (size == 0 ? 0 : input.at(0) % fuzz_frames_max);
  std::vector<ScannedFrame> frames(room);
  const ScanOutcome outcome =
      ScanFrames(input, bound, MutableSpan<ScannedFrame>::FromRaw(frames.data(), room));
  Require(outcome.consumed <= size);
  Require(outcome.frame_count <= room);
  size_t end = 0;
  for (size_t i = 0; i < outcome.frame_count; i++) {
    const ScannedFrame& frame = frames[i];
    Require(frame.payload_offset == end + frame_header_bytes);
    Require(frame.type >= frame_type_min && frame.type <= frame_type_max);
    end = frame.payload_offset + frame.payload_length;
  }
  Require(end == outcome.consumed);

  // Scanning only the consumed prefix finds the same frames and no error.
  std::vector<ScannedFrame> again(room);
  const ScanOutcome prefix = ScanFrames(input.sub(0, outcome.consumed), bound,
                                        MutableSpan<ScannedFrame>::FromRaw(again.data(), room));
  Require(prefix.frame_count == outcome.frame_count && prefix.consumed == outcome.consumed);
  Require(prefix.error == FrameError::kNone);
  return 0;
}
