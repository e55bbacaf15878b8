// What a harness must undo even when its process is ended before it can stop what it started: a
// bench killed by `timeout` or Ctrl-C, a test process that exits early. Agents are separate
// processes and would otherwise live on as orphans, holding ports, disk and CPU (on 2 cores, a
// few orphans are enough to skew the next run's figures).
//
// Each cleanup is synchronous (an exit handler cannot wait) and runs once, at process exit or on
// SIGINT, SIGTERM or SIGHUP. Signal handlers are installed only where nobody else handles that
// signal (a bench run, not a test runner that has its own), and end the process with the signal's
// usual exit, after the cleanups.
import { isMainThread } from 'node:worker_threads';

const cleanups = new Set<() => void>();
let hooked = false;

/** Last registered first: agents die before the directory they write in is removed. */
function runAll(): void {
  for (const fn of [...cleanups].reverse()) {
    cleanups.delete(fn);
    try {
      fn();
    } catch {
      // best effort: the others still run
    }
  }
}

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

function hook(): void {
  if (hooked) return;
  hooked = true;
  process.once('exit', runAll);
  if (!isMainThread) return; // signals reach only the main thread
  for (const sig of SIGNALS) {
    if (process.listenerCount(sig) > 0) continue;
    process.once(sig, () => {
      runAll();
      // our handler is gone, so the signal now ends the process as it would have
      process.kill(process.pid, sig);
    });
  }
}

/** Runs `fn` if the process ends before the returned function is called to drop it. */
export function onExit(fn: () => void): () => void {
  hook();
  cleanups.add(fn);
  return () => cleanups.delete(fn);
}
