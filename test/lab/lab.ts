export * from '../../bench/harness/lab.js';
