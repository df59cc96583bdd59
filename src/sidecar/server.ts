/**
 * The sidecar's network adapter: a node:net server on a Unix socket that
 * turns bytes into frames into messages for the sans-I/O `Sidecar`, and
 * replies back into frames. This file and `start.ts` are the only places in
 * the sidecar that touch the network, the file system or Node timers.
 *
 * Only PostgreSQL's user and the sidecar may connect: the socket's directory
 * must be 0700 (created so if missing; refused if looser) and the socket is
 * chmod 0600 right after listen; with `socketOwner` both are chowned to that
 * user. Each connection has its own FrameDecoder; a frame that is oversize,
 * of another version, malformed or fails its checksum gets one ERROR frame
 * (request_id 0) and that connection is closed, never the others. The
 * server is bounded: at most `maxConnections` connections (the next one gets
 * ERROR unavailable and is closed) and at most `maxInFlightPerConnection`
 * commits in flight per connection (past it, the connection stops being
 * read until replies drain it).
 *
 * Replication (docs/replication.md): a connection that sends SUBSCRIBE
 * becomes a subscription of `Replication` (its socket is the subscription's
 * sink) and may then send only APPLIED and PING; WAIT_VISIBLE is answered
 * VISIBLE by `Replication`. Without `replication` these are refused.
 */
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import {
  encodeMessage,
  errorCodeFor,
  ErrorCode,
  FrameDecoder,
  frame_payload_bytes_max,
  MessageType,
  ProtocolError,
  decodeMessage,
  CommitReplyFlag,
  Verdict,
} from "../protocol";
import type { Applied, FrameErrorCode, Message, Subscribe, WaitVisible } from "../protocol";
import type { Logger } from "./log";
import type { Sidecar } from "./sidecar";
import type { Replication, SubscriberLink } from "./subscriptions";
import { WaitStats } from "./wait-stats";

export const connections_max_default = 1024;
export const connection_in_flight_max_default = 256;
/** How long a rejected connection may take to read its ERROR frame before it is destroyed. */
export const close_linger_ms = 1000;
const socket_mode = 0o600;
const socket_dir_mode = 0o700;

export interface SocketOwner {
  uid: number;
  gid: number;
}

export interface SidecarServerOptions {
  socketPath: string;
  sidecar: Sidecar;
  logger: Logger;
  /** Largest frame payload accepted; at most frame_payload_bytes_max. */
  payloadBytesMax?: number;
  maxConnections?: number;
  maxInFlightPerConnection?: number;
  /** chown the socket and its directory to this user (when run as root for PostgreSQL). */
  socketOwner?: SocketOwner | null;
  /** Subscriptions, leases and WAIT_VISIBLE; null: replication messages are refused. */
  replication?: Replication | null;
}

export class SidecarServerError extends Error {
  readonly code: "socket_dir_insecure" | "socket_in_use" | "invalid_option";

  constructor(code: SidecarServerError["code"], message: string) {
    super(message);
    this.name = "SidecarServerError";
    this.code = code;
  }
}

function positiveInteger(value: number, what: string): number {
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new SidecarServerError(
      "invalid_option",
      `${what} must be a positive integer, got ${value}`,
    );
  }
  return value;
}

/** Creates the socket directory 0700, or checks that an existing one is no looser. */
export function prepareSocketDir(dir: string, owner: SocketOwner | null): void {
  if (!fs.existsSync(dir)) {
    fs.mkdirSync(dir, { recursive: true, mode: socket_dir_mode });
    fs.chmodSync(dir, socket_dir_mode);
    if (owner !== null) fs.chownSync(dir, owner.uid, owner.gid);
    return;
  }
  const stat = fs.statSync(dir);
  if (!stat.isDirectory()) {
    throw new SidecarServerError("socket_dir_insecure", `${dir} is not a directory`);
  }
  if ((stat.mode & 0o777) !== socket_dir_mode) {
    throw new SidecarServerError(
      "socket_dir_insecure",
      `socket directory ${dir} has mode ${(stat.mode & 0o777).toString(8)}, must be 700`,
    );
  }
  const uid = process.getuid?.() ?? stat.uid;
  if (stat.uid !== uid && stat.uid !== owner?.uid) {
    throw new SidecarServerError(
      "socket_dir_insecure",
      `socket directory ${dir} is owned by uid ${stat.uid}, not by this process or the socket owner`,
    );
  }
  // A private directory of ours: hand it to the socket's owner so that user can enter it.
  if (owner !== null && stat.uid !== owner.uid) fs.chownSync(dir, owner.uid, owner.gid);
}

