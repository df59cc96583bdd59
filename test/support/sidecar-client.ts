/**
 * A minimal client for the sidecar's Unix socket in tests: sends messages or
 * raw bytes, and hands back decoded replies in arrival order. It uses the
 * real framing and message codec, so what it reads is what a QP would read.
 */
import net from "node:net";
import { decodeMessage, encodeMessage, FrameDecoder } from "../../src/protocol";
import type { CommitReply, CommitRequest, ErrorMessage, Message } from "../../src/protocol";

export class SidecarClient {
  readonly #socket: net.Socket;
  readonly #decoder = new FrameDecoder();
  readonly #received: Message[] = [];
  #waiters: (() => void)[] = [];
  #closed = false;
  #failure: Error | null = null;

  private constructor(socket: net.Socket) {
    this.#socket = socket;
    socket.on("data", (chunk: Buffer) => {
      const { frames, error } = this.#decoder.push(chunk);
      for (const frame of frames) this.#received.push(decodeMessage(frame.type, frame.payload));
      if (error !== null) this.#failure = new Error(`client saw a bad frame: ${error.code}`);
      this.#wake();
    });
    socket.on("close", () => {
      this.#closed = true;
      this.#wake();
    });
    socket.on("error", () => undefined);
  }

  static connect(socketPath: string): Promise<SidecarClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(socketPath);
      socket.once("error", reject);
      socket.once("connect", () => {
        socket.off("error", reject);
        resolve(new SidecarClient(socket));
      });
    });
  }

  /** True once the sidecar closed the connection. */
  get closed(): boolean {
    return this.#closed;
  }

  send(message: Message): void {
    this.#socket.write(encodeMessage(message));
  }

  sendRaw(bytes: Uint8Array): void {
    this.#socket.write(bytes);
  }

  /** The next message, or null if the connection closed first. */
  async next(): Promise<Message | null> {
    while (this.#received.length === 0) {
      if (this.#failure !== null) throw this.#failure;
      if (this.#closed) return null;
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
    return this.#received.shift() ?? null;
  }

  /** Sends a commit and waits for the reply with its request id (replies may come out of order). */
  async commit(request: CommitRequest): Promise<CommitReply | ErrorMessage> {
    this.send(request);
    return this.replyTo(request.requestId);
  }

  async replyTo(requestId: bigint): Promise<CommitReply | ErrorMessage> {
    for (;;) {
      const index = this.#received.findIndex(
        (m) => (m.type === 2 || m.type === 3) && m.requestId === requestId,
      );
      if (index >= 0) return this.#received.splice(index, 1)[0] as CommitReply | ErrorMessage;
      if (this.#failure !== null) throw this.#failure;
      if (this.#closed) throw new Error(`connection closed before the reply to ${requestId}`);
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }

  /** Resolves once the sidecar closed the connection. */
  async waitClosed(): Promise<void> {
    while (!this.#closed) await new Promise<void>((resolve) => this.#waiters.push(resolve));
  }

  close(): void {
    this.#socket.destroy();
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }
}
