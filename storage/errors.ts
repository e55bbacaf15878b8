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
