// storage/: everything an agent keeps on disk, behind small interfaces.
export * from './errors.js';
export * from './kv/index.js';
