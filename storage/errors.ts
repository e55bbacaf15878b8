// Errors of the storage module, with stable names and codes.

export class StorageError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
    this.name = 'StorageError';
  }
}

/** The store was used after close(). */
export class StoreClosedError extends StorageError {
  constructor() {
    super('store_closed', 'the store is closed');
    this.name = 'StoreClosedError';
  }
}

/**
 * A write to the database failed (a full disk), and writes are refused until it is reopened,
 * which the store does by itself once the device has space (see storage/kv/level.ts).
 */
export class StoreFailedError extends StorageError {
  constructor(cause: Error) {
    super(
      'store_failed',
      `the database is read-only after a failed write (${cause.message}); it is reopened by itself when the disk has space`,
      { cause },
    );
    this.name = 'StoreFailedError';
  }
}

/** The on-disk database is held by another process (another agent on the same data dir). */
export class StoreLockedError extends StorageError {
  constructor(path: string, options?: ErrorOptions) {
    super('store_locked', `database ${path} is in use by another process`, options);
    this.name = 'StoreLockedError';
  }
}

/** Stored bytes did not match their hash, or a record could not be decoded. */
export class CorruptDataError extends StorageError {
  constructor(message: string) {
    super('corrupt_data', message);
    this.name = 'CorruptDataError';
  }
}

// ---- image store (storage/chunks, storage/images): chunking, chunk files, manifests, GC ----

/** Chunker options out of range: a configuration or programming error. */
export class ChunkerConfigError extends StorageError {
  constructor(message: string) {
    super('chunker_config', message);
    this.name = 'ChunkerConfigError';
  }
}

/** A chunk hash that is not a sha256 in 64 lower-case hex digits. */
export class InvalidChunkHashError extends StorageError {
  readonly hash: string;
  constructor(hash: string) {
    super(
      'invalid_chunk_hash',
      `not a sha256 hex chunk hash: ${JSON.stringify(hash.slice(0, 80))}`,
    );
    this.hash = hash;
    this.name = 'InvalidChunkHashError';
  }
}

/** Bytes offered for a chunk do not hash to the claimed sha256: the sender is wrong; fetch elsewhere. */
export class ChunkHashMismatchError extends StorageError {
  readonly expected: string;
  readonly actual: string;
  constructor(expected: string, actual: string) {
    super('chunk_hash_mismatch', `chunk bytes hash to ${actual}, expected ${expected}`);
    this.expected = expected;
    this.actual = actual;
    this.name = 'ChunkHashMismatchError';
  }
}

/** A chunk longer than the store accepts (MAX_CHUNK_BYTES). */
export class ChunkTooLargeError extends StorageError {
  readonly size: number;
  constructor(size: number, limit: number) {
    super('chunk_too_large', `chunk of ${size} bytes is over the limit of ${limit}`);
    this.size = size;
    this.name = 'ChunkTooLargeError';
  }
}

/** A stored chunk failed verification when read. It was quarantined: fetch it again. */
export class ChunkCorruptError extends StorageError {
  readonly hash: string;
  constructor(hash: string, detail: string) {
    super('chunk_corrupt', `stored chunk ${hash} is corrupt (${detail}); it was quarantined`);
    this.hash = hash;
    this.name = 'ChunkCorruptError';
  }
}

/** A chunk that is needed (to export an image, say) is not in the store. */
export class ChunkNotFoundError extends StorageError {
  readonly hash: string;
  constructor(hash: string) {
    super('chunk_not_found', `chunk ${hash} is not in the store`);
    this.hash = hash;
    this.name = 'ChunkNotFoundError';
  }
}

/** A manifest or tombstone that cannot be decoded or breaks a rule; `field` names the culprit. */
export class InvalidManifestError extends StorageError {
  readonly field: string;
  constructor(field: string, message: string, options?: ErrorOptions) {
    super('invalid_manifest', field === '' ? message : `${field}: ${message}`, options);
    this.field = field;
    this.name = 'InvalidManifestError';
  }
}

/** A manifest or tombstone whose signature does not verify against its creator's public key. */
export class ManifestSignatureError extends StorageError {
  constructor(message: string, options?: ErrorOptions) {
    super('bad_signature', message, options);
    this.name = 'ManifestSignatureError';
  }
}

