// Length-prefixed frames over libp2p streams: every edgeswarm protocol sends its messages as
// frames (unsigned varint length, then that many bytes) and reads them with a hard size limit, so a
// peer can never make us buffer more than one frame's limit. Writes honour backpressure by waiting
// for the stream's 'drain' event (not stream.onDrain(), which in @libp2p/utils 7.4 resolves only
// once: see STACK.md).
import type { Stream } from '@libp2p/interface';

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

/** Splits a byte stream into frames; throws FrameTooLargeError on a frame over `maxFrame`. */
export class FrameDecoder {
  readonly #max: number;
  #buf: Uint8Array = new Uint8Array(0);

  constructor(maxFrame: number) {
    this.#max = maxFrame;
  }

  /** Bytes held waiting for the rest of a frame. */
  get buffered(): number {
    return this.#buf.length;
  }

  push(chunk: StreamChunk): Uint8Array[] {
    const bytes = chunk instanceof Uint8Array ? chunk : chunk.subarray();
    let buf: Uint8Array;
    if (this.#buf.length === 0) buf = bytes;
    else {
      buf = new Uint8Array(this.#buf.length + bytes.length);
      buf.set(this.#buf, 0);
      buf.set(bytes, this.#buf.length);
    }
    const out: Uint8Array[] = [];
    let pos = 0;
    for (;;) {
      let len = 0;
      let shift = 1;
      let p = pos;
      let complete = false;
      while (p < buf.length) {
        const b = buf[p++];
        len += (b & 0x7f) * shift;
        if ((b & 0x80) === 0) {
          complete = true;
          break;
        }
        shift *= 128;
        if (shift > 2 ** 49) throw new FrameTooLargeError(Infinity, this.#max);
      }
      if (!complete) break;
      if (len > this.#max) throw new FrameTooLargeError(len, this.#max);
      if (buf.length - p < len) break;
      out.push(buf.slice(p, p + len));
      pos = p + len;
    }
    this.#buf = pos >= buf.length ? new Uint8Array(0) : buf.slice(pos);
    if (this.#buf.length > this.#max + 10)
      throw new FrameTooLargeError(this.#buf.length, this.#max);
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

/** Sends one frame, honouring backpressure. */
export function writeFrame(
  stream: Stream,
  payload: Uint8Array,
  signal?: AbortSignal,
): Promise<void> {
  return sendBytes(stream, frame(payload), signal);
}