/** Removes a stale socket file; refuses if a live server still answers on it. */
async function clearStaleSocket(socketPath: string): Promise<void> {
  let stat: fs.Stats;
  try {
    stat = fs.lstatSync(socketPath);
  } catch {
    return;
  }
  if (!stat.isSocket()) {
    throw new SidecarServerError("socket_in_use", `${socketPath} exists and is not a socket`);
  }
  const live = await new Promise<boolean>((resolve) => {
    const probe = net.connect(socketPath);
    probe.once("connect", () => {
      probe.destroy();
      resolve(true);
    });
    probe.once("error", () => resolve(false));
  });
  if (live) {
    throw new SidecarServerError("socket_in_use", `another process listens on ${socketPath}`);
  }
  fs.unlinkSync(socketPath);
}

/** The QP a commit came from: the system identifier in its txn_id's first 8 bytes (LE). */
function qpIdOf(txnId: Uint8Array): bigint {
  return new DataView(txnId.buffer, txnId.byteOffset, txnId.byteLength).getBigUint64(0, true);
}

/** One client connection: its decoder, its in-flight count, its fate. */
class Connection implements SubscriberLink {
  readonly id: number;
  readonly #socket: net.Socket;
  readonly #server: SidecarServer;
  readonly #decoder: FrameDecoder;
  #inFlight = 0;
  #closing = false;
  /** Sent SUBSCRIBE: from then on only APPLIED and PING are accepted. */
  #subscribed = false;
  /** Writes are corked until the next turn of the event loop (#output). */
  #corked = false;
  /** The last commit approved on this connection: its tau and its QP (txn_id's system id). */
  #lastCommit: { tau: number; qpId: bigint } | null = null;

  constructor(id: number, socket: net.Socket, server: SidecarServer, payloadBytesMax: number) {
    this.id = id;
    this.#socket = socket;
    this.#server = server;
    this.#decoder = new FrameDecoder({ payloadBytesMax });
  }

  get closing(): boolean {
    return this.#closing;
  }

  // ---- SubscriberLink: the subscription's sink --------------------------------

  get closed(): boolean {
    return this.#closing || this.#socket.destroyed;
  }

  get bufferedBytes(): number {
    return this.#socket.writableLength;
  }

  write(frame: Uint8Array): void {
    if (this.closed) return;
    this.#output(frame);
  }