/** An image name or tag that breaks the naming rules (a 400 for the HTTP layer). */
export class InvalidImageRefError extends StorageError {
  readonly field: 'name' | 'tag';
  constructor(field: 'name' | 'tag', message: string) {
    super(field === 'name' ? 'invalid_image_name' : 'invalid_image_tag', message);
    this.field = field;
    this.name = 'InvalidImageRefError';
  }
}

/** An image stream longer than the caller's limit (a 413 for the HTTP layer). */
export class ImageTooLargeError extends StorageError {
  readonly limit: number;
  constructor(limit: number) {
    super('image_too_large', `the image is larger than the limit of ${limit} bytes`);
    this.limit = limit;
    this.name = 'ImageTooLargeError';
  }
}

/** Bytes read back for an image do not match its manifest's size or digest. */
export class ImageDigestMismatchError extends StorageError {
  constructor(message: string) {
    super('image_digest_mismatch', message);
    this.name = 'ImageDigestMismatchError';
  }
}

// --- replicated key/value state (storage/state) ---

/**
 * Bytes from a peer (a summary, a change batch, cleared ranges) could not be decoded or failed
 * validation. The runtime counts it and drops the message; it is never thrown through the agent.
 */
export class StateDecodeError extends StorageError {
  constructor(message: string) {
    super('state_decode', message);
    this.name = 'StateDecodeError';
  }
}

/**
 * A timestamp from a peer is further ahead of the local physical clock than the accepted drift.
 * The change is refused (counted, not applied); anti-entropy offers it again later.
 */
export class ClockDriftError extends StorageError {
  readonly driftMs: number;
  constructor(driftMs: number, maxDriftMs: number) {
    super(
      'clock_drift',
      `remote timestamp is ${driftMs} ms ahead (at most ${maxDriftMs} accepted)`,
    );
    this.name = 'ClockDriftError';
    this.driftMs = driftMs;
  }
}

/** A key given by a user is not acceptable (empty, too long, or not well-formed Unicode). */
export class InvalidKeyError extends StorageError {
  constructor(message: string) {
    super('invalid_key', message);
    this.name = 'InvalidKeyError';
  }
}

/** A value given by a user is larger than the configured limit. */
export class ValueTooLargeError extends StorageError {
  readonly size: number;
  readonly limit: number;
  constructor(size: number, limit: number) {
    super('value_too_large', `value of ${size} bytes exceeds the limit of ${limit} bytes`);
    this.name = 'ValueTooLargeError';
    this.size = size;
    this.limit = limit;
  }
}

// --- chunk store packs and index (storage/chunks) ---

/**
 * Writing the chunk store's packs or index failed (an fsync or a level write). Entries that were
 * not yet durable were dropped, as a crash would; the store refuses further writes until it is
 * reopened (after an fsync error the state of the page cache is unknown), reads still work.
 */
export class ChunkStoreFailedError extends StorageError {
  constructor(cause: unknown) {
    const detail = cause instanceof Error ? cause.message : String(cause);
    super('chunk_store_failed', `a write of the chunk store failed (${detail}); reopen it`, {
      cause,
    });
    this.name = 'ChunkStoreFailedError';
  }
}

/**
 * The device holding the store has less free space than a write about to start needs (a pull
 * checks before it fetches anything). Carries code ENOSPC, so it is handled as a full disk.
 */
export class InsufficientSpaceError extends StorageError {
  readonly needBytes: number;
  readonly freeBytes: number;
  constructor(needBytes: number, freeBytes: number) {
    const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;
    super(
      'ENOSPC',
      `no space left on the device holding the data directory: ${mib(needBytes)} needed, ${mib(freeBytes)} free`,
    );
    this.name = 'InsufficientSpaceError';
    this.needBytes = needBytes;
    this.freeBytes = freeBytes;
  }
}

/**
 * ENOSPC or EDQUOT, on the error or a cause it wraps. LevelDB's I/O errors carry only its message
 * ("IO error: …/000003.log: No space left on device", code LEVEL_IO_ERROR).
 */
export function isOutOfSpace(err: unknown): boolean {
  for (let e = err, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (code === 'ENOSPC' || code === 'EDQUOT') return true;
    if (/No space left on device|Disk quota exceeded/.test(e.message)) return true;
  }
  return false;
}
