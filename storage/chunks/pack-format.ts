// The on-disk format of chunk packs: append-only files of self-describing records.
//
//   packs/00000001.pack   an 8-byte file header (PACK_MAGIC), then records back to back:
//     record = RECORD_MAGIC (8 bytes) | length (u32 big-endian) | sha256 (32 bytes) | data
//
// A record carries its own hash and length, so a pack can be scanned without the index (to
// rebuild a lost index, or to find a chunk from outside the process, see test-support.ts). The
// scanner accepts a record only if its data hashes to the hash in its header, and after garbage
// (a torn tail, a failed write, a flipped bit) it resynchronises on the next RECORD_MAGIC.
import { open } from 'node:fs/promises';
import { sha256Hex } from './hash.js';

/** First bytes of every pack file ("ESPACK", then format version 1). */
export const PACK_MAGIC = Buffer.from([0x45, 0x53, 0x50, 0x41, 0x43, 0x4b, 0x00, 0x01]);
/** First bytes of every record: non-ASCII and CR LF (like PNG's) so text never looks like one. */
export const RECORD_MAGIC = Buffer.from([0xe5, 0x43, 0x48, 0x4b, 0x0d, 0x0a, 0x1a, 0x0a]);
/** Bytes of a record header: magic, length, hash. */
export const RECORD_HEADER_BYTES = RECORD_MAGIC.length + 4 + 32;
/** Bytes of the pack file header; the first record starts here. */
export const PACK_HEADER_BYTES = PACK_MAGIC.length;

const PACK_NAME_RE = /^(\d{8,10})\.pack$/;

/** File name of pack `seq` ("00000042.pack"). */
export function packName(seq: number): string {
  return `${String(seq).padStart(8, '0')}.pack`;
}

/** The sequence number of a pack file name, or undefined if it is not one. */
export function parsePackName(name: string): number | undefined {
  const m = PACK_NAME_RE.exec(name);
  if (!m) return undefined;
  const seq = Number(m[1]);
  return seq >= 1 && seq <= 0xffffffff ? seq : undefined;
}

/** The header of a record for a chunk of `length` bytes with raw sha256 `hash` (32 bytes). */
export function encodeRecordHeader(hash: Uint8Array, length: number): Buffer {
  const h = Buffer.allocUnsafe(RECORD_HEADER_BYTES);
  RECORD_MAGIC.copy(h, 0);
  h.writeUInt32BE(length, RECORD_MAGIC.length);
  h.set(hash, RECORD_MAGIC.length + 4);
  return h;
}

/** Length and hex hash from a record header, or undefined if it does not start with the magic. */
export function parseRecordHeader(h: Uint8Array): { length: number; hash: string } | undefined {
  if (h.length < RECORD_HEADER_BYTES) return undefined;
  const b = Buffer.from(h.buffer, h.byteOffset, RECORD_HEADER_BYTES);
  if (!b.subarray(0, RECORD_MAGIC.length).equals(RECORD_MAGIC)) return undefined;
  return {
    length: b.readUInt32BE(RECORD_MAGIC.length),
    hash: b.toString('hex', RECORD_MAGIC.length + 4, RECORD_HEADER_BYTES),
  };
}

/** True if `h` is the header of the record of chunk `hash` (raw, 32 bytes) of `length` bytes. */
export function headerMatches(h: Uint8Array, hash: Uint8Array, length: number): boolean {
  if (h.length < RECORD_HEADER_BYTES) return false;
  const b = Buffer.from(h.buffer, h.byteOffset, RECORD_HEADER_BYTES);
  return (
    b.subarray(0, RECORD_MAGIC.length).equals(RECORD_MAGIC) &&
    b.readUInt32BE(RECORD_MAGIC.length) === length &&
    b.subarray(RECORD_MAGIC.length + 4).equals(hash)
  );
}

export interface ScannedRecord {
  /** Offset of the record (its header) in the pack. */
  offset: number;
  hash: string;
  /** Data bytes. */
  length: number;
}

const SCAN_BLOCK = 4 << 20;

/**
 * Every valid record of a pack file, in file order: the header is well formed, the length at
 * most `maxChunkBytes` and the data hashes to the header's hash. Garbage is skipped. `data` is
 * a view of a read buffer: copy it to keep it past the next iteration.
 */
export async function* scanPack(
  path: string,
  maxChunkBytes: number,
): AsyncGenerator<ScannedRecord & { data: Uint8Array }> {
  const fh = await open(path, 'r');
  try {
    const size = (await fh.stat()).size;
    let block = Buffer.alloc(0);
    let blockStart = 0;
    // bytes [offset, offset + len) of the file, or fewer at the end of the file
    const at = async (offset: number, len: number): Promise<Buffer> => {
      if (offset < blockStart || offset + len > blockStart + block.length) {
        const want = Math.min(Math.max(len, SCAN_BLOCK), size - offset);
        block = Buffer.allocUnsafe(Math.max(want, 0));
        let got = 0;
        while (got < want) {
          const { bytesRead } = await fh.read(block, got, want - got, offset + got);
          if (bytesRead === 0) break;
          got += bytesRead;
        }
        block = block.subarray(0, got);
        blockStart = offset;
      }
      return block.subarray(offset - blockStart, offset - blockStart + len);
    };
    let offset = PACK_HEADER_BYTES;
    while (offset + RECORD_HEADER_BYTES <= size) {
      const head = parseRecordHeader(await at(offset, RECORD_HEADER_BYTES));
      if (head !== undefined && head.length <= maxChunkBytes) {
        const end = offset + RECORD_HEADER_BYTES + head.length;
        if (end <= size) {
          const data = await at(offset + RECORD_HEADER_BYTES, head.length);
          if (sha256Hex(data) === head.hash) {
            yield { offset, hash: head.hash, length: head.length, data };
            offset = end;
            continue;
          }
        }
      }
      offset = await nextMagic(at, offset + 1, size);
    }
  } finally {
    await fh.close();
  }
}

/** Offset of the next RECORD_MAGIC at or after `from`, or `size` if there is none. */
async function nextMagic(
  at: (offset: number, len: number) => Promise<Buffer>,
  from: number,
  size: number,
): Promise<number> {
  let o = from;
  while (o + RECORD_MAGIC.length <= size) {
    const buf = await at(o, Math.min(SCAN_BLOCK, size - o));
    const i = buf.indexOf(RECORD_MAGIC);
    if (i >= 0) return o + i;
    // the magic may straddle the block boundary
    o += Math.max(1, buf.length - RECORD_MAGIC.length + 1);
  }
  return size;
}
