// The frame layer of ordo's wire protocol (docs/protocol.md), as a pure C++
// scanner with no N-API, so a fuzzer and the sanitizer build can drive it
// directly.
//
// ScanFrames walks complete frames from the start of a buffer and reports each
// one's type and payload position; it stops at the first rejected frame, at an
// incomplete frame, or when the output span is full. It treats every byte as
// hostile: each header field is read once, each length is checked against the
// receiver's bound before it is used, and nothing is read outside the buffer.
// The TypeScript twin is scanFramesJs in src/protocol/frame.ts.
#ifndef ORDO_NATIVE_FRAME_H_
#define ORDO_NATIVE_FRAME_H_

#include <cstddef>
#include <cstdint>

#include "span.h"

namespace ordo {

constexpr size_t frame_header_bytes = 12;
constexpr uint32_t frame_payload_bytes_max = 16u * 1024u * 1024u;
constexpr uint8_t protocol_version = 1;
constexpr uint8_t frame_type_min = 1;  // COMMIT_REQUEST
constexpr uint8_t frame_type_max = 11;  // VISIBLE

// Rejection reasons, in the order a receiver checks them. The numeric values
// cross the N-API boundary; src/native/index.ts maps them back to names.
enum class FrameError : uint32_t {
  kNone = 0,
  kOversize = 1,
  kUnsupportedVersion = 2,
  kMalformed = 3,
  kChecksum = 4,
};

struct ScannedFrame {
  uint32_t type;
  size_t payload_offset;
  uint32_t payload_length;
};

struct ScanOutcome {
  size_t frame_count;  // frames written to the output span
  size_t consumed;     // bytes covered by those frames (start of what follows)
  FrameError error;    // why scanning stopped at `consumed`, or kNone
  bool output_full;    // stopped only because the output span had no room
};

// Scans `buffer` from offset 0. `payload_bytes_max` is the receiver's bound,
// at most frame_payload_bytes_max. Without an error, `consumed` is where the
// next (incomplete or unscanned) frame starts; with one, it is the offset of
// the rejected frame.
ScanOutcome ScanFrames(ByteView buffer, uint32_t payload_bytes_max, MutableSpan<ScannedFrame> out);

}  // namespace ordo

#endif  // ORDO_NATIVE_FRAME_H_
