// A libp2p stream read and written as frames, for request/response protocols (catalog sync, state
// sync, chunk transfer). Reads are pulled one frame at a time with a size limit; writes wait for
// drain. Every async operation takes an AbortSignal.
import type { Stream } from '@libp2p/interface';
import { readFrames, StreamClosedError, writeFrame } from './framing.js';

export class FramedStream {
  readonly stream: Stream;
  readonly #frames: AsyncGenerator<Uint8Array>;

  constructor(stream: Stream, maxFrame: number) {
    this.stream = stream;
    this.#frames = readFrames(stream, maxFrame);
  }

  /** The next frame, or undefined when the remote closed its side. */
  async read(signal?: AbortSignal): Promise<Uint8Array | undefined> {
    if (!signal) {
      const r = await this.#frames.next();
      return r.done ? undefined : r.value;
    }
    signal.throwIfAborted();
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => {
        const err = signal.reason instanceof Error ? signal.reason : new Error('aborted');
        this.stream.abort(err);
        reject(err);
      };
      signal.addEventListener('abort', onAbort, { once: true });
    });
    const next = this.#frames.next();
    // if the abort wins the race, the read it cut short rejects later: that is expected
    next.catch(() => {});
    try {
      const r = await Promise.race([next, aborted]);
      return r.done ? undefined : r.value;
    } finally {
      if (onAbort) signal.removeEventListener('abort', onAbort);
    }
  }

  /** The next frame; a StreamClosedError if the remote closed instead. */
  async readOne(signal?: AbortSignal): Promise<Uint8Array> {
    const f = await this.read(signal);
    if (f === undefined) throw new StreamClosedError('the peer closed the stream before answering');
    return f;
  }

  /** Sends one frame (its payload may be given in parts: see writeFrame). */
  write(payload: Uint8Array | readonly Uint8Array[], signal?: AbortSignal): Promise<void> {
    return writeFrame(this.stream, payload, signal);
  }

  /** Closes our writing side (the remote sees the end of its reads). */
  async closeWrite(signal?: AbortSignal): Promise<void> {
    try {
      await this.stream.close({ signal });
    } catch {
      // already closed or reset
    }
  }

  abort(err: Error): void {
    this.stream.abort(err);
  }
}
