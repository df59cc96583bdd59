/**
 * A test subscriber for the sidecar's replication stream: connects to the
 * Unix socket, sends SUBSCRIBE, and records every RECORD and WATERMARK in
 * arrival order, checking the stream's promises as it goes (records in
 * strictly increasing (tau, journal) order, none at or below a watermark
 * already received). It can stop reading (`pause`) to act as a slow
 * subscriber, send APPLIED, and send WAIT_VISIBLE on a second connection.
 */
import net from "node:net";
import {
  decodeCommitBody,
  decodeMessage,
  encodeMessage,
  FrameDecoder,
  MessageType,
} from "../../src/protocol";
import type { CommitBody, Message, SubscribeRange } from "../../src/protocol";

export interface ReceivedRecord {
  tau: number;
  journal: number;
  body: CommitBody;
}

export class SubscriberClient {
  readonly records: ReceivedRecord[] = [];
  readonly watermarks: { tau: number; leaseUntilUs: number }[] = [];
  readonly others: Message[] = [];
  /** A broken promise of the stream, if one was seen. */
  violation: string | null = null;
  readonly #socket: net.Socket;
  readonly #decoder = new FrameDecoder();
  #waiters: (() => void)[] = [];
  #closed = false;

  private constructor(socket: net.Socket) {
    this.#socket = socket;
    socket.on("data", (chunk: Buffer) => this.#onData(chunk));
    socket.on("close", () => {
      this.#closed = true;
      this.#wake();
    });
    socket.on("error", () => undefined);
  }

  static connect(socketPath: string): Promise<SubscriberClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(socketPath);
      socket.once("error", reject);
      socket.once("connect", () => {
        socket.off("error", reject);
        resolve(new SubscriberClient(socket));
      });
    });
  }

  /** Connects and subscribes; every key unless `ranges` says otherwise. */
  static async subscribe(
    socketPath: string,
    options: { qpId?: bigint; fromTau?: number; ranges?: SubscribeRange[] } = {},
  ): Promise<SubscriberClient> {
    const client = await SubscriberClient.connect(socketPath);
    client.send({
      type: MessageType.Subscribe,
      qpId: options.qpId ?? 0n,
      fromTau: options.fromTau ?? 0,
      ranges: options.ranges ?? [{ lo: new Uint8Array(0), hi: new Uint8Array(0) }],
    });
    return client;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The highest watermark received, -1 if none. */
  get watermark(): number {
    return this.watermarks.length === 0 ? -1 : this.watermarks[this.watermarks.length - 1]!.tau;
  }

  send(message: Message): void {
    this.#socket.write(encodeMessage(message));
  }

  applied(tau: number): void {
    this.send({ type: MessageType.Applied, tau });
  }

  /** Stops reading: the sidecar's writes back up (a slow subscriber). */
  pause(): void {
    this.#socket.pause();
  }

  resume(): void {
    this.#socket.resume();
  }

  /** Waits until `predicate` holds (checked after each message), or throws on close. */
  async until(predicate: () => boolean, what = "condition"): Promise<void> {
    while (!predicate()) {
      if (this.violation !== null) throw new Error(this.violation);
      if (this.#closed) throw new Error(`connection closed before ${what}`);
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
    if (this.violation !== null) throw new Error(this.violation);
  }

  /** Waits for a watermark at or above `tau`. */
  untilWatermark(tau: number): Promise<void> {
    return this.until(() => this.watermark >= tau, `watermark ${tau}`);
  }

  /** Waits for the next message that is neither RECORD nor WATERMARK. */
  async nextOther(): Promise<Message | null> {
    await this.until(() => this.others.length > 0 || this.#closed, "a message").catch(
      () => undefined,
    );
    return this.others.shift() ?? null;
  }

  close(): void {
    this.#socket.destroy();
  }

  #onData(chunk: Buffer): void {
    const { frames, error } = this.#decoder.push(chunk);
    for (const frame of frames) this.#receive(decodeMessage(frame.type, frame.payload));
    if (error !== null) this.violation ??= `bad frame: ${error.code}`;
    this.#wake();
  }

  #receive(message: Message): void {
    if (message.type === MessageType.Record) {
      const last = this.records[this.records.length - 1];
      if (
        last !== undefined &&
        (message.tauCommit < last.tau ||
          (message.tauCommit === last.tau && message.journalId <= last.journal))
      ) {
        this.violation ??= `record (${message.tauCommit}, ${message.journalId}) after (${last.tau}, ${last.journal})`;
      }
      if (message.tauCommit <= this.watermark) {
        this.violation ??= `record ${message.tauCommit} at or below watermark ${this.watermark}`;
      }
      this.records.push({
        tau: message.tauCommit,
        journal: message.journalId,
        body: decodeCommitBody(message.body),
      });
    } else if (message.type === MessageType.Watermark) {
      if (message.tau < this.watermark) {
        this.violation ??= `watermark ${message.tau} below ${this.watermark}`;
      }
      this.watermarks.push({ tau: message.tau, leaseUntilUs: message.leaseUntilUs });
    } else {
      this.others.push(message);
    }
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }
}
