/**
 * The protocol's public door (docs/protocol.md): framing, CRC32C and typed
 * messages. Other components import from here, never from the files behind it.
 */
export {
  frame_header_bytes,
  frame_payload_bytes_max,
  protocol_version,
  MessageType,
  scanFrames,
  scanFramesJs,
  scanFramesInto,
  FrameScan,
  encodeFrame,
  encodeFrameInto,
  FrameDecoder,
} from "./frame";
export type {
  FrameErrorCode,
  Engine,
  ScannedFrame,
  ScanResult,
  DecodedFrame,
  DecodeResult,
  FrameDecoderOptions,
} from "./frame";
export { crc32c, crc32cJs } from "./crc32c";
export {
  WriteKind,
  Verdict,
  CommitReplyFlag,
  ErrorCode,
  txn_id_bytes,
  ProtocolError,
  errorCodeFor,
  isWrittenKind,
  isRowKind,
  encodeCommitBody,
  decodeCommitBody,
  encodeDdlImage,
  decodeDdlImage,
  encodePayload,
  encodeMessage,
  decodeMessage,
} from "./messages";
export type {
  Write,
  CommitBody,
  CommitRequest,
  CommitReply,
  ErrorMessage,
  Ping,
  Pong,
  Subscribe,
  SubscribeRange,
  RecordMessage,
  Watermark,
  Applied,
  WaitVisible,
  Visible,
  DdlImage,
  Message,
  ProtocolErrorCode,
} from "./messages";
