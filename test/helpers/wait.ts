export { sleep, waitFor, type WaitOptions } from '../../bench/harness/wait.js';
