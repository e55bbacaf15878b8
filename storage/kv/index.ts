export type { BatchOp, KvStore, RangeOptions, WriteOptions } from './types.js';
export { compareUtf8, prefixSuccessor } from './types.js';
export { MemoryStore } from './memory.js';
export { LevelStore } from './level.js';