  /**
   * Writes through a cork released on the next turn of the event loop, so
   * the frames one turn produces for a subscription (RECORDs and their
   * WATERMARK) leave in one system call.
   */
  #output(bytes: Uint8Array): void {
    if (!this.#corked) {
      this.#corked = true;
      this.#socket.cork();
      setImmediate(() => {
        this.#corked = false;
        this.#socket.uncork();
      });
    }
    this.#socket.write(bytes);
  }

  fail(message: string): void {
    this.#server.logger.log("warn", "subscription_failed", { connection: this.id, message });
    this.sendAndClose({
      type: MessageType.Error,
      code: ErrorCode.Unavailable,
      requestId: 0n,
      message,
    });
  }

  onDrain(callback: () => void): void {
    if (this.closed || this.#socket.writableLength === 0) {
      callback();
      return;
    }
    if (this.#socket.writableNeedDrain) {
      let done = false;
      const once = (): void => {
        if (done) return;
        done = true;
        this.#socket.off("drain", once);
        this.#socket.off("close", once);
        callback();
      };
      this.#socket.on("drain", once);
      this.#socket.on("close", once);
      return;
    }
    // Below the socket's high-water mark no 'drain' comes: look again next turn.
    setImmediate(() => this.onDrain(callback));
  }

  onData(chunk: Uint8Array): void {
    if (this.#closing) return;
    const { frames, error } = this.#decoder.push(chunk);
    for (const frame of frames) {
      if (this.#closing) return;
      let message: Message;
      try {
        message = decodeMessage(frame.type, frame.payload);
      } catch (caught) {
        if (!(caught instanceof ProtocolError) || caught.code === "invalid_message") throw caught;
        this.reject(caught.code as FrameErrorCode, caught.message);
        return;
      }
      this.#dispatch(message);
    }
    if (error !== null) this.reject(error.code, `frame rejected: ${error.code}`);
  }

  /** Sends one ERROR frame for an unreadable frame and closes this connection only. */
  reject(code: FrameErrorCode, message: string): void {
    this.#server.logger.log("warn", "frame_rejected", { connection: this.id, code, message });
    this.sendAndClose({
      type: MessageType.Error,
      code: errorCodeFor(code),
      requestId: 0n,
      message,
    });
  }

  sendAndClose(message: Message): void {
    if (this.#closing) return;
    this.#closing = true;
    this.#socket.end(encodeMessage(message));
    setTimeout(() => this.#socket.destroy(), close_linger_ms).unref();
  }

  /**
   * A reply. On a backend's connection it leaves at once: the backend waits
   * for it, and it is the only frame of its turn there. A subscription's
   * replies join its corked stream.
   */
  send(message: Message): void {
    if (this.#closing || this.#socket.destroyed) return;
    const bytes = encodeMessage(message);
    if (this.#subscribed) this.#output(bytes);
    else this.#socket.write(bytes);
  }

  /** Ends the connection after what was written is flushed; destroys it if the peer lingers. */
  async end(): Promise<void> {
    this.#closing = true;
    if (this.#socket.closed) return;
    const closed = new Promise<void>((resolve) => this.#socket.once("close", () => resolve()));
    this.#socket.end();
    const timer = setTimeout(() => this.#socket.destroy(), close_linger_ms);
    await closed;
    clearTimeout(timer);
  }

  #dispatch(message: Message): void {
    if (
      this.#subscribed &&
      message.type !== MessageType.Applied &&
      message.type !== MessageType.Ping
    ) {
      this.reject(
        "malformed",
        `a subscription may send only APPLIED and PING, not type ${message.type}`,
      );
      return;
    }
    switch (message.type) {
      case MessageType.Ping:
        this.send(this.#server.sidecar.ping(message));
        return;
      case MessageType.Pong:
        return;
      case MessageType.CommitRequest: {
        const arrived = performance.now();
        this.#inFlight += 1;
        if (this.#inFlight >= this.#server.maxInFlightPerConnection) this.#socket.pause();
        void this.#server.sidecar.commit(message).then(
          (reply) => {
            if (reply.type === MessageType.CommitReply && reply.verdict === Verdict.Committed) {
              const qpId = qpIdOf(message.txnId);
              this.#lastCommit = { tau: reply.tauCommit, qpId };
              if (this.#server.replication?.soleCounting(qpId, reply.tauCommit) === true) {
                reply = { ...reply, flags: reply.flags | CommitReplyFlag.VisibleWhenAppliedHere };
              }
            }
            this.#server.commitLatency.record((performance.now() - arrived) * 1000);
            this.#settle(reply);
          },
          (error: unknown) => {
            this.#server.logger.log("error", "commit_failed", { connection: this.id, error });
            this.#settle({
              type: MessageType.Error,
              code: ErrorCode.Internal,
              requestId: message.requestId,
              message: "internal error; commit outcome unknown",
            });
          },
        );
        return;
      }
      case MessageType.Subscribe:
      case MessageType.Applied:
      case MessageType.WaitVisible:
        this.#replicate(message);
        return;
      case MessageType.CommitReply:
      case MessageType.Error:
      case MessageType.Record:
      case MessageType.Watermark:
      case MessageType.Visible:
        this.reject("malformed", `message type ${message.type} is not sent to the sidecar`);
        return;
    }
  }

  #replicate(message: Subscribe | Applied | WaitVisible): void {
    const replication = this.#server.replication;
    if (replication === null) {
      this.sendAndClose({
        type: MessageType.Error,
        code: ErrorCode.Unavailable,
        requestId: message.type === MessageType.WaitVisible ? message.requestId : 0n,
        message: "replication is not running on this sidecar",
      });
      return;
    }
    try {
      if (message.type === MessageType.Subscribe) {
        if (this.#inFlight > 0) throw new Error("SUBSCRIBE with commits in flight");
        replication.subscribe(this, message);
        this.#subscribed = true;
      } else if (message.type === MessageType.Applied) {
        if (!this.#subscribed) throw new Error("APPLIED before SUBSCRIBE");
        replication.applied(this, message);
      } else {
        // The backend sends WAIT_VISIBLE C after its local commit of C, made
        // in its turn: its own QP has applied everything up to C.
        const own = this.#lastCommit?.tau === message.tau ? this.#lastCommit.qpId : undefined;
        replication.waitVisible(message, (reply) => this.send(reply), own);
      }
    } catch (error) {
      this.reject("malformed", (error as Error).message);
    }
  }

  /** The socket closed: a subscription ends here. */
  closedBySocket(): void {
    this.#closing = true;
    if (this.#subscribed) this.#server.replication?.disconnected(this);
  }

  #settle(reply: Message): void {
    this.#inFlight -= 1;
    this.send(reply);
    if (this.#inFlight < this.#server.maxInFlightPerConnection && !this.#closing) {
      this.#socket.resume();
    }
  }
}

export class SidecarServer {
  readonly socketPath: string;
  readonly sidecar: Sidecar;
  readonly logger: Logger;
  readonly payloadBytesMax: number;
  readonly maxConnections: number;
  readonly maxInFlightPerConnection: number;
  readonly replication: Replication | null;
  /** From a COMMIT_REQUEST's arrival to its reply leaving: the sidecar's part of a commit. */
  readonly commitLatency = new WaitStats();
  readonly #owner: SocketOwner | null;
  readonly #server: net.Server;
  readonly #connections = new Set<Connection>();
  #nextConnection = 1;
  #listening = false;

  private constructor(options: SidecarServerOptions) {
    this.socketPath = path.resolve(options.socketPath);
    this.sidecar = options.sidecar;
    this.logger = options.logger;
    this.payloadBytesMax = positiveInteger(
      options.payloadBytesMax ?? frame_payload_bytes_max,
      "payloadBytesMax",
    );
    if (this.payloadBytesMax > frame_payload_bytes_max) {
      throw new SidecarServerError(
        "invalid_option",
        `payloadBytesMax ${this.payloadBytesMax} is above frame_payload_bytes_max ${frame_payload_bytes_max}`,
      );
    }
    this.maxConnections = positiveInteger(
      options.maxConnections ?? connections_max_default,
      "maxConnections",
    );
    this.maxInFlightPerConnection = positiveInteger(
      options.maxInFlightPerConnection ?? connection_in_flight_max_default,
      "maxInFlightPerConnection",
    );
    this.#owner = options.socketOwner ?? null;
    this.replication = options.replication ?? null;
    this.#server = net.createServer((socket) => this.#accept(socket));
  }

  /** Prepares the directory, clears a stale socket, listens, and locks the socket down. */
  static async listen(options: SidecarServerOptions): Promise<SidecarServer> {
    const server = new SidecarServer(options);
    prepareSocketDir(path.dirname(server.socketPath), server.#owner);
    await clearStaleSocket(server.socketPath);
    await new Promise<void>((resolve, reject) => {
      server.#server.once("error", reject);
      server.#server.listen(server.socketPath, () => {
        server.#server.off("error", reject);
        resolve();
      });
    });
    server.#listening = true;
    fs.chmodSync(server.socketPath, socket_mode);
    if (server.#owner !== null)
      fs.chownSync(server.socketPath, server.#owner.uid, server.#owner.gid);
    server.#server.on("error", (error) => server.logger.log("error", "server_error", { error }));
    return server;
  }

  get connectionCount(): number {
    return this.#connections.size;
  }

  /** Stops accepting connections; open ones keep being served until `close`. */
  stopAccepting(): void {
    if (this.#listening) {
      this.#listening = false;
      this.#server.close();
    }
  }

  /** Stops accepting, ends every connection (replies already written are flushed), removes the socket. */
  async close(): Promise<void> {
    this.stopAccepting();
    await Promise.all([...this.#connections].map((connection) => connection.end()));
    fs.rmSync(this.socketPath, { force: true });
  }

  #accept(socket: net.Socket): void {
    const connection = new Connection(this.#nextConnection++, socket, this, this.payloadBytesMax);
    if (this.#connections.size >= this.maxConnections) {
      this.logger.log("warn", "connection_refused", { connections: this.#connections.size });
      socket.on("error", () => undefined);
      connection.sendAndClose({
        type: MessageType.Error,
        code: ErrorCode.Unavailable,
        requestId: 0n,
        message: `too many connections (connections_max ${this.maxConnections})`,
      });
      return;
    }
    this.#connections.add(connection);
    socket.on("data", (chunk: Buffer) => connection.onData(chunk));
    socket.on("error", (error) => {
      this.logger.log("debug", "connection_error", { connection: connection.id, error });
    });
    socket.on("close", () => {
      this.#connections.delete(connection);
      connection.closedBySocket();
    });
  }
}
