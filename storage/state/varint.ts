// Byte writer and reader for the compact encodings of storage/state: unsigned LEB128 varints for
// integers up to 2^53 - 1, zigzag for signed deltas, length-prefixed UTF-8 strings and raw bytes.
// The reader checks every bound and throws StateDecodeError on anything malformed; it never reads
// past the end and never returns a number that is not a safe integer.
import { StateDecodeError } from '../errors.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Bytes a varint of `n` takes (n a non-negative safe integer). */
export function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

/** Zigzag: maps a signed safe integer to an unsigned one (0, -1, 1, -2 ... -> 0, 1, 2, 3 ...). */
export function zigzag(n: number): number {
  return n >= 0 ? n * 2 : -n * 2 - 1;
}

export function unzigzag(n: number): number {
  return n % 2 === 0 ? n / 2 : -(n + 1) / 2;
}

/** Bytes of `s` in UTF-8. */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

export class ByteWriter {
  #buf: Uint8Array;
  #pos = 0;

  constructor(initialSize = 256) {
    this.#buf = new Uint8Array(initialSize);
  }

  get length(): number {
    return this.#pos;
  }

  #ensure(extra: number): void {
    if (this.#pos + extra <= this.#buf.length) return;
    let size = this.#buf.length * 2;
    while (size < this.#pos + extra) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.#buf.subarray(0, this.#pos));
    this.#buf = next;
  }

  byte(b: number): void {
    this.#ensure(1);
    this.#buf[this.#pos++] = b;
  }

  /** An unsigned varint; `n` must be a non-negative safe integer. */
  uint(n: number): void {
    if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`not a varint: ${n}`);
    this.#ensure(8);
    while (n >= 0x80) {
      this.#buf[this.#pos++] = (n % 128) | 0x80;
      n = Math.floor(n / 128);
    }
    this.#buf[this.#pos++] = n;
  }

  /** A signed integer as a zigzag varint. */
  int(n: number): void {
    this.uint(zigzag(n));
  }

  raw(bytes: Uint8Array): void {
    this.#ensure(bytes.length);
    this.#buf.set(bytes, this.#pos);
    this.#pos += bytes.length;
  }

  /** A varint length, then the bytes. */
  lenBytes(bytes: Uint8Array): void {
    this.uint(bytes.length);
    this.raw(bytes);
  }

  /** A varint byte length, then the UTF-8 bytes. */
  string(s: string): void {
    if (s.length < 64) {
      // Worst case 3 bytes per UTF-16 unit: the length fits one varint byte only if < 128.
      this.#ensure(1 + s.length * 3);
      const lenAt = this.#pos++;
      const { written } = encoder.encodeInto(s, this.#buf.subarray(this.#pos));
      if (written < 0x80) {
        this.#buf[lenAt] = written;
        this.#pos += written;
        return;
      }
      this.#pos = lenAt;
    }
    this.lenBytes(encoder.encode(s));
  }

  /** A copy of the bytes written so far. */
  finish(): Uint8Array {
    return this.#buf.slice(0, this.#pos);
  }
}

export class ByteReader {
  readonly #buf: Uint8Array;
  #pos = 0;

  constructor(buf: Uint8Array) {
    this.#buf = buf;
  }

  get remaining(): number {
    return this.#buf.length - this.#pos;
  }

  get offset(): number {
    return this.#pos;
  }

  byte(): number {
    if (this.#pos >= this.#buf.length) throw new StateDecodeError('truncated input');
    return this.#buf[this.#pos++];
  }

  /** An unsigned varint: at most 8 bytes, canonical (no redundant trailing zero byte), safe. */
  uint(): number {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      const b = this.byte();
      value += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) {
        if (b === 0 && i > 0) throw new StateDecodeError('non-canonical varint');
        if (!Number.isSafeInteger(value)) throw new StateDecodeError('varint out of range');
        return value;
      }
      scale *= 128;
    }
    throw new StateDecodeError('varint too long');
  }

  /** A varint no greater than `max`; `what` names the field in the error. */
  uintMax(max: number, what: string): number {
    const n = this.uint();
    if (n > max) throw new StateDecodeError(`${what} ${n} exceeds ${max}`);
    return n;
  }

  int(): number {
    return unzigzag(this.uint());
  }

  /** `n` bytes, copied out of the input. */
  raw(n: number): Uint8Array {
    if (n > this.remaining) throw new StateDecodeError('truncated input');
    const out = this.#buf.slice(this.#pos, this.#pos + n);
    this.#pos += n;
    return out;
  }

  /** A length-prefixed UTF-8 string of at most `maxBytes` bytes; must be valid UTF-8. */
  string(maxBytes: number, what: string): string {
    const n = this.uintMax(maxBytes, `${what} length`);
    if (n > this.remaining) throw new StateDecodeError('truncated input');
    const bytes = this.#buf.subarray(this.#pos, this.#pos + n);
    this.#pos += n;
    try {
      return decoder.decode(bytes);
    } catch {
      throw new StateDecodeError(`${what} is not valid UTF-8`);
    }
  }

  /** Throws unless every byte was consumed. */
  end(): void {
    if (this.#pos !== this.#buf.length) {
      throw new StateDecodeError(`${this.#buf.length - this.#pos} trailing bytes`);
    }
  }
}
