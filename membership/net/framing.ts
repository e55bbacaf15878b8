// Length-prefixed frames over libp2p streams: every edgeswarm protocol sends its messages as
// frames (unsigned varint length, then that many bytes) and reads them with a hard size limit, so a
// peer can never make us buffer more than one frame's limit. Writes honour backpressure by waiting
// for the stream's 'drain' event (not stream.onDrain(), which in @libp2p/utils 7.4 resolves only
// once: see STACK.md).
import type { Stream } from '@libp2p/interface';
import { Uint8ArrayList } from 'uint8arraylist';

export class FrameTooLargeError extends Error {
  readonly code = 'frame_too_large';
  constructor(size: number, limit: number) {
    super(`frame of ${size} bytes is over the limit of ${limit}`);
    this.name = 'FrameTooLargeError';
  }
}

/** What libp2p streams yield: bytes, or a list of byte chunks (uint8arraylist). */
export type StreamChunk = Uint8Array | { subarray(): Uint8Array };

export class StreamClosedError extends Error {
  readonly code = 'stream_closed';
  constructor(message = 'the stream closed') {
    super(message);
    this.name = 'StreamClosedError';
  }
}

export function varintLength(n: number): number {
  let len = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    len++;
  }
  return len;
}

export function writeVarint(n: number, out: Uint8Array, offset: number): number {
  while (n >= 0x80) {
    out[offset++] = (n & 0x7f) | 0x80;
    n = Math.floor(n / 128);
  }
  out[offset++] = n;
  return offset;
}

/** One frame: varint(length) + payload. */
export function frame(payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(varintLength(payload.length) + payload.length);
  const off = writeVarint(payload.length, out, 0);
  out.set(payload, off);
  return out;
}

/**
 * Splits a byte stream into frames; throws FrameTooLargeError on a frame over `maxFrame`.
 *
 * Each byte is copied at most once: a frame that arrived whole in one chunk is returned as a view
 * of that chunk (or a copy, if it is less than half of it), and a frame split across chunks is
 * assembled in a buffer of exactly its size. (Joining the held bytes with each new chunk instead
 * was quadratic: a 64 MiB frame arriving in 64 KiB pieces took 51 s of the event loop, 46 ms now.)
 * Frames may share memory with the chunks they came in: read them, do not modify them.
 */
export class FrameDecoder {
  readonly #max: number;
  /** The length being read: its value so far and the weight of its next 7 bits. */
  #len = 0;
  #shift = 1;
  /** The frame being assembled (its length is known) and how much of it has arrived. */
  #body: Uint8Array | undefined;
  #filled = 0;

  constructor(maxFrame: number) {
    this.#max = maxFrame;
  }

  /** Bytes held waiting for the rest of a frame. */
  get buffered(): number {
    return this.#filled;
  }

  push(chunk: StreamChunk): Uint8Array[] {
    const bytes = chunk instanceof Uint8Array ? chunk : chunk.subarray();
    const out: Uint8Array[] = [];
    let pos = 0;
    while (pos < bytes.length) {
      const body = this.#body;
      if (body !== undefined) {
        const n = Math.min(body.length - this.#filled, bytes.length - pos);
        body.set(bytes.subarray(pos, pos + n), this.#filled);
        this.#filled += n;
        pos += n;
        if (this.#filled === body.length) {
          out.push(body);
          this.#body = undefined;
          this.#filled = 0;
        }
        continue;
      }
      const b = bytes[pos++];
      this.#len += (b & 0x7f) * this.#shift;
      if (b & 0x80) {
        this.#shift *= 128;
        if (this.#shift > 2 ** 49) throw new FrameTooLargeError(Infinity, this.#max);
        continue;
      }
      const len = this.#len;
      this.#len = 0;
      this.#shift = 1;
      if (len > this.#max) throw new FrameTooLargeError(len, this.#max);
      if (bytes.length - pos >= len) {
        // a view when the frame is most of the chunk; a small one is copied, so that keeping it
        // does not keep a large chunk alive
        const whole = bytes.subarray(pos, pos + len);
        out.push(len * 2 >= bytes.length ? whole : new Uint8Array(whole));
        pos += len;
      } else {
        this.#body = new Uint8Array(len);
      }
    }
    return out;
  }
}

/** Reads frames from a stream until it ends. */
export async function* readFrames(
  stream: AsyncIterable<StreamChunk>,
  maxFrame: number,
): AsyncGenerator<Uint8Array> {
  const dec = new FrameDecoder(maxFrame);
  for await (const chunk of stream) {
    for (const f of dec.push(chunk)) yield f;
  }
}

/** Waits until the stream can take more data; rejects if it closes first or the signal aborts. */
export function waitForDrain(stream: Stream, signal?: AbortSignal): Promise<void> {
  if (!stream.writableNeedsDrain) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const cleanup = () => {
      stream.removeEventListener('drain', onDrain);
      stream.removeEventListener('close', onClose);
      signal?.removeEventListener('abort', onAbort);
    };
    const onDrain = () => {
      cleanup();
      resolve();
    };
    const onClose = () => {
      cleanup();
      reject(new StreamClosedError('the stream closed while waiting to write'));
    };
    const onAbort = () => {
      cleanup();
      reject(signal?.reason ?? new Error('aborted'));
    };
    stream.addEventListener('drain', onDrain);
    stream.addEventListener('close', onClose);
    signal?.addEventListener('abort', onAbort);
  });
}

/** Sends raw bytes, waiting for drain when the stream's buffer is full. */
export async function sendBytes(
  stream: Stream,
  bytes: Uint8Array,
  signal?: AbortSignal,
): Promise<void> {
  if (stream.status !== 'open') throw new StreamClosedError(`the stream is ${stream.status}`);
  if (!stream.send(bytes)) await waitForDrain(stream, signal);
}

/**
 * Sends one frame, honouring backpressure. The payload may be given in parts (a header and a large
 * body, say): they are sent as a list, not copied into one buffer.
 */
export async function writeFrame(
  stream: Stream,
  payload: Uint8Array | readonly Uint8Array[],
  signal?: AbortSignal,
): Promise<void> {
  const parts = payload instanceof Uint8Array ? [payload] : payload;
  let size = 0;
  for (const p of parts) size += p.length;
  const head = new Uint8Array(varintLength(size));
  writeVarint(size, head, 0);
  if (stream.status !== 'open') throw new StreamClosedError(`the stream is ${stream.status}`);
  // one send of the whole frame: each send() goes out at once as its own muxer frame and noise
  // message, so sending the parts one by one cost three of each per chunk
  const room = stream.send(new Uint8ArrayList(head, ...parts));
  if (!room) await waitForDrain(stream, signal);
}
