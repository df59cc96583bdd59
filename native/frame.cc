// Frame scanner (see frame.h): the checks run in the order docs/protocol.md
// gives, and the oversize check needs only the 12 header bytes, so a peer
// cannot make the receiver wait for (and buffer) a payload it will reject.
#include "frame.h"

#include "crc32c.h"

namespace ordo {
namespace {

struct FrameHeader {
  uint32_t length;
  uint8_t version;
  uint8_t type;
  uint16_t flags;
  uint32_t crc;
};

FrameHeader ReadHeader(ByteView header) {
  ORDO_ASSERT(header.size() == frame_header_bytes);
  FrameHeader h;
  h.length = header.u32le(0);
  h.version = header.at(4);
  h.type = header.at(5);
  h.flags = header.u16le(6);
  h.crc = header.u32le(8);
  return h;
}

// Checks a header that does not depend on the payload.
FrameError CheckHeader(const FrameHeader& h, uint32_t payload_bytes_max) {
  if (h.length > payload_bytes_max) return FrameError::kOversize;
  if (h.version != protocol_version) return FrameError::kUnsupportedVersion;
  if (h.flags != 0 || h.type < frame_type_min || h.type > frame_type_max) {
    return FrameError::kMalformed;
  }
  return FrameError::kNone;
}

}  // namespace

ScanOutcome ScanFrames(ByteView buffer, uint32_t payload_bytes_max, MutableSpan<ScannedFrame> out) {
  ORDO_ASSERT(payload_bytes_max <= frame_payload_bytes_max);
  ScanOutcome outcome{0, 0, FrameError::kNone, false};
  size_t offset = 0;
  while (buffer.size() - offset >= frame_header_bytes) {
    const ByteView header_bytes = buffer.sub(offset, frame_header_bytes);
    const FrameHeader header = ReadHeader(header_bytes);
    const FrameError header_error = CheckHeader(header, payload_bytes_max);
    if (header_error != FrameError::kNone) {
      outcome.error = header_error;
      break;
    }
    const size_t payload_offset = offset + frame_header_bytes;
    if (buffer.size() - payload_offset < header.length) break;  // incomplete
    if (outcome.frame_count == out.size()) {
      outcome.output_full = true;
      break;
    }
    const ByteView payload = buffer.sub(payload_offset, header.length);
    const uint32_t crc = Crc32c(payload, Crc32c(header_bytes.sub(4, 4), 0));
    if (crc != header.crc) {
      outcome.error = FrameError::kChecksum;
      break;
    }
    out[outcome.frame_count] = ScannedFrame{header.type, payload_offset, header.length};
    outcome.frame_count++;
    offset = payload_offset + header.length;
  }
  outcome.consumed = offset;
  ORDO_ASSERT(outcome.consumed <= buffer.size());
  ORDO_ASSERT(outcome.frame_count <= out.size());
  return outcome;
}

}  // namespace ordo
