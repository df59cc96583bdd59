/**
 * The layout of a frame scan's output words, shared by the TypeScript
 * scanner (src/protocol/frame.ts) and the native one's wrapper
 * (src/native/index.ts, native/bind_frame.cc): count, consumed, error,
 * output-full, then (type, payload offset, payload length) per frame.
 */
import type { FrameErrorCode } from "./frame";

export const scan_meta_words = 4;
export const scan_meta_count = 0;
export const scan_meta_consumed = 1;
export const scan_meta_error = 2;
export const scan_meta_output_full = 3;
export const scan_frame_words = 3;
/**
 * Bytes one scan looks at: offsets travel as u32. Far above any frame
 * (frame_header_bytes + frame_payload_bytes_max), so a window that is not the
 * whole buffer holds at least one whole frame and a scanning loop advances.
 */
export const scan_window_bytes_max = 1024 * 1024 * 1024;
/** Error index -> code; the values of native FrameError. */
export const frame_scan_error_codes: readonly (FrameErrorCode | null)[] = [
  null,
  "oversize",
  "unsupported_version",
  "malformed",
  "checksum",
];
